//! The degradation's options, named as in Real-ESRGAN's training YAML (dataset and
//! model sections together), with the defaults of `train_realesrgan_x4plus.yml`.

use serde::Deserialize;

use super::kernels::{KernelKind, KERNEL_NAMES};
use crate::error::{CoreError, Result};

/// The options as written: every name of the YAML, flat.
#[derive(Deserialize, Clone, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct Raw {
    pub blur_kernel_size: usize,
    pub kernel_list: Vec<String>,
    pub kernel_prob: Vec<f64>,
    pub sinc_prob: f64,
    pub blur_sigma: Vec<f64>,
    pub betag_range: Vec<f64>,
    pub betap_range: Vec<f64>,
    pub blur_kernel_size2: usize,
    pub kernel_list2: Vec<String>,
    pub kernel_prob2: Vec<f64>,
    pub sinc_prob2: f64,
    pub blur_sigma2: Vec<f64>,
    pub betag_range2: Vec<f64>,
    pub betap_range2: Vec<f64>,
    pub final_sinc_prob: f64,
    pub resize_prob: Vec<f64>,
    pub resize_range: Vec<f64>,
    pub gaussian_noise_prob: f64,
    pub noise_range: Vec<f64>,
    pub poisson_scale_range: Vec<f64>,
    pub gray_noise_prob: f64,
    pub jpeg_range: Vec<f64>,
    pub second_blur_prob: f64,
    pub resize_prob2: Vec<f64>,
    pub resize_range2: Vec<f64>,
    pub gaussian_noise_prob2: f64,
    pub noise_range2: Vec<f64>,
    pub poisson_scale_range2: Vec<f64>,
    pub gray_noise_prob2: f64,
    pub jpeg_range2: Vec<f64>,
    /// Also return the sharpened ground truth (BasicSR's `USMSharp`).
    pub gt_usm: bool,
}

fn all_kernels() -> Vec<String> {
    KERNEL_NAMES.iter().map(|(n, _)| n.to_string()).collect()
}

impl Default for Raw {
    fn default() -> Raw {
        let probs = vec![0.45, 0.25, 0.12, 0.03, 0.12, 0.03];
        Raw {
            blur_kernel_size: 21,
            kernel_list: all_kernels(),
            kernel_prob: probs.clone(),
            sinc_prob: 0.1,
            blur_sigma: vec![0.2, 3.0],
            betag_range: vec![0.5, 4.0],
            betap_range: vec![1.0, 2.0],
            blur_kernel_size2: 21,
            kernel_list2: all_kernels(),
            kernel_prob2: probs,
            sinc_prob2: 0.1,
            blur_sigma2: vec![0.2, 1.5],
            betag_range2: vec![0.5, 4.0],
            betap_range2: vec![1.0, 2.0],
            final_sinc_prob: 0.8,
            resize_prob: vec![0.2, 0.7, 0.1],
            resize_range: vec![0.15, 1.5],
            gaussian_noise_prob: 0.5,
            noise_range: vec![1.0, 30.0],
            poisson_scale_range: vec![0.05, 3.0],
            gray_noise_prob: 0.4,
            jpeg_range: vec![30.0, 95.0],
            second_blur_prob: 0.8,
            resize_prob2: vec![0.3, 0.4, 0.3],
            resize_range2: vec![0.3, 1.2],
            gaussian_noise_prob2: 0.5,
            noise_range2: vec![1.0, 25.0],
            poisson_scale_range2: vec![0.05, 2.5],
            gray_noise_prob2: 0.4,
            jpeg_range2: vec![30.0, 95.0],
            gt_usm: false,
        }
    }
}

