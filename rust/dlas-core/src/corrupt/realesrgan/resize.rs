//! torch's `F.interpolate` as Real-ESRGAN calls it on float images: `area`
//! (`adaptive_avg_pool2d`), `bilinear` and `bicubic` (a = -0.75), `align_corners=False`,
//! no antialiasing. With a scale factor, torch maps output pixel `i` to source
//! `(i + 0.5) / factor - 0.5` (the factor as given, not the ratio of the sizes) and the
//! output is `floor(size * factor)`; with a size, the factor is the ratio of the sizes.
//! The arithmetic is f32, as torch's CPU kernels do it for float tensors.

use crate::planes::Planes;

/// An interpolation mode, drawn uniformly by the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Area,
    Bilinear,
    Bicubic,
}

pub const MODES: [Mode; 3] = [Mode::Area, Mode::Bilinear, Mode::Bicubic];

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Area => "area",
            Mode::Bilinear => "bilinear",
            Mode::Bicubic => "bicubic",
        }
    }

    pub fn parse(name: &str) -> Option<Mode> {
        MODES.into_iter().find(|m| m.name() == name)
    }
}

/// For each output index along one axis: the source indices and weights of its taps.
struct Axis {
    taps: usize,
    index: Vec<usize>,
    weight: Vec<f32>,
}

/// `scale` is torch's `1 / factor` (given) or `input / output`. An axis whose size does
/// not change is copied whatever the factor, as torch's bilinear kernel does (its
/// bicubic one does not).
fn linear_axis(input: usize, output: usize, scale: f32) -> Axis {
    let mut index = Vec::with_capacity(2 * output);
    let mut weight = Vec::with_capacity(2 * output);
    if input == output {
        for i in 0..output {
            index.extend([i, i]);
            weight.extend([1.0, 0.0]);
        }
        return Axis {
            taps: 2,
            index,
            weight,
        };
    }
    for i in 0..output {
        let real = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
        let i0 = (real.floor() as usize).min(input - 1);
        let l1 = (real - i0 as f32).clamp(0.0, 1.0);
        let i1 = if i0 < input - 1 { i0 + 1 } else { i0 };
        index.extend([i0, i1]);
        weight.extend([1.0 - l1, l1]);
    }
    Axis {
        taps: 2,
        index,
        weight,
    }
}

fn cubic_axis(input: usize, output: usize, scale: f32) -> Axis {
    const A: f32 = -0.75;
    let conv1 = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let conv2 = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    let mut index = Vec::with_capacity(4 * output);
    let mut weight = Vec::with_capacity(4 * output);
    let last = input as i64 - 1;
    for i in 0..output {
        let real = scale * (i as f32 + 0.5) - 0.5;
        let i0 = (real.floor() as i64).min(last);
        let t = (real - i0 as f32).clamp(0.0, 1.0);
        for d in -1..=2 {
            index.push((i0 + d).clamp(0, last) as usize);
        }
        weight.extend([conv2(t + 1.0), conv1(t), conv1(1.0 - t), conv2(2.0 - t)]);
    }
    Axis {
        taps: 4,
        index,
        weight,
    }
}

/// `adaptive_avg_pool` windows: `[floor(i * in / out), ceil((i + 1) * in / out))`, equal
/// weights.
fn area_axis(input: usize, output: usize) -> Axis {
    let windows: Vec<(usize, usize)> = (0..output)
        .map(|i| (i * input / output, ((i + 1) * input).div_ceil(output)))
        .collect();
    let taps = windows.iter().map(|(a, b)| b - a).max().unwrap_or(1);
    let mut index = Vec::with_capacity(taps * output);
    let mut weight = Vec::with_capacity(taps * output);
    for (a, b) in windows {
        let n = b - a;
        for t in 0..taps {
            index.push(if t < n { a + t } else { a });
            weight.push(if t < n { 1.0 / n as f32 } else { 0.0 });
        }
    }
    Axis {
        taps,
        index,
        weight,
    }
}

fn axis(mode: Mode, input: usize, output: usize, scale: f32) -> Axis {
    match mode {
        Mode::Area => area_axis(input, output),
        Mode::Bilinear => linear_axis(input, output, scale),
        Mode::Bicubic => cubic_axis(input, output, scale),
    }
}

