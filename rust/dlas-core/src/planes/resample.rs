//! OpenCV's `cv2.resize` filters other than `INTER_AREA` on float planes: nearest,
//! bilinear, bicubic (a = -0.75) and Lanczos-4, with OpenCV's pixel mapping and
//! replicated borders. Shrinking with these filters aliases, which is what the
//! `lq_resampling` corruption wants. (The loading path's area filter is
//! [`super::resize_plane`].)

/// A `cv2.resize` interpolation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    Nearest,
    Linear,
    Cubic,
    Lanczos4,
    /// `INTER_AREA` when the image grows on some axis: OpenCV then interpolates
    /// linearly with "area" coefficients (a pixel's weight is the part of its
    /// neighbour's span it covers), on both axes.
    AreaUp,
}

/// For each destination index: the first source index and the weights of the taps
/// that follow it (indices already clamped into the source).
struct Axis {
    taps: usize,
    index: Vec<usize>,
    weight: Vec<f32>,
}

fn cubic(x: f64) -> [f64; 4] {
    const A: f64 = -0.75;
    let w0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let w1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let w2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [w0, w1, w2, 1.0 - w0 - w1 - w2]
}

fn lanczos4(x: f64) -> [f64; 8] {
    let mut w = [0.0; 8];
    if x < f64::from(f32::EPSILON) {
        w[3] = 1.0;
        return w;
    }
    let sinc = |t: f64| {
        let p = std::f64::consts::PI * t;
        p.sin() / p
    };
    let mut sum = 0.0;
    for (i, wi) in w.iter_mut().enumerate() {
        let d = x + 3.0 - i as f64;
        *wi = sinc(d) * sinc(d / 4.0);
        sum += *wi;
    }
    w.iter_mut().for_each(|v| *v /= sum);
    w
}

/// MATLAB's cubic kernel.
fn matlab_cubic(x: f64) -> f64 {
    let a = x.abs();
    if a <= 1.0 {
        1.5 * a * a * a - 2.5 * a * a + 1.0
    } else if a <= 2.0 {
        -0.5 * a * a * a + 2.5 * a * a - 4.0 * a + 2.0
    } else {
        0.0
    }
}

impl Axis {
    /// MATLAB's `imresize` bicubic weights (a = -0.5; BasicSR's
    /// `calculate_weights_indices`), antialiased when shrinking: source
    /// positions `u = x / s + (1 - 1 / s) / 2` (1-based), a kernel of width `4 / s`
    /// when shrinking, indices mirrored at the borders.
    fn matlab(src: usize, dst: usize, s: f64) -> Axis {
        let width = if s < 1.0 { 4.0 / s } else { 4.0 };
        let taps = width.ceil() as usize + 2;
        let mirror = |i: i64| -> usize {
            let n = src as i64;
            let mut i = i;
            loop {
                if i < 0 {
                    i = -i - 1;
                } else if i >= n {
                    i = 2 * n - 1 - i;
                } else {
                    return i as usize;
                }
            }
        };
        let mut index = Vec::with_capacity(dst * taps);
        let mut weight = Vec::with_capacity(dst * taps);
        for x in 1..=dst {
            let u = x as f64 / s + 0.5 * (1.0 - 1.0 / s);
            let left = (u - width / 2.0).floor() as i64;
            let mut w: Vec<f64> = (0..taps)
                .map(|k| {
                    let d = u - (left + k as i64) as f64;
                    if s < 1.0 {
                        s * matlab_cubic(d * s)
                    } else {
                        matlab_cubic(d)
                    }
                })
                .collect();
            let sum: f64 = w.iter().sum();
            w.iter_mut().for_each(|v| *v /= sum);
            for (k, wk) in w.into_iter().enumerate() {
                // 1-based position left + k is 0-based index left + k - 1.
                index.push(mirror(left + k as i64 - 1));
                weight.push(wk as f32);
            }
        }
        Axis {
            taps,
            index,
            weight,
        }
    }

