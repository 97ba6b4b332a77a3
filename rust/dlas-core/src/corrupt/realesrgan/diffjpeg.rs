//! BasicSR's `DiffJPEG(differentiable=False)`: the JPEG simulation Real-ESRGAN trains
//! with, in f32. It is not libjpeg: the quality is a real number (the tables are scaled
//! by `quality_to_factor(q)` and not rounded or clamped), values are not rounded to
//! integers before the transform, the image is padded with black to a multiple of 16,
//! chroma is averaged over 2x2 and repeated back, and the quantisation tables are the
//! standard ones transposed (as the reference has them). Coefficients are rounded half
//! to even (`torch.round`).

use crate::planes::Planes;

/// The standard luminance table (JPEG Annex K), row after row.
const LUMA: [f32; 64] = [
    16., 11., 10., 16., 24., 40., 51., 61., 12., 12., 14., 19., 26., 58., 60., 55., 14., 13., 16.,
    24., 40., 57., 69., 56., 14., 17., 22., 29., 51., 87., 80., 62., 18., 22., 37., 56., 68., 109.,
    103., 77., 24., 35., 55., 64., 81., 104., 113., 92., 49., 64., 78., 87., 103., 121., 120.,
    101., 72., 92., 95., 98., 112., 100., 103., 99.,
];

/// The chroma table as the reference builds it: 99 except its 4x4 corner.
fn chroma_table() -> [f32; 64] {
    let corner = [
        [17., 18., 24., 47.],
        [18., 21., 26., 66.],
        [24., 26., 56., 99.],
        [47., 66., 99., 99.],
    ];
    let mut t = [99f32; 64];
    for u in 0..4 {
        for v in 0..4 {
            t[u * 8 + v] = corner[v][u];
        }
    }
    t
}

/// The luminance table transposed, as the reference uses it.
fn luma_table() -> [f32; 64] {
    std::array::from_fn(|i| LUMA[(i % 8) * 8 + i / 8])
}

/// The reference's `quality_to_factor`.
pub fn quality_factor(quality: f32) -> f32 {
    if quality < 50.0 {
        5000.0 / quality / 100.0
    } else {
        (200.0 - quality * 2.0) / 100.0
    }
}

/// `cos((2x + 1) u pi / 16)` at `[u][x]`.
fn cosines() -> [[f32; 8]; 8] {
    std::array::from_fn(|u| {
        std::array::from_fn(|x| {
            ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos() as f32
        })
    })
}

const ALPHA0: f32 = std::f32::consts::FRAC_1_SQRT_2;

fn alpha(u: usize) -> f32 {
    if u == 0 {
        ALPHA0
    } else {
        1.0
    }
}

/// One plane (`h x w`, multiples of 8, values around 0..255) through the forward
/// transform, quantisation with `table * factor`, dequantisation and the inverse.
fn code_plane(p: &mut [f32], h: usize, w: usize, table: &[f32; 64], factor: f32) {
    let cos = cosines();
    let q: [f32; 64] = std::array::from_fn(|i| table[i] * factor);
    let mut block = [[0f32; 8]; 8];
    let mut tmp = [[0f32; 8]; 8];
    for by in (0..h).step_by(8) {
        for bx in (0..w).step_by(8) {
            for (x, row) in block.iter_mut().enumerate() {
                for (y, v) in row.iter_mut().enumerate() {
                    *v = p[(by + x) * w + bx + y] - 128.0;
                }
            }
            // Forward: d[u][v] = a(u) a(v) / 4 * sum_x sum_y b[x][y] cos[u][x] cos[v][y].
            for x in 0..8 {
                for v in 0..8 {
                    tmp[x][v] = (0..8).map(|y| block[x][y] * cos[v][y]).sum();
                }
            }
            let mut coef = [[0f32; 8]; 8];
            for u in 0..8 {
                for v in 0..8 {
                    let s: f32 = (0..8).map(|x| cos[u][x] * tmp[x][v]).sum();
                    let d = alpha(u) * alpha(v) * 0.25 * s;
                    let qv = q[u * 8 + v];
                    // Dequantised, with the inverse's alpha weights folded in.
                    coef[u][v] = (d / qv).round_ties_even() * qv * alpha(u) * alpha(v);
                }
            }
            // Inverse: b[x][y] = 1/4 sum_u sum_v c[u][v] cos[u][x] cos[v][y] + 128.
            for u in 0..8 {
                for y in 0..8 {
                    tmp[u][y] = (0..8).map(|v| coef[u][v] * cos[v][y]).sum();
                }
            }
            for x in 0..8 {
                for y in 0..8 {
                    let s: f32 = (0..8).map(|u| cos[u][x] * tmp[u][y]).sum();
                    p[(by + x) * w + bx + y] = 0.25 * s + 128.0;
                }
            }
        }
    }
}