/// torch's scale for one axis: `1 / factor` when a factor was given, else in / out.
fn torch_scale(input: usize, output: usize, factor: Option<f64>) -> f32 {
    match factor {
        Some(f) if f > 0.0 => (1.0 / f) as f32,
        _ => input as f32 / output as f32,
    }
}

/// `F.interpolate(img, size=(h, w), mode)` (`factor: None`) or with
/// `scale_factor=factor` (then `(h, w)` must be `floor(size * factor)`).
pub fn interpolate(img: &Planes, h: usize, w: usize, mode: Mode, factor: Option<f64>) -> Planes {
    assert!(
        h > 0 && w > 0 && img.h > 0 && img.w > 0,
        "images are never empty here"
    );
    if (h, w) == (img.h, img.w) && !matches!(factor, Some(f) if f != 1.0) {
        return img.clone();
    }
    let ax = axis(mode, img.w, w, torch_scale(img.w, w, factor));
    let ay = axis(mode, img.h, h, torch_scale(img.h, h, factor));
    let mut out = Planes::zeros(img.c, h, w);
    let mut tmp = vec![0f32; img.h * w];
    for c in 0..img.c {
        let src = img.plane(c);
        // Along rows first, then down the columns.
        for y in 0..img.h {
            let row = &src[y * img.w..(y + 1) * img.w];
            for (x, t) in tmp[y * w..(y + 1) * w].iter_mut().enumerate() {
                let at = x * ax.taps;
                let mut acc = 0f32;
                for k in 0..ax.taps {
                    acc += row[ax.index[at + k]] * ax.weight[at + k];
                }
                *t = acc;
            }
        }
        let dst = &mut out.data[c * h * w..(c + 1) * h * w];
        for y in 0..h {
            let at = y * ay.taps;
            let o = &mut dst[y * w..(y + 1) * w];
            for k in 0..ay.taps {
                let wt = ay.weight[at + k];
                if wt == 0.0 && k > 0 {
                    continue;
                }
                let r = &tmp[ay.index[at + k] * w..][..w];
                if k == 0 {
                    for (o, &v) in o.iter_mut().zip(r) {
                        *o = v * wt;
                    }
                } else {
                    for (o, &v) in o.iter_mut().zip(r) {
                        *o += v * wt;
                    }
                }
            }
        }
    }
    out
}

/// `F.interpolate(img, scale_factor=factor, mode)`: the output is
/// `floor(size * factor)` (at least one pixel).
pub fn interpolate_by(img: &Planes, factor: f64, mode: Mode) -> Planes {
    let h = ((img.h as f64 * factor).floor() as usize).max(1);
    let w = ((img.w as f64 * factor).floor() as usize).max(1);
    interpolate(img, h, w, mode, Some(factor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(h: usize, w: usize) -> Planes {
        let data = (0..3 * h * w)
            .map(|i| ((i * 37) % 101) as f32 / 100.0)
            .collect();
        Planes { c: 3, h, w, data }
    }

    #[test]
    fn a_factor_of_one_and_the_same_size_are_the_identity() {
        let img = ramp(9, 13);
        for mode in MODES {
            assert_eq!(interpolate_by(&img, 1.0, mode), img, "{mode:?}");
            assert_eq!(interpolate(&img, 9, 13, mode, None), img, "{mode:?}");
        }
    }

    #[test]
    fn halving_by_area_averages_pairs() {
        let img = ramp(4, 6);
        let out = interpolate(&img, 2, 3, Mode::Area, None);
        let p = img.plane(1);
        let want = (p[12 + 2] + p[12 + 3] + p[18 + 2] + p[18 + 3]) / 4.0;
        assert!((out.plane(1)[3 + 1] - want).abs() < 1e-6);
    }

    #[test]
    fn a_constant_stays_constant_in_every_mode_and_size() {
        let img = Planes {
            c: 3,
            h: 7,
            w: 5,
            data: vec![0.25; 105],
        };
        for mode in MODES {
            for f in [0.3, 0.5, 1.37, 2.0] {
                let out = interpolate_by(&img, f, mode);
                assert!(
                    out.data.iter().all(|v| (v - 0.25).abs() < 1e-6),
                    "{mode:?} {f}"
                );
            }
        }
    }
}
