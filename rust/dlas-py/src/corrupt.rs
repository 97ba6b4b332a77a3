//! `Corruptor`: the native ImageCorruptor (docs/spec.md §7) behind `dlas_fast.ImageCorruptor`
//! and the datasets' LQ synthesis.

use dlas_core::corrupt::{Corruptor, Key, Keys, NAMES};
use dlas_core::load::Planes;
use numpy::ndarray::Array3;
use numpy::{IntoPyArray, PyArray3, PyReadonlyArray3, PyUntypedArrayMethods};
use pyo3::prelude::*;

use crate::errors::to_pyerr;

/// A configured corruptor with the keys of its draws (`dlas_core::corrupt::Keys`):
/// seeded, every call is keyed on `(seed, epoch, index)`; unseeded (`seed=None`), every
/// call gets a fresh key (as DLAS).
#[pyclass(frozen, name = "Corruptor", module = "dlas_fast._native")]
pub struct PyCorruptor {
    pub(crate) inner: Corruptor,
    pub(crate) keys: Keys,
}

/// The corrupted images (HWC float32) and the fixed corruptions' strengths.
type Corrupted<'py> = (Vec<Bound<'py, PyArray3<f32>>>, Vec<f64>);

#[pymethods]
impl PyCorruptor {
    #[new]
    #[pyo3(signature = (fixed, random, num_random, blur_scale, cosine_bias, seed))]
    fn new(
        fixed: Vec<String>,
        random: Vec<String>,
        num_random: usize,
        blur_scale: f64,
        cosine_bias: bool,
        seed: Option<u64>,
    ) -> PyResult<Self> {
        let inner = Corruptor::new(&fixed, &random, num_random, blur_scale, cosine_bias)
            .map_err(to_pyerr)?;
        Ok(PyCorruptor {
            inner,
            keys: Keys::new(seed),
        })
    }

    /// Every corruption name.
    #[staticmethod]
    fn names() -> Vec<&'static str> {
        NAMES.iter().map(|(n, _)| *n).collect()
    }

    /// The seed in use (drawn from the OS when none was given).
    #[getter]
    fn seed(&self) -> u64 {
        self.keys.seed()
    }

    /// How many fixed corruptions (each call reports one strength per image for each).
    #[getter]
    fn fixed_len(&self) -> usize {
        self.inner.fixed_len()
    }

    /// True when a call changes nothing and draws nothing.
    #[getter]
    fn is_noop(&self) -> bool {
        self.inner.is_noop()
    }

    /// True when no configured corruption changes a pixel (only `none`s).
    #[getter]
    fn changes_nothing(&self) -> bool {
        self.inner.changes_nothing()
    }

    /// Corrupts HWC float32 RGB images; returns new float32 HWC arrays and the fixed
    /// corruptions' strengths. `index` None keys the call on a per-corruptor call
    /// counter instead of an item index.
    #[pyo3(signature = (imgs, epoch, index))]
    fn corrupt<'py>(
        &self,
        py: Python<'py>,
        imgs: Vec<PyReadonlyArray3<'py, f32>>,
        epoch: u64,
        index: Option<u64>,
    ) -> PyResult<Corrupted<'py>> {
        let mut planes: Vec<Planes> = imgs
            .iter()
            .enumerate()
            .map(|(i, a)| planes_of(i, a))
            .collect::<PyResult<_>>()?;
        let key = match index {
            Some(i) => self.keys.key(epoch, i),
            None => self.keys.call_key(epoch),
        };
        let entropy = py
            .detach(|| {
                let mut refs: Vec<&mut Planes> = planes.iter_mut().collect();
                self.inner.corrupt(&mut refs, key)
            })
            .map_err(to_pyerr)?;
        let out = planes
            .into_iter()
            .map(|p| hwc_of(py, p))
            .collect::<PyResult<_>>()?;
        Ok((out, entropy))
    }

    /// One corruption, `name`, at strength `strength` (0 to 1) on an HWC float32 RGB
    /// image; its random details come from `seed`. Returns a new HWC array. (The
    /// preview tool's "each corruption at several strengths".)
    #[staticmethod]
    #[pyo3(signature = (name, strength, img, blur_scale = 1.0, seed = 0))]
    fn apply_named<'py>(
        py: Python<'py>,
        name: &str,
        strength: f64,
        img: PyReadonlyArray3<'py, f32>,
        blur_scale: f64,
        seed: u64,
    ) -> PyResult<Bound<'py, PyArray3<f32>>> {
        let mut p = planes_of(0, &img)?;
        let key = Key {
            seed,
            ..Key::default()
        };
        py.detach(|| Corruptor::apply_named(name, strength, blur_scale, &mut p, key))
            .map_err(to_pyerr)?;
        hwc_of(py, p)
    }
}

/// An HWC float32 RGB array as planes (`i` numbers it in errors).
fn planes_of(i: usize, a: &PyReadonlyArray3<'_, f32>) -> PyResult<Planes> {
    let v = a.as_array();
    let (h, w, c) = v.dim();
    if c != 3 {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "image {i}: expected an H x W x 3 RGB array, got shape ({h}, {w}, {c})"
        )));
    }
    let n = h * w;
    let mut data = vec![0f32; 3 * n];
    match a.as_slice().ok().filter(|_| a.is_c_contiguous()) {
        Some(hwc) => {
            let (r, rest) = data.split_at_mut(n);
            let (g, b) = rest.split_at_mut(n);
            for (((px, r), g), b) in hwc.chunks_exact(3).zip(r).zip(g).zip(b) {
                (*r, *g, *b) = (px[0], px[1], px[2]);
            }
        }
        None => {
            for ((y, x, ch), &val) in v.indexed_iter() {
                data[ch * n + y * w + x] = val;
            }
        }
    }
    Ok(Planes { c: 3, h, w, data })
}

/// Planes as a new HWC float32 array.
fn hwc_of(py: Python<'_>, p: Planes) -> PyResult<Bound<'_, PyArray3<f32>>> {
    let n = p.h * p.w;
    let mut hwc = vec![0f32; 3 * n];
    let (r, rest) = p.data.split_at(n);
    let (g, b) = rest.split_at(n);
    for (((px, &r), &g), &b) in hwc.chunks_exact_mut(3).zip(r).zip(g).zip(b) {
        (px[0], px[1], px[2]) = (r, g, b);
    }
    let arr = Array3::from_shape_vec((p.h, p.w, 3), hwc)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    Ok(arr.into_pyarray(py))
}
