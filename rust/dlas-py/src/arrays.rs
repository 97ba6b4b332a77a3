//! The arrays of a native loader's batch: the caller's output arrays borrowed by key
//! (`Given`), and a finished batch as a dict by key.

use std::path::PathBuf;

use dlas_core::load::contract::{Batch, Data, Given, OutBuf};
use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadwriteArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// A writable borrow of one output array.
enum Guard<'py> {
    F32(PyReadwriteArrayDyn<'py, f32>),
    I64(PyReadwriteArrayDyn<'py, i64>),
    Bool(PyReadwriteArrayDyn<'py, bool>),
}

/// One of the caller's output arrays, borrowed for writing.
pub(crate) struct OutArray<'py> {
    key: String,
    shape: Vec<usize>,
    array: Bound<'py, PyAny>,
    guard: Guard<'py>,
    /// The bytes it spans.
    span: std::ops::Range<usize>,
}

/// Borrows `a` for writing: C-contiguous (rows written in C order), aligned for its
/// type, of a type an output has, and not borrowed elsewhere (e.g. the same array
/// given twice).
fn borrow<'py>(key: String, a: &Bound<'py, PyAny>) -> PyResult<OutArray<'py>> {
    fn rw<'py, T: numpy::Element>(
        key: &str,
        a: &Bound<'py, PyArrayDyn<T>>,
    ) -> PyResult<(
        Vec<usize>,
        PyReadwriteArrayDyn<'py, T>,
        std::ops::Range<usize>,
    )> {
        if !a.is_c_contiguous() {
            return Err(PyValueError::new_err(format!(
                "the {key} output array must be C-contiguous"
            )));
        }
        let start = a.data() as usize;
        if !start.is_multiple_of(std::mem::align_of::<T>()) {
            return Err(PyValueError::new_err(format!(
                "the {key} output array must be aligned for its type"
            )));
        }
        let guard = a.try_readwrite().map_err(|e| {
            PyValueError::new_err(format!(
                "output arrays must be distinct and writable ({key}): {e}"
            ))
        })?;
        let span = start..start + a.len() * std::mem::size_of::<T>();
        Ok((a.shape().to_vec(), guard, span))
    }
    let (shape, guard, span) = if let Ok(t) = a.cast::<PyArrayDyn<f32>>() {
        let (s, g, span) = rw(&key, t)?;
        (s, Guard::F32(g), span)
    } else if let Ok(t) = a.cast::<PyArrayDyn<i64>>() {
        let (s, g, span) = rw(&key, t)?;
        (s, Guard::I64(g), span)
    } else if let Ok(t) = a.cast::<PyArrayDyn<bool>>() {
        let (s, g, span) = rw(&key, t)?;
        (s, Guard::Bool(g), span)
    } else {
        return Err(PyValueError::new_err(format!(
            "the {key} output must be a float32, int64 or bool numpy array"
        )));
    };
    Ok(OutArray {
        key,
        shape,
        array: a.clone(),
        guard,
        span,
    })
}

/// The output arrays of `out`, borrowed for writing; arrays whose memory overlaps
/// (views of one buffer through different objects, which numpy's borrow checking
/// does not see) are refused.
pub(crate) fn borrow_all<'py>(out: &Bound<'py, PyDict>) -> PyResult<Vec<OutArray<'py>>> {
    let mut arrays = Vec::with_capacity(out.len());
    for (key, array) in out.iter() {
        arrays.push(borrow(key.extract()?, &array)?);
    }
    let mut spans: Vec<_> = arrays
        .iter()
        .filter(|a| !a.span.is_empty())
        .map(|a| (&a.span, &a.key))
        .collect();
    spans.sort_by_key(|(span, _)| span.start);
    for pair in spans.windows(2) {
        let ((a, ka), (b, kb)) = (pair[0], pair[1]);
        if b.start < a.end {
            return Err(PyValueError::new_err(format!(
                "output arrays must be distinct: {ka} and {kb} share memory"
            )));
        }
    }
    Ok(arrays)
}

/// The borrowed arrays as the core's buffers by key; `zeroed`: they hold zeros.
pub(crate) fn given<'a>(arrays: &'a mut [OutArray<'_>], zeroed: bool) -> PyResult<Given<'a>> {
    let mut given = Given::new(zeroed);
    for a in arrays.iter_mut() {
        let buf = match &mut a.guard {
            Guard::F32(g) => OutBuf::F32(g.as_slice_mut()?),
            Guard::I64(g) => OutBuf::I64(g.as_slice_mut()?),
            Guard::Bool(g) => OutBuf::Bool(g.as_slice_mut()?),
        };
        given.add(a.key.clone(), a.shape.clone(), buf);
    }
    Ok(given)
}

/// The batch as a dict: each output under its key (the caller's array for the ones
/// written into `given`, the shape as a tuple for zeros left to the caller), and
/// `paths`. Releases the borrows of `given`.
pub(crate) fn to_dict<'py>(
    py: Python<'py>,
    batch: Batch,
    given: Vec<OutArray<'py>>,
) -> PyResult<Bound<'py, PyDict>> {
    let given: Vec<_> = given.into_iter().map(|a| (a.key, a.array)).collect();
    let d = PyDict::new(py);
    for (spec, data) in batch.outputs {
        let shape = spec.shape.clone();
        let value = match data {
            Data::F32(v) => PyArray1::from_vec(py, v).reshape(shape)?.into_any(),
            Data::I64(v) => PyArray1::from_vec(py, v).reshape(shape)?.into_any(),
            Data::Bool(v) => PyArray1::from_vec(py, v).reshape(shape)?.into_any(),
            Data::Given => match given.iter().find(|(k, _)| k == spec.key) {
                Some((_, array)) => array.clone(),
                None => unreachable!("the core writes only the buffers it was given"),
            },
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