    fn new(src: usize, dst: usize, filter: Filter) -> Axis {
        let scale = src as f64 / dst as f64;
        let taps = match filter {
            Filter::Nearest => 1,
            Filter::Linear | Filter::AreaUp => 2,
            Filter::Cubic => 4,
            Filter::Lanczos4 => 8,
        };
        let mut index = Vec::with_capacity(dst * taps);
        let mut weight = Vec::with_capacity(dst * taps);
        let clamp = |i: i64| i.clamp(0, src as i64 - 1) as usize;
        for d in 0..dst {
            if filter == Filter::Nearest {
                index.push(((d as f64 * scale).floor() as usize).min(src - 1));
                weight.push(1.0);
                continue;
            }
            let (s, x) = if filter == Filter::AreaUp {
                // OpenCV: sx = floor(dx * scale), fx = (dx + 1) - (sx + 1) / scale,
                // then its fractional part (0 when not positive), as a float.
                let inv = dst as f64 / src as f64;
                let s = (d as f64 * scale).floor();
                let fx = ((d + 1) as f64 - (s + 1.0) * inv) as f32;
                let fx = if fx <= 0.0 { 0.0 } else { fx - fx.floor() };
                (s, fx as f64)
            } else {
                let f = (d as f64 + 0.5) * scale - 0.5;
                (f.floor(), f - f.floor())
            };
            let s = s as i64;
            let (first, w): (i64, Vec<f64>) = match filter {
                Filter::Linear | Filter::AreaUp => {
                    // OpenCV pins the sample to the edge pixel outside the source.
                    if s < 0 {
                        (0, vec![1.0, 0.0])
                    } else if s >= src as i64 - 1 {
                        (src as i64 - 1, vec![1.0, 0.0])
                    } else {
                        (s, vec![1.0 - x, x])
                    }
                }
                Filter::Cubic => (s - 1, cubic(x).to_vec()),
                Filter::Lanczos4 => (s - 3, lanczos4(x).to_vec()),
                Filter::Nearest => unreachable!(),
            };
            for (k, wk) in w.into_iter().enumerate() {
                index.push(clamp(first + k as i64));
                weight.push(wk as f32);
            }
        }
        Axis {
            taps,
            index,
            weight,
        }
    }
}

/// Resizes one `src_w x src_h` plane to `dst_w x dst_h` with `filter`: rows first,
/// then columns, as OpenCV does.
pub fn resample_plane(
    src: &[f32],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
    filter: Filter,
) -> Vec<f32> {
    assert_eq!(src.len(), src_w * src_h, "plane size");
    let xa = Axis::new(src_w, dst_w, filter);
    let ya = Axis::new(src_h, dst_h, filter);
    separable_resample(src, src_w, src_h, dst_w, dst_h, &xa, &ya)
}

/// DLAS's `imresize_np(plane, scale)`: MATLAB's bicubic to `ceil(side * scale)` with the
/// weights of the requested `scale` (not of the rounded sizes' ratio). Returns the plane
/// and its width and height.
pub fn matlab_resize_plane(
    src: &[f32],
    src_w: usize,
    src_h: usize,
    scale: f64,
) -> (Vec<f32>, usize, usize) {
    assert_eq!(src.len(), src_w * src_h, "plane size");
    let dst_w = (src_w as f64 * scale).ceil() as usize;
    let dst_h = (src_h as f64 * scale).ceil() as usize;
    let xa = Axis::matlab(src_w, dst_w, scale);
    let ya = Axis::matlab(src_h, dst_h, scale);
    let out = separable_resample(src, src_w, src_h, dst_w, dst_h, &xa, &ya);
    (out, dst_w, dst_h)
}

/// Rows, then columns, with precomputed axes.
fn separable_resample(
    src: &[f32],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
    xa: &Axis,
    ya: &Axis,
) -> Vec<f32> {
    // Horizontal pass: src_h rows of dst_w.
    let mut rows = vec![0f32; src_h * dst_w];
    for (row, out) in src.chunks_exact(src_w).zip(rows.chunks_exact_mut(dst_w)) {
        for (d, o) in out.iter_mut().enumerate() {
            let at = d * xa.taps;
            let mut acc = 0f32;
            for k in 0..xa.taps {
                acc += row[xa.index[at + k]] * xa.weight[at + k];
            }
            *o = acc;
        }
    }
    // Vertical pass: weighted sums of whole rows.
    let mut out = vec![0f32; dst_h * dst_w];
    for (d, o) in out.chunks_exact_mut(dst_w).enumerate() {
        let at = d * ya.taps;
        for k in 0..ya.taps {
            let wgt = ya.weight[at + k];
            if wgt == 0.0 {
                continue;
            }
            let r = ya.index[at + k];
            for (a, &v) in o.iter_mut().zip(&rows[r * dst_w..(r + 1) * dst_w]) {
                *a += v * wgt;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_and_constants_stay_constant() {
        for f in [
            Filter::Nearest,
            Filter::Linear,
            Filter::Cubic,
            Filter::Lanczos4,
            Filter::AreaUp,
        ] {
            for (s, d) in [(64, 16), (16, 64), (10, 7), (7, 10)] {
                let a = Axis::new(s, d, f);
                for w in a.weight.chunks(a.taps) {
                    assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{f:?} {s}->{d}");
                }
                let out = resample_plane(&vec![0.25; s * 3], s, 3, d, 2, f);
                assert!(out.iter().all(|v| (v - 0.25).abs() < 1e-5));
            }
        }
    }

    #[test]
    fn nearest_and_linear_halving_match_opencv() {
        let src: Vec<f32> = (0..8).map(|v| v as f32).collect();
        // INTER_NEAREST takes floor(d * 2); INTER_LINEAR at 2x averages pixel pairs.
        assert_eq!(
            resample_plane(&src, 8, 1, 4, 1, Filter::Nearest),
            [0.0, 2.0, 4.0, 6.0]
        );
        assert_eq!(
            resample_plane(&src, 8, 1, 4, 1, Filter::Linear),
            [0.5, 2.5, 4.5, 6.5]
        );
    }
}