/// One order of the degradation: its blur kernels, resize, noise and JPEG.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub blur_kernel_size: usize,
    pub kinds: Vec<KernelKind>,
    pub kernel_prob: Vec<f64>,
    pub sinc_prob: f64,
    pub blur_sigma: [f64; 2],
    pub betag_range: [f64; 2],
    pub betap_range: [f64; 2],
    pub resize_prob: Vec<f64>,
    pub resize_range: [f64; 2],
    pub gaussian_noise_prob: f64,
    pub noise_range: [f64; 2],
    pub poisson_scale_range: [f64; 2],
    pub gray_noise_prob: f64,
    pub jpeg_range: [f64; 2],
}

/// Checked options.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub first: Stage,
    pub second: Stage,
    pub second_blur_prob: f64,
    pub final_sinc_prob: f64,
    pub gt_usm: bool,
}

/// The smallest blur sigma accepted (smaller ones underflow the kernels' covariance).
pub const MIN_SIGMA: f64 = 1e-3;
/// The largest blur kernel accepted (the reference's is 21).
pub const MAX_KERNEL_SIZE: usize = 99;
/// The largest resize factor accepted: an item's intermediate image grows by at most
/// this much (the reference's default is 1.5).
pub const MAX_RESIZE: f64 = 4.0;

fn err(option: &str, reason: String) -> CoreError {
    CoreError::option(option, reason)
}

fn prob(option: &str, p: f64) -> Result<f64> {
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(err(
            option,
            format!("must be a probability in [0, 1], got {p}"),
        ))
    }
}

/// A `[lo, hi]` range with `lo <= hi`, both within `[min, max]`.
fn range(option: &str, v: &[f64], min: f64, max: f64) -> Result<[f64; 2]> {
    match *v {
        [lo, hi] if lo.is_finite() && hi.is_finite() => {
            if lo > hi {
                Err(err(option, format!("is an empty range: [{lo}, {hi}]")))
            } else if lo < min || hi > max {
                Err(err(
                    option,
                    format!("must lie within [{min}, {max}], got [{lo}, {hi}]"),
                ))
            } else {
                Ok([lo, hi])
            }
        }
        _ => Err(err(
            option,
            format!("must be a range [low, high] of two numbers, got {v:?}"),
        )),
    }
}

/// Weights that are probabilities summing to one, `n` of them.
fn probs(option: &str, v: &[f64], n: usize) -> Result<Vec<f64>> {
    if v.len() != n {
        return Err(err(
            option,
            format!("must have {n} probabilities, got {}", v.len()),
        ));
    }
    for &p in v {
        prob(option, p)?;
    }
    let sum: f64 = v.iter().sum();
    if (sum - 1.0).abs() > 1e-6 {
        return Err(err(option, format!("must sum to 1, got {v:?} (sum {sum})")));
    }
    Ok(v.to_vec())
}

fn kernel_size(option: &str, k: usize) -> Result<usize> {
    if k < 3 || k.is_multiple_of(2) || k > MAX_KERNEL_SIZE {
        Err(err(
            option,
            format!("must be an odd kernel size from 3 to {MAX_KERNEL_SIZE}, got {k}"),
        ))
    } else {
        Ok(k)
    }
}

fn kinds(option: &str, names: &[String]) -> Result<Vec<KernelKind>> {
    if names.is_empty() {
        return Err(err(option, "must name at least one kernel".into()));
    }
    names
        .iter()
        .map(|n| {
            KernelKind::parse(n).ok_or_else(|| {
                let known: Vec<&str> = KERNEL_NAMES.iter().map(|(n, _)| *n).collect();
                err(
                    option,
                    format!("unknown kernel {n:?}; known: {}", known.join(", ")),
                )
            })
        })
        .collect()
}

