//! The arrays of a native loader's batch: the caller's output arrays borrowed by key
//! (`Given`), and a finished batch as a dict by key.

use std::path::PathBuf;

use dlas_core::load::contract::{Batch, Data, Given, OutBuf};
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// A writable borrow of one output array.
pub(crate) enum Borrowed<'py> {
    F32(PyReadwriteArrayDyn<'py, f32>),
    I64(PyReadwriteArrayDyn<'py, i64>),
    Bool(PyReadwriteArrayDyn<'py, bool>),
}

/// Borrows `a` for writing: C-contiguous (rows written in C order), of a type an output
/// has, and not borrowed elsewhere (e.g. the same array given twice).
fn borrow<'py>(key: &str, a: &Bound<'py, PyAny>) -> PyResult<(Vec<usize>, Borrowed<'py>)> {
    fn rw<'py, T: numpy::Element>(
        key: &str,
        a: &Bound<'py, PyArrayDyn<T>>,
    ) -> PyResult<(Vec<usize>, PyReadwriteArrayDyn<'py, T>)> {
        if !a.is_c_contiguous() {
            return Err(PyValueError::new_err(format!(
                "the {key} output array must be C-contiguous"
            )));
        }
        let guard = a.try_readwrite().map_err(|e| {
            PyValueError::new_err(format!(
                "output arrays must be distinct and writable ({key}): {e}"
            ))
        })?;
        Ok((a.shape().to_vec(), guard))
    }
    if let Ok(a) = a.cast::<PyArrayDyn<f32>>() {
        return rw(key, a).map(|(s, g)| (s, Borrowed::F32(g)));
    }
    if let Ok(a) = a.cast::<PyArrayDyn<i64>>() {
        return rw(key, a).map(|(s, g)| (s, Borrowed::I64(g)));
    }
    if let Ok(a) = a.cast::<PyArrayDyn<bool>>() {
        return rw(key, a).map(|(s, g)| (s, Borrowed::Bool(g)));
    }
    Err(PyValueError::new_err(format!(
        "the {key} output must be a float32, int64 or bool numpy array"
    )))
}

/// The output arrays of `out`, borrowed for writing, with their keys and shapes.
pub(crate) fn borrow_all<'py>(
    out: &Bound<'py, PyDict>,
) -> PyResult<Vec<(String, Vec<usize>, Borrowed<'py>)>> {
    let mut guards = Vec::with_capacity(out.len());
    for (key, array) in out.iter() {
        let key: String = key.extract()?;
        let (shape, guard) = borrow(&key, &array)?;
        guards.push((key, shape, guard));
    }
    Ok(guards)
}

/// The borrowed arrays as the core's buffers by key; `zeroed`: they hold zeros.
pub(crate) fn given<'a>(
    guards: &'a mut [(String, Vec<usize>, Borrowed<'_>)],
    zeroed: bool,
) -> PyResult<Given<'a>> {
    let mut given = Given::new(zeroed);
    for (key, shape, guard) in guards.iter_mut() {
        let buf = match guard {
            Borrowed::F32(g) => OutBuf::F32(g.as_slice_mut()?),
            Borrowed::I64(g) => OutBuf::I64(g.as_slice_mut()?),
            Borrowed::Bool(g) => OutBuf::Bool(g.as_slice_mut()?),
        };
        given.add(key.clone(), shape.clone(), buf);
    }
    Ok(given)
}

/// The batch as a dict: each output under its key (the caller's array for the ones
/// given, the shape as a tuple for zeros left to the caller), and `paths`.
pub(crate) fn to_dict<'py>(
    py: Python<'py>,
    batch: Batch,
    out: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (spec, data) in batch.outputs {
        let shape = spec.shape.clone();
        let value = match data {
            Data::F32(v) => PyArray1::from_vec(py, v).reshape(shape)?.into_any(),
            Data::I64(v) => PyArray1::from_vec(py, v).reshape(shape)?.into_any(),
            Data::Bool(v) => PyArray1::from_vec(py, v).reshape(shape)?.into_any(),
            Data::Given => out
                .and_then(|o| o.get_item(spec.key).ok().flatten())
                .expect("a given output is in `out`"),
            Data::Zeros => PyTuple::new(py, shape)?.into_any(),
        };
        d.set_item(spec.key, value)?;
    }
    let paths: Vec<_> = batch
        .paths
        .into_iter()
        .map(PathBuf::into_os_string)
        .collect();
    d.set_item("paths", paths)?;
    Ok(d)
}
