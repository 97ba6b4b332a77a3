//! Real-ESRGAN's degradation (`dlas_core::corrupt::realesrgan`): the corruptor that
//! makes it, its draws, and its stages one at a time (what the fidelity tests compare
//! with the reference, and what the preview shows).

use dlas_core::corrupt::realesrgan::{
    self as re, kernels, Degradation, Draws, KernelDraw, KernelKind, Mode, NoiseDraw, Raw,
    ResizeDraw, UpDown,
};
use dlas_core::corrupt::{Corruptor, Keys};
use dlas_core::load::Planes;
use numpy::{IntoPyArray, PyArray2, PyArray3, PyReadonlyArray2, PyReadonlyArray3};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::corrupt::PyCorruptor;
use crate::errors::to_pyerr;

/// The checked options of a dict named as Real-ESRGAN's YAML.
pub(crate) fn degradation(options: &Bound<'_, PyAny>) -> PyResult<Degradation> {
    if !options.is_instance_of::<PyDict>() {
        return Err(PyValueError::new_err("degradation options must be a dict"));
    }
    let mut source = pythonize::Depythonizer::from_object(options);
    let raw: Raw = dlas_core::load::options::read(&mut source).map_err(to_pyerr)?;
    Degradation::new(&raw).map_err(to_pyerr)
}

/// A corruptor applying Real-ESRGAN's degradation with these options (YAML names;
/// missing ones take the `train_realesrgan_x4plus.yml` defaults).
#[pyfunction]
#[pyo3(signature = (options, seed))]
pub(crate) fn realesrgan_corruptor(
    options: &Bound<'_, PyAny>,
    seed: Option<u64>,
) -> PyResult<PyCorruptor> {
    Ok(PyCorruptor {
        inner: Corruptor::degrading(degradation(options)?),
        keys: Keys::new(seed),
    })
}

/// The degradation a corruptor applies, or a ValueError.
fn degradation_of(corruptor: &PyCorruptor) -> PyResult<&Degradation> {
    corruptor
        .inner
        .degradation()
        .ok_or_else(|| PyValueError::new_err("this corruptor is not a degradation"))
}

fn chw(img: &PyReadonlyArray3<'_, f32>) -> PyResult<Planes> {
    let v = img.as_array();
    let (c, h, w) = v.dim();
    if c != 3 || h == 0 || w == 0 {
        return Err(PyValueError::new_err(format!(
            "expected a (3, H, W) float32 image, got shape ({c}, {h}, {w})"
        )));
    }
    Ok(Planes {
        c,
        h,
        w,
        data: v.iter().copied().collect(),
    })
}

fn to_chw(py: Python<'_>, p: Planes) -> PyResult<Bound<'_, PyArray3<f32>>> {
    numpy::ndarray::Array3::from_shape_vec((p.c, p.h, p.w), p.data)
        .map(|a| a.into_pyarray(py))
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// An LQ image and the sharpened ground truth if asked for, both (3, H, W) float32.
type DegradedArrays<'py> = (Bound<'py, PyArray3<f32>>, Option<Bound<'py, PyArray3<f32>>>);

/// The LQ image (3, H/scale, W/scale) of a (3, H, W) float32 ground truth in [0, 1],
/// and its sharpened ground truth when `gt_usm` is set, keyed on (seed, epoch, index).
#[pyfunction]
#[pyo3(signature = (corruptor, gt, scale, epoch, index))]
pub(crate) fn realesrgan_degrade<'py>(
    py: Python<'py>,
    corruptor: PyRef<'py, PyCorruptor>,
    gt: PyReadonlyArray3<'py, f32>,
    scale: usize,
    epoch: u64,
    index: u64,
) -> PyResult<DegradedArrays<'py>> {
    let d = degradation_of(&corruptor)?;
    if scale == 0 {
        return Err(PyValueError::new_err("scale must be at least 1"));
    }
    let gt = chw(&gt)?;
    let key = corruptor.keys.key(epoch, index);
    let out = py.detach(|| d.degrade(&gt, scale, key));
    let usm = out.gt_usm.map(|u| to_chw(py, u)).transpose()?;
    Ok((to_chw(py, out.lq)?, usm))
}

/// A stage's name and its image.
type NamedArray<'py> = (&'static str, Bound<'py, PyArray3<f32>>);

