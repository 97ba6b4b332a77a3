//! The blur kernels of the degradation, as BasicSR's `degradations.py` defines them:
//! bivariate Gaussians (isotropic or rotated), generalized Gaussians, plateaus and the
//! circular low-pass ("sinc") filter. Kernels are computed in f64 and normalised to sum
//! to one; the pipeline then uses them as f32, as the reference hands them to torch.

/// A blur kernel family (`kernel_list` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    Iso,
    Aniso,
    GeneralizedIso,
    GeneralizedAniso,
    PlateauIso,
    PlateauAniso,
}

/// Every kernel name, in the order Real-ESRGAN's configs list them.
pub const KERNEL_NAMES: &[(&str, KernelKind)] = &[
    ("iso", KernelKind::Iso),
    ("aniso", KernelKind::Aniso),
    ("generalized_iso", KernelKind::GeneralizedIso),
    ("generalized_aniso", KernelKind::GeneralizedAniso),
    ("plateau_iso", KernelKind::PlateauIso),
    ("plateau_aniso", KernelKind::PlateauAniso),
];

impl KernelKind {
    pub fn parse(name: &str) -> Option<KernelKind> {
        KERNEL_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, k)| k)
    }

    pub fn name(self) -> &'static str {
        KERNEL_NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .expect("every kind is named")
    }

    /// True for the kinds with one sigma and no rotation.
    pub fn isotropic(self) -> bool {
        matches!(
            self,
            KernelKind::Iso | KernelKind::GeneralizedIso | KernelKind::PlateauIso
        )
    }

    /// True for the kinds with a shape parameter beta, and which range it comes from:
    /// `Some(false)` generalized (`betag_range`), `Some(true)` plateau (`betap_range`).
    pub fn beta_plateau(self) -> Option<bool> {
        match self {
            KernelKind::Iso | KernelKind::Aniso => None,
            KernelKind::GeneralizedIso | KernelKind::GeneralizedAniso => Some(false),
            KernelKind::PlateauIso | KernelKind::PlateauAniso => Some(true),
        }
    }
}

/// `size x size` values, row after row, summing to one.
fn normalised(k: Vec<f64>) -> Vec<f64> {
    let sum: f64 = k.iter().sum();
    k.into_iter().map(|v| v / sum).collect()
}

/// The quadratic form `p^T S^-1 p` of the kernel's covariance `S` at every grid point
/// `p = (x, y)` (x along a row, y down the rows, both from `-(size/2)` to `size/2`).
/// `S` is `diag(sx^2, sx^2)` when isotropic, else `U diag(sx^2, sy^2) U^T` with `U` the
/// rotation by `theta`.
fn quadratic_forms(size: usize, sx: f64, sy: f64, theta: f64, isotropic: bool) -> Vec<f64> {
    let (a, b, d) = if isotropic {
        (sx * sx, 0.0, sx * sx)
    } else {
        let (s, c) = theta.sin_cos();
        let (vx, vy) = (sx * sx, sy * sy);
        (
            c * c * vx + s * s * vy,
            c * s * (vx - vy),
            s * s * vx + c * c * vy,
        )
    };
    // The inverse of [[a, b], [b, d]].
    let det = a * d - b * b;
    let (ia, ib, id) = (d / det, -b / det, a / det);
    let half = (size / 2) as f64;
    let mut out = Vec::with_capacity(size * size);
    for r in 0..size {
        let y = r as f64 - half;
        for c in 0..size {
            let x = c as f64 - half;
            out.push(x * x * ia + 2.0 * x * y * ib + y * y * id);
        }
    }
    out
}

/// BasicSR's `bivariate_Gaussian`.
pub fn gaussian(size: usize, sx: f64, sy: f64, theta: f64, isotropic: bool) -> Vec<f64> {
    let q = quadratic_forms(size, sx, sy, theta, isotropic);
    normalised(q.into_iter().map(|v| (-0.5 * v).exp()).collect())
}

/// BasicSR's `bivariate_generalized_Gaussian`: `exp(-0.5 * q^beta)`.
pub fn generalized(
    size: usize,
    sx: f64,
    sy: f64,
    theta: f64,
    beta: f64,
    isotropic: bool,
) -> Vec<f64> {
    let q = quadratic_forms(size, sx, sy, theta, isotropic);
    normalised(q.into_iter().map(|v| (-0.5 * v.powf(beta)).exp()).collect())
}

/// BasicSR's `bivariate_plateau`: `1 / (q^beta + 1)`.
pub fn plateau(size: usize, sx: f64, sy: f64, theta: f64, beta: f64, isotropic: bool) -> Vec<f64> {
    let q = quadratic_forms(size, sx, sy, theta, isotropic);
    normalised(q.into_iter().map(|v| 1.0 / (v.powf(beta) + 1.0)).collect())
}

