//! The colour corruptions: quantisation, a colour cast, saturation, greyscale and
//! colour jitter (which the datasets' own jitter augmentation uses too).

use super::{planes_mut, Rng};
use crate::planes::Planes;

/// `(v * 255) // div * div / 255`, in float32 as numpy computes it.
pub(super) fn quantize(img: &mut Planes, div: u32) {
    let d = div as f32;
    for v in &mut img.data {
        *v = (*v * 255.0 / d).floor() * d / 255.0;
    }
}

/// A colour cast: each channel offset by a uniform amount in `[-0.15 r, 0.15 r]`,
/// clamped to [0, 1].
pub(super) fn color_shift(img: &mut Planes, r: f64, rng: &mut Rng) {
    let offsets: Vec<f32> = (0..img.c)
        .map(|_| ((rng.unit() * 2.0 - 1.0) * 0.15 * r) as f32)
        .collect();
    for (plane, off) in planes_mut(img).zip(offsets) {
        for v in plane {
            *v = (*v + off).clamp(0.0, 1.0);
        }
    }
}

/// `clip(v + amount, 0, 1)`.
pub(super) fn saturate(img: &mut Planes, amount: f32) {
    for v in &mut img.data {
        *v = (*v + amount).clamp(0.0, 1.0);
    }
}

/// The channel mean copied to all three channels.
pub(super) fn greyscale(img: &mut Planes) {
    let n = img.h * img.w;
    let (r, rest) = img.data.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    for i in 0..n {
        let m = (r[i] + g[i] + b[i]) / 3.0;
        (r[i], g[i], b[i]) = (m, m, m);
    }
}

fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// Brightness, contrast and saturation factors in `[max(0, 1 - s), 1 + s]` and a hue
/// shift in `[-s, s]` of a turn, applied in a random order and clamped to [0, 1]
/// (torchvision's `ColorJitter(s, s, s, s)`). Skipped when `s * 255 <= 1`, as DLAS.
pub(super) fn color_jitter(img: &mut Planes, s: f64, rng: &mut Rng) {
    color_jitter_planes(&mut img.data, s, rng)
}

/// [`color_jitter`] on three planes stored one after the other in `data`.
pub(super) fn color_jitter_planes(data: &mut [f32], s: f64, rng: &mut Rng) {
    if s * 255.0 <= 1.0 {
        return;
    }
    let mut factor = || ((1.0 - s).max(0.0) + rng.unit() * (1.0 + s - (1.0 - s).max(0.0))) as f32;
    let (bright, contrast, sat) = (factor(), factor(), factor());
    let hue = ((rng.unit() * 2.0 - 1.0) * s) as f32;
    let mut order = [0usize, 1, 2, 3];
    for i in (1..4).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let n = data.len() / 3;
    let (r, rest) = data.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    let factors = Jitter {
        order,
        bright,
        contrast,
        sat,
        hue,
    };
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::features().avx2 {
        #[target_feature(enable = "avx2")]
        fn avx2(r: &mut [f32], g: &mut [f32], b: &mut [f32], j: &Jitter) {
            j.apply(r, g, b)
        }
        // SAFETY: the CPU supports AVX2 (checked at run time).
        return unsafe { avx2(r, g, b, &factors) };
    }
    factors.apply(r, g, b)
}

/// One colour jitter's draws.
struct Jitter {
    order: [usize; 4],
    bright: f32,
    contrast: f32,
    sat: f32,
    hue: f32,
}

