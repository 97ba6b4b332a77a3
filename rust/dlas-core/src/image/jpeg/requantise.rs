//! A JPEG round trip without a codec: what encoding then decoding does to 4:2:0
//! planes, computed block by block in the DCT domain.

use super::dct::{dequant_idct, fdct_quant};
#[cfg(target_arch = "x86_64")]
use super::dct_avx2 as x86;
use super::encoder_tables::Tables;

/// A JPEG round trip of 4:2:0 planes without entropy coding (which is lossless):
/// every 8x8 block is transformed, quantised, dequantised and inverse-transformed as
/// libjpeg-turbo's encoder and decoder do, in place. Each plane is `(samples, stride,
/// width, height)` with sides that are multiples of 8 (whole blocks: no edge padding
/// to reproduce).
pub(crate) fn requantise(tables: &Tables, planes: [(&mut [u8], usize, usize, usize); 3]) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::features().avx2 {
        #[target_feature(enable = "avx2")]
        fn avx2(tables: &Tables, planes: [(&mut [u8], usize, usize, usize); 3]) {
            requantise_impl(
                tables,
                planes,
                |src, stride, divisor, out| {
                    // SAFETY: AVX2 is enabled here; `src` holds 8 rows `stride` apart.
                    unsafe { x86::fdct_quant(src, stride, divisor, out) }
                },
                |coef, step, out, stride| {
                    // SAFETY: as above, for `out`.
                    unsafe { x86::dequant_idct(coef, step, out, stride) }
                },
            )
        }
        // SAFETY: the CPU supports AVX2 (checked at run time).
        return unsafe { avx2(tables, planes) };
    }
    requantise_impl(tables, planes, fdct_quant, dequant_idct)
}

#[inline(always)]
fn requantise_impl(
    tables: &Tables,
    planes: [(&mut [u8], usize, usize, usize); 3],
    fdct: impl Fn(&[u8], usize, &[f32; 64], &mut [i32; 64]),
    idct: impl Fn(&[i32; 64], &[i32; 64], &mut [u8], usize),
) {
    let mut coef = [0i32; 64];
    for ((data, stride, w, h), comp) in planes.into_iter().zip(&tables.comps) {
        assert!(w % 8 == 0 && h % 8 == 0, "whole blocks only");
        assert!(h == 0 || data.len() >= (h - 1) * stride + w);
        let mut step = [0i32; 64];
        for (s, d) in step.iter_mut().zip(&comp.divisor) {
            *s = (*d / 8.0) as i32;
        }
        for by in 0..h / 8 {
            for bx in 0..w / 8 {
                let at = 8 * by * stride + 8 * bx;
                fdct(&data[at..], stride, &comp.divisor, &mut coef);
                idct(&coef, &step, &mut data[at..], stride);
            }
        }
    }
}