/// The kernel of `kind` with these parameters (`sy` and `theta` unused when isotropic,
/// `beta` unused by the plain Gaussians).
pub fn of_kind(kind: KernelKind, size: usize, sx: f64, sy: f64, theta: f64, beta: f64) -> Vec<f64> {
    let iso = kind.isotropic();
    match kind.beta_plateau() {
        None => gaussian(size, sx, sy, theta, iso),
        Some(false) => generalized(size, sx, sy, theta, beta, iso),
        Some(true) => plateau(size, sx, sy, theta, beta, iso),
    }
}

/// BasicSR's `circular_lowpass_kernel(cutoff, size, pad_to)`: the 2-D circularly
/// symmetric low-pass filter `cutoff * J1(cutoff r) / (2 pi r)` (its limit
/// `cutoff^2 / (4 pi)` at the centre), normalised, then zero-padded to `pad_to` when
/// that is larger. Returns the kernel and its size.
pub fn circular_lowpass(cutoff: f64, size: usize, pad_to: usize) -> (Vec<f64>, usize) {
    let c = (size as f64 - 1.0) / 2.0;
    let mut k = Vec::with_capacity(size * size);
    for r in 0..size {
        for col in 0..size {
            let d = ((r as f64 - c).powi(2) + (col as f64 - c).powi(2)).sqrt();
            k.push(if d == 0.0 {
                cutoff * cutoff / (4.0 * std::f64::consts::PI)
            } else {
                cutoff * libm::j1(cutoff * d) / (2.0 * std::f64::consts::PI * d)
            });
        }
    }
    let k = normalised(k);
    if pad_to > size {
        (pad(&k, size, pad_to), pad_to)
    } else {
        (k, size)
    }
}

/// `k` (`size x size`) centred in a `to x to` kernel of zeros.
pub fn pad(k: &[f64], size: usize, to: usize) -> Vec<f64> {
    let p = (to - size) / 2;
    let mut out = vec![0.0; to * to];
    for r in 0..size {
        out[(r + p) * to + p..(r + p) * to + p + size]
            .copy_from_slice(&k[r * size..(r + 1) * size]);
    }
    out
}

/// OpenCV's `getGaussianKernel(size, 0)` (sigma from the size), in f64: the
/// one-dimensional kernel of BasicSR's `USMSharp`.
pub fn opencv_gaussian_1d(size: usize) -> Vec<f64> {
    let sigma = 0.3 * ((size as f64 - 1.0) * 0.5 - 1.0) + 0.8;
    let half = (size - 1) as f64 / 2.0;
    normalised(
        (0..size)
            .map(|i| (-(i as f64 - half).powi(2) / (2.0 * sigma * sigma)).exp())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_sum_to_one_and_peak_in_the_middle() {
        for &(_, kind) in KERNEL_NAMES {
            let k = of_kind(kind, 21, 2.0, 0.7, 0.4, 1.5);
            assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            let max = k.iter().cloned().fold(0.0, f64::max);
            assert_eq!(k[10 * 21 + 10], max, "{kind:?}");
        }
        let (s, n) = circular_lowpass(1.3, 13, 21);
        assert_eq!(n, 21);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(s[0], 0.0, "padded with zeros");
    }

    #[test]
    fn an_isotropic_kernel_ignores_rotation_and_sigma_y() {
        let a = gaussian(11, 1.5, 0.3, 1.0, true);
        let b = gaussian(11, 1.5, 1.5, 0.0, false);
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-15);
        }
    }

    #[test]
    fn rotation_by_a_quarter_turn_transposes_an_anisotropic_kernel() {
        let a = gaussian(9, 2.5, 0.8, 0.0, false);
        let b = gaussian(9, 2.5, 0.8, std::f64::consts::FRAC_PI_2, false);
        for r in 0..9 {
            for c in 0..9 {
                assert!((a[r * 9 + c] - b[c * 9 + r]).abs() < 1e-12);
            }
        }
        // Wide along x: the middle row holds more than the middle column.
        let row: f64 = a[4 * 9..5 * 9].iter().sum();
        let col: f64 = (0..9).map(|r| a[r * 9 + 4]).sum();
        assert!(row > col);
    }

    #[test]
    fn opencv_sigma_for_size_51_is_8() {
        let k = opencv_gaussian_1d(51);
        let expect = |i: f64| (-(i * i) / 128.0).exp();
        let norm: f64 = (-25..=25).map(|i| expect(i as f64)).sum();
        assert!((k[25] - 1.0 / norm).abs() < 1e-15);
    }
}