impl Jitter {
    /// The four steps on the R, G and B planes, in `order`; plain loops over the
    /// planes, so they vectorise (the caller compiles them for AVX2 when it can).
    #[inline(always)]
    fn apply(&self, r: &mut [f32], g: &mut [f32], b: &mut [f32]) {
        let n = r.len();
        for step in self.order {
            match step {
                0 => {
                    let f = self.bright;
                    img_map(r, g, b, |v, _| v * f)
                }
                1 => {
                    // The mean luma: f32 sums of blocks in 8 lanes, added up in f64.
                    let mut total = 0f64;
                    for ((r, g), b) in r.chunks(4096).zip(g.chunks(4096)).zip(b.chunks(4096)) {
                        let mut lanes = [0f32; 8];
                        let (r8, g8, b8) =
                            (r.chunks_exact(8), g.chunks_exact(8), b.chunks_exact(8));
                        let tail = r8
                            .remainder()
                            .iter()
                            .zip(g8.remainder())
                            .zip(b8.remainder());
                        let tail: f64 = tail.map(|((&r, &g), &b)| luma(r, g, b) as f64).sum();
                        for ((r, g), b) in r8.zip(g8).zip(b8) {
                            for k in 0..8 {
                                lanes[k] += luma(r[k], g[k], b[k]);
                            }
                        }
                        total += tail + lanes.iter().map(|&v| v as f64).sum::<f64>();
                    }
                    let (c, m) = (
                        self.contrast,
                        (total / n as f64) as f32 * (1.0 - self.contrast),
                    );
                    img_map(r, g, b, |v, _| v * c + m)
                }
                2 => {
                    let f = self.sat;
                    img_map(r, g, b, |v, grey| v * f + grey * (1.0 - f))
                }
                _ => hue_rotate_generic(r, g, b, self.hue),
            }
        }
    }
}

/// Applies `f(value, luma of the pixel)` to every channel, clamped to [0, 1].
#[inline(always)]
fn img_map(r: &mut [f32], g: &mut [f32], b: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let grey = luma(*r, *g, *b);
        *r = clamp01(f(*r, grey));
        *g = clamp01(f(*g, grey));
        *b = clamp01(f(*b, grey));
    }
}

/// `v` clamped to [0, 1] with plain comparisons (one min and one max instruction).
#[inline(always)]
fn clamp01(v: f32) -> f32 {
    let v = if v < 0.0 { 0.0 } else { v };
    if v > 1.0 {
        1.0
    } else {
        v
    }
}

/// Rotates every pixel's hue by `turn` (a fraction of the colour wheel), in HSV, the
/// values clamped to [0, 1] first. Branch-free per pixel, so it vectorises.
#[inline(always)]
fn hue_rotate_generic(r: &mut [f32], g: &mut [f32], b: &mut [f32], turn: f32) {
    let shift = turn * 6.0;
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        (*r, *g, *b) = shift_hue(*r, *g, *b, shift);
    }
}

/// One pixel's hue rotated by `shift` sixths of a turn: the hue sector from the largest
/// channel, then each channel of `V - V S clamp(min(k, 4 - k), 0, 1)` with
/// `k = (n + H) mod 6` for n = 5, 3, 1 (the usual HSV to RGB, without branches).
#[inline(always)]
fn shift_hue(r: f32, g: f32, b: f32, shift: f32) -> (f32, f32, f32) {
    let (r, g, b) = (clamp01(r), clamp01(g), clamp01(b));
    let big = |a: f32, b: f32| if a > b { a } else { b };
    let small = |a: f32, b: f32| if a < b { a } else { b };
    let max = big(big(r, g), b);
    let delta = max - small(small(r, g), b);
    let inv = if delta > 0.0 { 1.0 / delta } else { 0.0 };
    let h = if max == r {
        (g - b) * inv
    } else if max == g {
        (b - r) * inv + 2.0
    } else {
        (r - g) * inv + 4.0
    } + shift;
    let h = h - 6.0 * (h * (1.0 / 6.0)).floor();
    let channel = |n: f32| {
        let k = n + h;
        let k = if k >= 6.0 { k - 6.0 } else { k };
        max - delta * clamp01(small(k, 4.0 - k))
    };
    (channel(5.0), channel(3.0), channel(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hue_round_trip_of_zero_is_identity() {
        let (r, g, b) = shift_hue(0.2, 0.5, 0.9, 0.0);
        assert!((r - 0.2).abs() < 1e-6 && (g - 0.5).abs() < 1e-6 && (b - 0.9).abs() < 1e-6);
        // A third of a turn (two sixths): red becomes green.
        let (r, g, b) = shift_hue(1.0, 0.0, 0.0, 2.0);
        assert!((r - 0.0).abs() < 1e-6 && (g - 1.0).abs() < 1e-6 && b.abs() < 1e-6);
    }
}