/// The image after each stage of the degradation of a (3, H, W) ground truth keyed
/// (seed, epoch, index): a list of (stage name, (3, h, w) float32 array), from `usm` to
/// `lq` (see the core's `degrade_stages`).
#[pyfunction]
#[pyo3(signature = (corruptor, gt, scale, epoch, index))]
pub(crate) fn realesrgan_stages<'py>(
    py: Python<'py>,
    corruptor: PyRef<'py, PyCorruptor>,
    gt: PyReadonlyArray3<'py, f32>,
    scale: usize,
    epoch: u64,
    index: u64,
) -> PyResult<Vec<NamedArray<'py>>> {
    let d = degradation_of(&corruptor)?;
    if scale == 0 {
        return Err(PyValueError::new_err("scale must be at least 1"));
    }
    let gt = chw(&gt)?;
    let draws = d.draw(corruptor.keys.key(epoch, index));
    let mut stages = Vec::new();
    py.detach(|| {
        d.degrade_stages(&gt, scale, &draws, &mut |name, img| {
            stages.push((name, img.clone()))
        })
    });
    stages
        .into_iter()
        .map(|(n, p)| Ok((n, to_chw(py, p)?)))
        .collect()
}

fn kernel_dict<'py>(py: Python<'py>, k: &KernelDraw) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("sinc", k.sinc)?;
    d.set_item("kind", k.kind.map(KernelKind::name))?;
    d.set_item("size", k.size)?;
    d.set_item("sigma_x", k.sigma_x)?;
    d.set_item("sigma_y", k.sigma_y)?;
    d.set_item("theta", k.theta)?;
    d.set_item("beta", k.beta)?;
    d.set_item("omega", k.omega)?;
    Ok(d)
}

fn resize_dict<'py>(py: Python<'py>, r: &ResizeDraw) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let updown = match r.updown {
        UpDown::Up => "up",
        UpDown::Down => "down",
        UpDown::Keep => "keep",
    };
    d.set_item("updown", updown)?;
    d.set_item("scale", r.scale)?;
    d.set_item("mode", r.mode.name())?;
    Ok(d)
}

fn noise_dict<'py>(py: Python<'py>, n: &NoiseDraw) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("gaussian", n.gaussian)?;
    d.set_item(if n.gaussian { "sigma" } else { "scale" }, n.amount)?;
    d.set_item("gray", n.grey)?;
    Ok(d)
}

fn draws_dict<'py>(py: Python<'py>, d: &Draws) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("kernel1", kernel_dict(py, &d.kernel1)?)?;
    out.set_item("resize1", resize_dict(py, &d.resize1)?)?;
    out.set_item("noise1", noise_dict(py, &d.noise1)?)?;
    out.set_item("jpeg1", d.jpeg1)?;
    out.set_item("second_blur", d.second_blur)?;
    out.set_item("kernel2", kernel_dict(py, &d.kernel2)?)?;
    out.set_item("resize2", resize_dict(py, &d.resize2)?)?;
    out.set_item("noise2", noise_dict(py, &d.noise2)?)?;
    out.set_item("jpeg2", d.jpeg2)?;
    out.set_item(
        "final_sinc",
        d.final_sinc
            .as_ref()
            .map(|k| kernel_dict(py, k))
            .transpose()?,
    )?;
    out.set_item("resize_first", d.resize_first)?;
    out.set_item("final_mode", d.final_mode.name())?;
    Ok(out)
}

/// Every random parameter the degradation draws for the item keyed (seed, epoch, index),
/// as nested dicts (NaN for what does not apply).
#[pyfunction]
#[pyo3(signature = (corruptor, epoch, index))]
pub(crate) fn realesrgan_draws<'py>(
    py: Python<'py>,
    corruptor: PyRef<'py, PyCorruptor>,
    epoch: u64,
    index: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let d = degradation_of(&corruptor)?;
    draws_dict(py, &d.draw(corruptor.keys.key(epoch, index)))
}

/// A blur kernel of the degradation: `kind` one of `kernel_list`'s names, or `sinc`
/// (then `omega` is the cutoff and `pad_to` pads it). float64 (size, size) array.
#[pyfunction]
#[pyo3(signature = (kind, size, sigma_x=1.0, sigma_y=1.0, theta=0.0, beta=1.0, omega=1.0, pad_to=0))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn realesrgan_kernel<'py>(
    py: Python<'py>,
    kind: &str,
    size: usize,
    sigma_x: f64,
    sigma_y: f64,
    theta: f64,
    beta: f64,
    omega: f64,
    pad_to: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    if size == 0 || size.is_multiple_of(2) || size > 255 || pad_to > 255 {
        return Err(PyValueError::new_err(format!(
            "size must be odd and at most 255, got {size}"
        )));
    }
    let (k, n) = if kind == "sinc" {
        kernels::circular_lowpass(omega, size, pad_to)
    } else {
        let kind = KernelKind::parse(kind)
            .ok_or_else(|| PyValueError::new_err(format!("unknown kernel {kind:?}")))?;
        (
            kernels::of_kind(kind, size, sigma_x, sigma_y, theta, beta),
            size,
        )
    };
    numpy::ndarray::Array2::from_shape_vec((n, n), k)
        .map(|a| a.into_pyarray(py))
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The largest side a stage's resize may make.
const MAX_SIDE: usize = 16384;

