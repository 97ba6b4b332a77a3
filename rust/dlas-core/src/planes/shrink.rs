//! 8-bit RGB shrunk by an integer factor straight into float planes: the block sums
//! are taken on the bytes, as exact integers.

use std::mem::MaybeUninit;

#[cfg(target_arch = "x86_64")]
use super::convert::CHANNELS;
use super::Planes;
use crate::image::Rgb8;

impl Planes {
    /// Writes the top-left `h x w` of `img` shrunk by the integer factor `k` (exact
    /// `k x k` block means, OpenCV's `INTER_AREA` for integer factors) as RGB planes in
    /// `[0, 1]` into `out` (`3 * h * w` values, every one written). The block sums are
    /// exact integers, so the values differ from averaging `v / 255` floats only by
    /// float rounding.
    pub fn write_rgb8_shrunk(
        img: &Rgb8,
        k: usize,
        h: usize,
        w: usize,
        out: &mut [std::mem::MaybeUninit<f32>],
    ) {
        assert!(
            k >= 1 && h * k <= img.height && w * k <= img.width,
            "shrink size"
        );
        assert_eq!(out.len(), 3 * h * w, "output size");
        let n = h * w;
        let scale = 1.0 / (255.0 * (k * k) as f32);
        let stride = img.width * 3;
        if k == 2 {
            let (pr, rest) = out.split_at_mut(n);
            let (pg, pb) = rest.split_at_mut(n);
            for y in 0..h {
                let r0 = &img.data[2 * y * stride..][..w * 6];
                let r1 = &img.data[(2 * y + 1) * stride..][..w * 6];
                let row = y * w..(y + 1) * w;
                shrink2_row(
                    r0,
                    r1,
                    scale,
                    [&mut pr[row.clone()], &mut pg[row.clone()], &mut pb[row]],
                );
            }
            return;
        }
        let mut acc = vec![0u32; w * 3];
        for y in 0..h {
            acc.fill(0);
            for sy in y * k..(y + 1) * k {
                let row = &img.data[sy * stride..sy * stride + w * k * 3];
                for (a, block) in acc.chunks_exact_mut(3).zip(row.chunks_exact(3 * k)) {
                    for px in block.chunks_exact(3) {
                        a[0] += px[0] as u32;
                        a[1] += px[1] as u32;
                        a[2] += px[2] as u32;
                    }
                }
            }
            for (x, a) in acc.chunks_exact(3).enumerate() {
                for (c, &v) in a.iter().enumerate() {
                    out[c * n + y * w + x].write(v as f32 * scale);
                }
            }
        }
    }
}

/// One output row of a 2x shrink: `out[c][x]` = the sum of channel `c` of pixels
/// `2x, 2x + 1` of rows `r0` and `r1` (RGB bytes, `6 * w` each), times `scale`. The sums
/// are exact integers, so every path gives the same values. With AVX2, eight outputs a
/// step: byte shuffles sort 16 pixels of a row by channel, `pmaddubsw` adds pixel
/// pairs, and the two rows' pair sums are added, converted and scaled.
fn shrink2_row(r0: &[u8], r1: &[u8], scale: f32, out: [&mut [MaybeUninit<f32>]; 3]) {
    let w = out[0].len();
    assert!(r0.len() >= 6 * w && r1.len() >= 6 * w && out.iter().all(|o| o.len() == w));
    let [pr, pg, pb] = out;
    let mut x = 0;
    #[cfg(target_arch = "x86_64")]
    if w >= 8 && crate::cpu::features().avx2 {
        // SAFETY: the CPU supports AVX2 (checked at run time); lengths checked above.
        x = unsafe { shrink2_avx2(r0, r1, scale, [&mut *pr, &mut *pg, &mut *pb]) };
    }
    for x in x..w {
        let px = |c: usize| {
            let i = 6 * x + c;
            (r0[i] as u32 + r0[i + 3] as u32 + r1[i] as u32 + r1[i + 3] as u32) as f32 * scale
        };
        pr[x].write(px(0));
        pg[x].write(px(1));
        pb[x].write(px(2));
    }
}

/// [`shrink2_row`]'s outputs `0..8 * (w / 8)`; returns how many it wrote.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn shrink2_avx2(r0: &[u8], r1: &[u8], scale: f32, out: [&mut [MaybeUninit<f32>]; 3]) -> usize {
    use std::arch::x86_64::*;
    let w = out[0].len();
    let steps = w / 8;
    // SAFETY: the masks are 16 bytes each; every load reads 16 bytes inside the first
    // 48 * steps <= 6 * w bytes of a row, every store writes 8 values inside `out[c]`
    // (8 * steps <= w).
    unsafe {
        let m: [[__m128i; 3]; 3] =
            CHANNELS.map(|c| c.map(|t| _mm_loadu_si128(t.as_ptr() as *const __m128i)));
        let ones = _mm_set1_epi8(1);
        let sc = _mm256_set1_ps(scale);
        // The 8 pixel-pair sums of channel `c` of 16 pixels at `p`.
        let pairs = |p: *const u8, c: usize| {
            let a = _mm_loadu_si128(p as *const __m128i);
            let b = _mm_loadu_si128(p.add(16) as *const __m128i);
            let d = _mm_loadu_si128(p.add(32) as *const __m128i);
            let v = _mm_or_si128(
                _mm_or_si128(_mm_shuffle_epi8(a, m[c][0]), _mm_shuffle_epi8(b, m[c][1])),
                _mm_shuffle_epi8(d, m[c][2]),
            );
            _mm_maddubs_epi16(v, ones)
        };
        for s in 0..steps {
            let (p0, p1) = (r0.as_ptr().add(48 * s), r1.as_ptr().add(48 * s));
            for (c, o) in out.iter().enumerate() {
                let sum = _mm_add_epi16(pairs(p0, c), pairs(p1, c));
                let f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(sum)), sc);
                _mm256_storeu_ps(o.as_ptr().add(8 * s) as *mut f32, f);
            }
        }
    }
    steps * 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_bytes_gives_the_exact_block_means() {
        // Output widths below, at and past the 8-wide step, a crop of the top-left, and
        // bytes up to 255 (pair sums past a signed byte).
        for (h, w, src_h, src_w) in [(1, 1, 2, 2), (3, 7, 7, 15), (2, 8, 4, 16), (4, 21, 9, 43)] {
            let data: Vec<u8> = (0..src_h * src_w * 3)
                .map(|i| ((i * 2_654_435_761usize) >> 7) as u8)
                .collect();
            let img = Rgb8::new(src_w, src_h, data.clone());
            let mut out = vec![MaybeUninit::new(f32::NAN); 3 * h * w];
            Planes::write_rgb8_shrunk(&img, 2, h, w, &mut out);
            let scale = 1.0 / (255.0 * 4.0f32);
            for c in 0..3 {
                for y in 0..h {
                    for x in 0..w {
                        let at = |yy: usize, xx: usize| data[(yy * src_w + xx) * 3 + c] as u32;
                        let sum = at(2 * y, 2 * x)
                            + at(2 * y, 2 * x + 1)
                            + at(2 * y + 1, 2 * x)
                            + at(2 * y + 1, 2 * x + 1);
                        // SAFETY: initialised above.
                        let got = unsafe { out[(c * h + y) * w + x].assume_init() };
                        assert_eq!(got, sum as f32 * scale, "{h}x{w} c{c} y{y} x{x}");
                    }
                }
            }
        }
    }
}
