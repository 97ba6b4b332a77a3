//! OpenCV's `INTER_AREA` on float planes: exact block means for integer factors,
//! pixel-area weights otherwise, and OpenCV's linear interpolation with area
//! coefficients when the plane grows.

use super::resample::{resample_plane, Filter};
use crate::image::resize::Taps;

/// Block means of `k x k` blocks (OpenCV's `INTER_AREA` for an integer factor on a
/// float image: the block sum times `1 / k^2`). Compiled for the baseline target and
/// for AVX2 (picked at run time); the same additions in the same order in both.
fn box_plane(src: &[f32], src_w: usize, k: usize, dst_w: usize, dst_h: usize) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::features().avx2 {
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
}