fn param<'py, T: FromPyObject<'py>>(params: &Bound<'py, PyDict>, name: &str) -> PyResult<T> {
    params
        .get_item(name)?
        .ok_or_else(|| PyValueError::new_err(format!("stage needs {name:?}")))?
        .extract()
}

/// One stage of the degradation on a (3, H, W) float32 image, as the reference's
/// operator with the same parameters:
///
/// * `filter2d` (`kernel`: a float32 (k, k) array, k odd);
/// * `interpolate` (`mode`: area, bilinear or bicubic; `size`: (h, w) or
///   `scale_factor`: a number);
/// * `jpeg` (`quality`: a number): the clamp and DiffJPEG;
/// * `usm`: USMSharp;
/// * `round`: clamp and round to 8 bits;
/// * `gaussian_noise` (`sigma`, `gray`, `seed`), `poisson_noise` (`scale`, `gray`,
///   `seed`): noise added and clipped.
#[pyfunction]
#[pyo3(signature = (name, img, **params))]
pub(crate) fn realesrgan_stage<'py>(
    py: Python<'py>,
    name: &str,
    img: PyReadonlyArray3<'py, f32>,
    params: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyArray3<f32>>> {
    let empty = PyDict::new(py);
    let params = params.unwrap_or(&empty);
    let mut p = chw(&img)?;
    let out = match name {
        "filter2d" => {
            let k: PyReadonlyArray2<'py, f32> = param(params, "kernel")?;
            let (kh, kw) = k.as_array().dim();
            if kh != kw || kh.is_multiple_of(2) {
                return Err(PyValueError::new_err("kernel must be square and odd"));
            }
            let k: Vec<f32> = k.as_array().iter().copied().collect();
            py.detach(|| re::filter(&mut p, &k, kh));
            p
        }
        "interpolate" => {
            let mode: String = param(params, "mode")?;
            let mode = Mode::parse(&mode)
                .ok_or_else(|| PyValueError::new_err(format!("unknown mode {mode:?}")))?;
            if let Some(size) = params.get_item("size")? {
                let (h, w): (usize, usize) = size.extract()?;
                if h == 0 || w == 0 || h > MAX_SIDE || w > MAX_SIDE {
                    return Err(PyValueError::new_err(format!(
                        "size must be from 1 to {MAX_SIDE} on each side"
                    )));
                }
                py.detach(|| re::interpolate(&p, h, w, mode, None))
            } else {
                let f: f64 = param(params, "scale_factor")?;
                if !(f > 0.0 && f <= 16.0) || (p.h.max(p.w) as f64 * f) > MAX_SIDE as f64 {
                    return Err(PyValueError::new_err(format!(
                        "scale_factor must be in (0, 16], the result at most {MAX_SIDE} a side"
                    )));
                }
                py.detach(|| re::interpolate_by(&p, f, mode))
            }
        }
        "jpeg" => {
            let q: f32 = param(params, "quality")?;
            if !(1.0..100.0).contains(&q) {
                return Err(PyValueError::new_err("quality must be in [1, 100)"));
            }
            py.detach(|| {
                p.data.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
                re::diff_jpeg(&mut p, q)
            });
            p
        }
        "usm" => py.detach(|| re::usm_sharp(&p)),
        "round" => {
            for v in p.data.iter_mut() {
                *v = (*v * 255.0).round_ties_even().clamp(0.0, 255.0) / 255.0;
            }
            p
        }
        "gaussian_noise" | "poisson_noise" => {
            let gray: bool = param(params, "gray")?;
            let seed: u64 = param(params, "seed")?;
            let amount: f64 = if name == "gaussian_noise" {
                param(params, "sigma")?
            } else {
                param(params, "scale")?
            };
            py.detach(|| {
                re::add_noise_seeded(&mut p, name == "gaussian_noise", amount, gray, seed)
            });
            p
        }
        _ => return Err(PyValueError::new_err(format!("unknown stage {name:?}"))),
    };
    to_chw(py, out)
}

/// The reference's `vals` for Poisson noise: the count of distinct 8-bit levels of the
/// (3, H, W) image (or of its grey version), rounded up to a power of two.
#[pyfunction]
pub(crate) fn realesrgan_poisson_vals(img: PyReadonlyArray3<'_, f32>, gray: bool) -> PyResult<u32> {
    let p = chw(&img)?;
    Ok(re::poisson_vals(&p, gray))
}