impl Raw {
    /// The checked options: the first option out of range is a named error.
    pub fn check(&self) -> Result<Options> {
        let stage = |suffix: &str| -> Result<Stage> {
            let s = |name: &str| format!("{name}{suffix}");
            let second = !suffix.is_empty();
            let list = pick(second, &self.kernel_list, &self.kernel_list2);
            let kinds = kinds(&s("kernel_list"), list)?;
            let kp = probs(
                &s("kernel_prob"),
                pick(second, &self.kernel_prob, &self.kernel_prob2),
                kinds.len(),
            )?;
            Ok(Stage {
                blur_kernel_size: kernel_size(
                    &s("blur_kernel_size"),
                    pick(second, self.blur_kernel_size, self.blur_kernel_size2),
                )?,
                kinds,
                kernel_prob: kp,
                sinc_prob: prob(
                    &s("sinc_prob"),
                    pick(second, self.sinc_prob, self.sinc_prob2),
                )?,
                blur_sigma: {
                    let r = range(
                        &s("blur_sigma"),
                        pick(second, &self.blur_sigma, &self.blur_sigma2),
                        0.0,
                        100.0,
                    )?;
                    if r[0] < MIN_SIGMA {
                        return Err(err(
                            &s("blur_sigma"),
                            format!("must be at least {MIN_SIGMA}, got {r:?}"),
                        ));
                    }
                    r
                },
                // The reference draws beta below and above one: the ranges span it.
                betag_range: range(
                    &s("betag_range"),
                    pick(second, &self.betag_range, &self.betag_range2),
                    1e-3,
                    1.0 / 1e-3,
                )
                .and_then(|r| spans_one(&s("betag_range"), r))?,
                betap_range: range(
                    &s("betap_range"),
                    pick(second, &self.betap_range, &self.betap_range2),
                    1e-3,
                    1.0 / 1e-3,
                )
                .and_then(|r| spans_one(&s("betap_range"), r))?,
                resize_prob: probs(
                    &s("resize_prob"),
                    pick(second, &self.resize_prob, &self.resize_prob2),
                    3,
                )?,
                resize_range: range(
                    &s("resize_range"),
                    pick(second, &self.resize_range, &self.resize_range2),
                    1e-3,
                    MAX_RESIZE,
                )
                .and_then(|r| spans_one(&s("resize_range"), r))?,
                gaussian_noise_prob: prob(
                    &s("gaussian_noise_prob"),
                    pick(second, self.gaussian_noise_prob, self.gaussian_noise_prob2),
                )?,
                noise_range: range(
                    &s("noise_range"),
                    pick(second, &self.noise_range, &self.noise_range2),
                    0.0,
                    255.0,
                )?,
                poisson_scale_range: range(
                    &s("poisson_scale_range"),
                    pick(
                        second,
                        &self.poisson_scale_range,
                        &self.poisson_scale_range2,
                    ),
                    0.0,
                    100.0,
                )?,
                gray_noise_prob: prob(
                    &s("gray_noise_prob"),
                    pick(second, self.gray_noise_prob, self.gray_noise_prob2),
                )?,
                jpeg_range: {
                    let r = range(
                        &s("jpeg_range"),
                        pick(second, &self.jpeg_range, &self.jpeg_range2),
                        1.0,
                        100.0,
                    )?;
                    // DiffJPEG's tables are zero at quality 100 (a division by zero).
                    if r[1] >= 100.0 {
                        return Err(err(
                            &s("jpeg_range"),
                            format!("must stay below 100 (DiffJPEG's quality 100 divides by zero), got {r:?}"),
                        ));
                    }
                    r
                },
            })
        };
        Ok(Options {
            first: stage("")?,
            second: stage("2")?,
            second_blur_prob: prob("second_blur_prob", self.second_blur_prob)?,
            final_sinc_prob: prob("final_sinc_prob", self.final_sinc_prob)?,
            gt_usm: self.gt_usm,
        })
    }
}

fn pick<T>(second: bool, a: T, b: T) -> T {
    if second {
        b
    } else {
        a
    }
}

/// A range the reference splits at one (draws below it and above it).
fn spans_one(option: &str, r: [f64; 2]) -> Result<[f64; 2]> {
    if r[0] <= 1.0 && 1.0 <= r[1] {
        Ok(r)
    } else {
        Err(err(option, format!("must include 1, got {r:?}")))
    }
}

impl Default for Options {
    fn default() -> Options {
        Raw::default().check().expect("the defaults are valid")
    }
}