/// The JPEG simulation at `quality` (a real number in `[1, 100]`), in place, values in
/// `[0, 1]` (the caller clamps first, as the reference does).
pub fn diff_jpeg(img: &mut Planes, quality: f32) {
    assert_eq!(img.c, 3);
    let (h, w) = (img.h, img.w);
    if h == 0 || w == 0 {
        return;
    }
    let factor = quality_factor(quality);
    let (ph, pw) = (h.div_ceil(16) * 16, w.div_ceil(16) * 16);
    let (ch, cw) = (ph / 2, pw / 2);
    let mut y = vec![0f32; ph * pw];
    // Full-size chroma first, then averaged over 2x2.
    let mut cb_full = vec![0f32; ph * pw];
    let mut cr_full = vec![0f32; ph * pw];
    let n = h * w;
    for r in 0..ph {
        for c in 0..pw {
            let (rv, gv, bv) = if r < h && c < w {
                let i = r * w + c;
                (
                    img.data[i] * 255.0,
                    img.data[n + i] * 255.0,
                    img.data[2 * n + i] * 255.0,
                )
            } else {
                (0.0, 0.0, 0.0)
            };
            let i = r * pw + c;
            y[i] = 0.299 * rv + 0.587 * gv + 0.114 * bv;
            cb_full[i] = -0.168736 * rv - 0.331264 * gv + 0.5 * bv + 128.0;
            cr_full[i] = 0.5 * rv - 0.418688 * gv - 0.081312 * bv + 128.0;
        }
    }
    let pool = |full: &[f32]| -> Vec<f32> {
        let mut out = vec![0f32; ch * cw];
        for r in 0..ch {
            for c in 0..cw {
                let at = 2 * r * pw + 2 * c;
                out[r * cw + c] =
                    (full[at] + full[at + 1] + full[at + pw] + full[at + pw + 1]) / 4.0;
            }
        }
        out
    };
    let mut cb = pool(&cb_full);
    let mut cr = pool(&cr_full);
    let (lt, ct) = (luma_table(), chroma_table());
    code_plane(&mut y, ph, pw, &lt, factor);
    code_plane(&mut cb, ch, cw, &ct, factor);
    code_plane(&mut cr, ch, cw, &ct, factor);
    for r in 0..h {
        for c in 0..w {
            let yv = y[r * pw + c];
            let ci = (r / 2) * cw + c / 2;
            let (cbv, crv) = (cb[ci] - 128.0, cr[ci] - 128.0);
            let rgb = [
                yv + 1.402 * crv,
                yv - 0.344136 * cbv - 0.714136 * crv,
                yv + 1.772 * cbv,
            ];
            let i = r * w + c;
            for (k, v) in rgb.into_iter().enumerate() {
                img.data[k * n + i] = v.clamp(0.0, 255.0) / 255.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_factor_is_the_references() {
        assert_eq!(quality_factor(50.0), 1.0);
        assert_eq!(quality_factor(25.0), 2.0);
        assert!((quality_factor(95.0) - 0.1).abs() < 1e-6);
        assert!((quality_factor(30.0) - 5.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn flat_grey_survives_and_detail_is_lost_more_at_low_quality() {
        // A whole number of blocks: no black padding reaches the image.
        let mut flat = Planes {
            c: 3,
            h: 32,
            w: 16,
            data: vec![0.5; 3 * 32 * 16],
        };
        diff_jpeg(&mut flat, 40.0);
        assert!(flat.data.iter().all(|v| (v - 0.5).abs() < 1.0 / 255.0));
        let (h, w) = (20, 27);
        let tex: Vec<f32> = (0..3 * h * w)
            .map(|i| ((i * 7919) % 251) as f32 / 250.0)
            .collect();
        let err = |q: f32| {
            let mut img = Planes {
                c: 3,
                h,
                w,
                data: tex.clone(),
            };
            diff_jpeg(&mut img, q);
            assert_eq!((img.h, img.w), (h, w));
            img.data
                .iter()
                .zip(&tex)
                .map(|(a, b)| (a - b).abs())
                .sum::<f32>()
        };
        assert!(err(95.0) < err(30.0));
        assert!(err(30.0) > 0.0);
    }
}
