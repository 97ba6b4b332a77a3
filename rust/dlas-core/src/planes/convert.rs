//! 8-bit RGB to float planes in `[0, 1]` (`value / 255`), and the byte shuffles that
//! sort interleaved RGB by channel.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_by_255_without_dividing_is_exact_for_every_byte() {
        for v in 0..=255u8 {
            assert_eq!(div255(v).to_bits(), (v as f32 / 255.0).to_bits(), "{v}");
        }
    }
}
