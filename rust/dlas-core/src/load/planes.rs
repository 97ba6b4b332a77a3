//! Planar float32 images and their area resize (OpenCV `INTER_AREA` on float images).

use crate::corrupt::{resample_plane, Filter};
use crate::image::resize::Taps;
use std::mem::MaybeUninit;

use crate::image::Rgb8;

/// `c` planes of `h x w` float32 values, plane after plane.
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Planes {
    pub fn zeros(c: usize, h: usize, w: usize) -> Planes {
        Planes {
            c,
            h,
            w,
            data: vec![0.0; c * h * w],
        }
    }

    /// RGB planes in `[0, 1]` (`value / 255`, as DLAS's `read_img`).
    pub fn from_rgb8(img: &Rgb8) -> Planes {
        let n = img.width * img.height;
        let mut data = Vec::with_capacity(3 * n);
        Planes::write_rgb8(img, &mut data.spare_capacity_mut()[..3 * n]);
        // SAFETY: write_rgb8 wrote all 3 * n values.
        unsafe { data.set_len(3 * n) };
        Planes {
            c: 3,
            h: img.height,
            w: img.width,
            data,
        }
    }

    /// Writes `img` as RGB planes in `[0, 1]` into `out` (`3 * w * h` values, every
    /// one written), as [`Planes::from_rgb8`] computes them.
    pub fn write_rgb8(img: &Rgb8, out: &mut [std::mem::MaybeUninit<f32>]) {
        let n = img.width * img.height;
        assert_eq!(img.data.len(), 3 * n, "image buffer size");
        assert_eq!(out.len(), 3 * n, "output size");
        let (r, rest) = out.split_at_mut(n);
        let (g, b) = rest.split_at_mut(n);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[target_feature(enable = "avx2")]
            fn avx2(
                src: &[u8],
                r: &mut [MaybeUninit<f32>],
                g: &mut [MaybeUninit<f32>],
                b: &mut [MaybeUninit<f32>],
            ) {
                deinterleave(src, r, g, b)
            }
            // SAFETY: the CPU supports AVX2 (checked at run time).
            return unsafe { avx2(&img.data, r, g, b) };
        }
        deinterleave(&img.data, r, g, b)
    }

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

    pub fn plane(&self, i: usize) -> &[f32] {
        &self.data[i * self.h * self.w..(i + 1) * self.h * self.w]
    }

    /// Every plane area-resized to `h x w`.
    pub fn resized(&self, h: usize, w: usize) -> Planes {
        if (h, w) == (self.h, self.w) {
            return self.clone();
        }
        let mut data = Vec::with_capacity(self.c * h * w);
        for i in 0..self.c {
            data.extend(resize_plane(self.plane(i), self.w, self.h, w, h));
        }
        Planes {
            c: self.c,
            h,
            w,
            data,
        }
    }

    /// The top-left `h x w` of every plane.
    pub fn cropped(&self, h: usize, w: usize) -> Planes {
        let mut data = Vec::with_capacity(self.c * h * w);
        for i in 0..self.c {
            let p = self.plane(i);
            for r in 0..h {
                data.extend_from_slice(&p[r * self.w..r * self.w + w]);
            }
        }
        Planes {
            c: self.c,
            h,
            w,
            data,
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
    if w >= 8 && std::arch::is_x86_feature_detected!("avx2") {
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
    // Byte positions of each channel in the three 16-byte thirds of 16 RGB pixels, in
    // pixel order (-1: none): OR-ing the three shuffles gives the channel's 16 bytes.
    const Z: i8 = -1;
    #[rustfmt::skip]
    const MASKS: [[[i8; 16]; 3]; 3] = [
        [[0, 3, 6, 9, 12, 15, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z],
         [Z, Z, Z, Z, Z, Z, 2, 5, 8, 11, 14, Z, Z, Z, Z, Z],
         [Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 1, 4, 7, 10, 13]],
        [[1, 4, 7, 10, 13, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z],
         [Z, Z, Z, Z, Z, 0, 3, 6, 9, 12, 15, Z, Z, Z, Z, Z],
         [Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 2, 5, 8, 11, 14]],
        [[2, 5, 8, 11, 14, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z],
         [Z, Z, Z, Z, Z, 1, 4, 7, 10, 13, Z, Z, Z, Z, Z, Z],
         [Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 0, 3, 6, 9, 12, 15]],
    ];
    // SAFETY: the masks are 16 bytes each; every load reads 16 bytes inside the first
    // 48 * steps <= 6 * w bytes of a row, every store writes 8 values inside `out[c]`
    // (8 * steps <= w).
    unsafe {
        let m: [[__m128i; 3]; 3] =
            MASKS.map(|c| c.map(|t| _mm_loadu_si128(t.as_ptr() as *const __m128i)));
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

/// RGB bytes to three planes of `value / 255`: a plain loop over pixels (the
/// vectoriser turns the stride-3 reads into shuffles).
#[inline(always)]
fn deinterleave(
    src: &[u8],
    r: &mut [MaybeUninit<f32>],
    g: &mut [MaybeUninit<f32>],
    b: &mut [MaybeUninit<f32>],
) {
    for (((px, r), g), b) in src
        .chunks_exact(3)
        .zip(r.iter_mut())
        .zip(g.iter_mut())
        .zip(b.iter_mut())
    {
        r.write(px[0] as f32 / 255.0);
        g.write(px[1] as f32 / 255.0);
        b.write(px[2] as f32 / 255.0);
    }
}

/// Block means of `k x k` blocks (OpenCV's `INTER_AREA` for an integer factor on a
/// float image: the block sum times `1 / k^2`). Compiled for the baseline target and
/// for AVX2 (picked at run time); the same additions in the same order in both.
fn box_plane(src: &[f32], src_w: usize, k: usize, dst_w: usize, dst_h: usize) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(src: &[f32], src_w: usize, k: usize, dst_w: usize, dst_h: usize) -> Vec<f32> {
            box_plane_generic(src, src_w, k, dst_w, dst_h)
        }
        // SAFETY: the CPU supports AVX2 (checked at run time).
        return unsafe { avx2(src, src_w, k, dst_w, dst_h) };
    }
    box_plane_generic(src, src_w, k, dst_w, dst_h)
}

#[inline(always)]
fn box_plane_generic(src: &[f32], src_w: usize, k: usize, dst_w: usize, dst_h: usize) -> Vec<f32> {
    let scale = 1.0 / (k * k) as f32;
    let mut out = vec![0f32; dst_w * dst_h];
    if out.is_empty() {
        return out;
    }
    let mut acc = vec![0f32; src_w];
    for (dy, row) in out.chunks_exact_mut(dst_w).enumerate() {
        acc.copy_from_slice(&src[dy * k * src_w..(dy * k + 1) * src_w]);
        for sy in dy * k + 1..(dy + 1) * k {
            for (a, &v) in acc.iter_mut().zip(&src[sy * src_w..(sy + 1) * src_w]) {
                *a += v;
            }
        }
        if k == 2 {
            // The pair sums in a form the vectoriser takes (the same values as the sum
            // below: adding to 0.0 first changes no non-zero value).
            for (o, p) in row.iter_mut().zip(acc.chunks_exact(2)) {
                *o = (p[0] + p[1]) * scale;
            }
        } else {
            for (o, b) in row.iter_mut().zip(acc.chunks_exact(k)) {
                *o = b.iter().sum::<f32>() * scale;
            }
        }
    }
    out
}

/// Area resize of one float plane (`src_w x src_h` -> `dst_w x dst_h`): pixel-area
/// weights when shrinking (exact box means for integer factors), and OpenCV's linear
/// interpolation with area coefficients when enlarging on any axis, as `INTER_AREA`.
pub fn resize_plane(
    src: &[f32],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
) -> Vec<f32> {
    assert_eq!(src.len(), src_w * src_h, "plane size");
    if (dst_w, dst_h) == (src_w, src_h) {
        return src.to_vec();
    }
    if dst_w > src_w || dst_h > src_h {
        return resample_plane(src, src_w, src_h, dst_w, dst_h, Filter::AreaUp);
    }
    if src_w.is_multiple_of(dst_w) && src_h.is_multiple_of(dst_h) && src_w / dst_w == src_h / dst_h
    {
        return box_plane(src, src_w, src_w / dst_w, dst_w, dst_h);
    }
    let xt = Taps::new(src_w, dst_w);
    let yt = Taps::new(src_h, dst_h);
    let mut out = vec![0f32; dst_w * dst_h];
    let mut acc = vec![0f32; src_w];
    for (dy, out_row) in out.chunks_exact_mut(dst_w).enumerate() {
        acc.fill(0.0);
        let (sy0, wy) = yt.of(dy);
        for (i, &wgt) in wy.iter().enumerate() {
            let row = &src[(sy0 + i) * src_w..(sy0 + i + 1) * src_w];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v * wgt;
            }
        }
        for (dx, o) in out_row.iter_mut().enumerate() {
            let (sx0, wx) = xt.of(dx);
            *o = acc[sx0..sx0 + wx.len()]
                .iter()
                .zip(wx)
                .map(|(v, w)| v * w)
                .sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_shrink_is_the_block_mean() {
        let src: Vec<f32> = (0..36).map(|v| v as f32).collect();
        let out = resize_plane(&src, 6, 6, 3, 3);
        let mean = |r: usize, c: usize| {
            (src[r * 6 + c] + src[r * 6 + c + 1] + src[(r + 1) * 6 + c] + src[(r + 1) * 6 + c + 1])
                / 4.0
        };
        for (i, v) in out.iter().enumerate() {
            let (r, c) = (i / 3 * 2, i % 3 * 2);
            assert!((v - mean(r, c)).abs() < 1e-5);
        }
    }

    #[test]
    fn fractional_shrink_weights_partial_pixels() {
        let out = resize_plane(&[0.0, 0.3, 0.6], 3, 1, 2, 1);
        assert!(
            (out[0] - 0.1).abs() < 1e-6 && (out[1] - 0.5).abs() < 1e-6,
            "{out:?}"
        );
    }

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

    #[test]
    fn crop_keeps_the_top_left() {
        let p = Planes {
            c: 1,
            h: 3,
            w: 3,
            data: (0..9).map(|v| v as f32).collect(),
        };
        assert_eq!(p.cropped(2, 2).data, vec![0.0, 1.0, 3.0, 4.0]);
    }
}
