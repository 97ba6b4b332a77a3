//! 8-bit RGB to float planes in `[0, 1]` (`value / 255`) and back, and the byte
//! shuffles that sort interleaved RGB by channel.

use std::mem::MaybeUninit;

use super::Planes;
use crate::image::Rgb8;

impl Planes {
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
        if crate::cpu::features().avx2 {
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

/// `v / 255` for a byte `v`, correctly rounded as the division is, without a division:
/// the product with the rounded reciprocal, corrected by its exact residual (one fused
/// multiply-add each). Equal to `v as f32 / 255.0` for every byte (tested).
#[inline(always)]
pub(super) fn div255(v: u8) -> f32 {
    const R: f32 = 1.0 / 255.0;
    let x = v as f32;
    let q = x * R;
    (-q).mul_add(255.0, x).mul_add(R, q)
}

#[cfg(target_arch = "x86_64")]
const Z: i8 = -1;
/// Byte positions of each channel in the three 16-byte thirds of 16 RGB pixels, in
/// pixel order (-1: none): OR-ing the three shuffles gives the channel's 16 bytes.
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
pub(super) const CHANNELS: [[[i8; 16]; 3]; 3] = [
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

/// `(v * 255).clamp(0, 255)` truncated to a byte, as DLAS's `astype(np.uint8)` after
/// clamping (NaN gives 0).
#[inline(always)]
fn to_byte(v: f32) -> u8 {
    (v * 255.0).clamp(0.0, 255.0) as u8
}

/// Three planes of values in `[0, 1]` to interleaved RGB bytes ([`to_byte`] each).
pub(crate) fn planes_to_rgb8(r: &[f32], g: &[f32], b: &[f32], out: &mut [u8]) {
    let n = out.len() / 3;
    assert!(r.len() == n && g.len() == n && b.len() == n && out.len() == 3 * n);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::features().avx2 {
        // SAFETY: the CPU supports AVX2 (checked at run time).
        done = unsafe { planes_to_rgb8_avx2(r, g, b, out) };
    }
    for i in done..n {
        out[3 * i..3 * i + 3].copy_from_slice(&[to_byte(r[i]), to_byte(g[i]), to_byte(b[i])]);
    }
}

/// [`planes_to_rgb8`] eight pixels at a time while a 16-byte store stays inside `out`;
/// returns how many pixels it wrote.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn planes_to_rgb8_avx2(r: &[f32], g: &[f32], b: &[f32], out: &mut [u8]) -> usize {
    use std::arch::x86_64::*;
    let n = r.len().min(g.len()).min(b.len()).min(out.len() / 3);
    let (scale, lo, hi) = (
        _mm256_set1_ps(255.0),
        _mm256_setzero_ps(),
        _mm256_set1_ps(255.0),
    );
    // max(x, 0) returns 0 for NaN (the second operand), as the scalar clamp-then-cast.
    let bytes = |p: &[f32], i: usize| {
        // SAFETY: the loop below keeps i + 8 <= n <= p.len().
        let v = unsafe { _mm256_loadu_ps(p.as_ptr().add(i)) };
        let v = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(v, scale), lo), hi);
        _mm256_cvttps_epi32(v)
    };
    // Per 128-bit lane, after the packs: r0-3 g0-3 b0-3 and four zeros -> r0 g0 b0 r1 ...
    let order = _mm256_setr_epi8(
        0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11, -1, -1, -1, -1, 0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11,
        -1, -1, -1, -1,
    );
    let mut i = 0;
    // The second 16-byte store of a step reaches byte 3 * i + 28.
    while i + 8 <= n && 3 * i + 28 <= out.len() {
        let rg = _mm256_packs_epi32(bytes(r, i), bytes(g, i));
        let b0 = _mm256_packs_epi32(bytes(b, i), _mm256_setzero_si256());
        let px = _mm256_shuffle_epi8(_mm256_packus_epi16(rg, b0), order);
        // SAFETY: bytes 3 * i .. 3 * i + 28 are inside `out` (checked above); the 4
        // bytes past each lane's 12 are rewritten by the next store.
        unsafe {
            let at = out.as_mut_ptr().add(3 * i);
            _mm_storeu_si128(at as *mut __m128i, _mm256_castsi256_si128(px));
            _mm_storeu_si128(
                at.add(12) as *mut __m128i,
                _mm256_extracti128_si256::<1>(px),
            );
        }
        i += 8;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_by_255_without_dividing_is_exact_for_every_byte() {
        for v in 0..=255u8 {
            assert_eq!(div255(v).to_bits(), (v as f32 / 255.0).to_bits(), "{v}");
        }
    }

    #[test]
    fn planes_to_rgb8_clamps_truncates_and_interleaves_at_every_length() {
        let special = [
            -1.0,
            -0.0,
            0.0,
            0.5,
            0.999,
            1.0,
            1.5,
            f32::NAN,
            f32::INFINITY,
        ];
        for n in [0, 1, 7, 8, 9, 16, 17, 100] {
            let plane = |c: usize| -> Vec<f32> {
                (0..n)
                    .map(|i| match (i + c) % 4 {
                        0 => special[(i * 7 + c) % special.len()],
                        _ => ((i * 37 + c * 11) % 1000) as f32 / 999.0,
                    })
                    .collect()
            };
            let (r, g, b) = (plane(0), plane(1), plane(2));
            let mut got = vec![7u8; 3 * n];
            planes_to_rgb8(&r, &g, &b, &mut got);
            let want: Vec<u8> = (0..n)
                .flat_map(|i| [to_byte(r[i]), to_byte(g[i]), to_byte(b[i])])
                .collect();
            assert_eq!(got, want, "{n} pixels");
        }
        assert_eq!(to_byte(f32::NAN), 0);
        assert_eq!(to_byte(0.999), 254);
    }
}
