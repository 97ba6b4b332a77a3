//! The antialiased bilinear resize of torch's `F.interpolate(mode="bilinear",
//! antialias=True, align_corners=False)` (which follows PIL's `resize(BILINEAR)`):
//! a triangle filter as wide as the scale when shrinking, normalised per output pixel,
//! width first and then height, in float. Stylegan2Dataset resizes with it; done here
//! straight from 8-bit pixels, it skips torch's float copy of the whole image.

use super::Planes;
use crate::image::Rgb8View;

/// One axis: for each output pixel its first input pixel and weights, as torch
/// computes them (`center = scale (i + 0.5)`, support `max(scale, 1)`, the triangle
/// `1 - |x|` at `(j - center + 0.5) / max(scale, 1)`, normalised).
fn taps(input: usize, output: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = input as f64 / output as f64;
    let support = scale.max(1.0);
    let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    (0..output)
        .map(|i| {
            let center = scale * (i as f64 + 0.5);
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(input as i64) as usize;
            let mut w: Vec<f64> = (xmin..xmax.max(xmin))
                .map(|j| {
                    let x = (j as f64 - center + 0.5) * invscale;
                    (1.0 - x.abs()).max(0.0)
                })
                .collect();
            let total: f64 = w.iter().sum();
            if total > 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            }
            (xmin, w.into_iter().map(|v| v as f32).collect())
        })
        .collect()
}

/// `src` resized to `out_h x out_w` as three float planes of 0-255 values, each
/// rounded to a whole step and clamped to 0-255 (as an 8-bit resize gives).
pub fn antialias_bilinear_rgb8(src: Rgb8View<'_>, out_h: usize, out_w: usize) -> Planes {
    let mut out = Planes::zeros(3, out_h, out_w);
    if out_h == 0 || out_w == 0 || src.width == 0 || src.height == 0 {
        return out;
    }
    let xs = taps(src.width, out_w);
    let ys = taps(src.height, out_h);
    // Width first: every input row to `out_w` pixels, planar.
    let h = src.height;
    let mut rows = vec![0f32; 3 * h * out_w];
    for y in 0..h {
        let row = src.row(y);
        for (ox, (first, w)) in xs.iter().enumerate() {
            let mut acc = [0f32; 3];
            for (j, &wgt) in w.iter().enumerate() {
                let px = &row[3 * (first + j)..3 * (first + j) + 3];
                for c in 0..3 {
                    acc[c] += wgt * px[c] as f32;
                }
            }
            for (c, v) in acc.into_iter().enumerate() {
                rows[(c * h + y) * out_w + ox] = v;
            }
        }
    }
    // Then height.
    let n = out_h * out_w;
    for c in 0..3 {
        let plane = &rows[c * h * out_w..(c + 1) * h * out_w];
        let dst = &mut out.data[c * n..(c + 1) * n];
        for (oy, (first, w)) in ys.iter().enumerate() {
            let line = &mut dst[oy * out_w..(oy + 1) * out_w];
            for (j, &wgt) in w.iter().enumerate() {
                let src_row = &plane[(first + j) * out_w..(first + j + 1) * out_w];
                for (o, &v) in line.iter_mut().zip(src_row) {
                    *o += wgt * v;
                }
            }
            for o in line.iter_mut() {
                *o = o.round().clamp(0.0, 255.0);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Rgb8;

    #[test]
    fn weights_sum_to_one_and_cover_the_scale() {
        for (i, o) in [(100, 30), (30, 100), (7, 7), (1000, 1), (3, 2)] {
            for (first, w) in taps(i, o) {
                assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{i}->{o}");
                assert!(first + w.len() <= i);
            }
        }
    }

    #[test]
    fn a_flat_image_stays_flat_and_the_same_size_is_itself() {
        let img = Rgb8::new(13, 9, [10u8, 200, 77].repeat(13 * 9));
        let out = antialias_bilinear_rgb8(img.view(), 4, 5);
        assert!(out.data[..20].iter().all(|&v| v == 10.0));
        assert!(out.data[40..].iter().all(|&v| v == 77.0));
        let same = antialias_bilinear_rgb8(img.view(), 9, 13);
        assert_eq!(same, {
            let mut p = Planes::from_rgb8(&img);
            p.data.iter_mut().for_each(|v| *v = (*v * 255.0).round());
            p
        });
    }
}
