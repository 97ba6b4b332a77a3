//! `load_single_item`: one SingleImageDataset item (SPEC §4) in one native call, with
//! the GIL released for decoding, resizing and float conversion. `RefCache` keeps the
//! last decoded ref.jpg images, so a chunk's ref is decoded once, not once per tile.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use dlas_core::image::{decode_file, DecodeOptions, Rgb8};
use dlas_core::load::{build_item, Planes, Reference, Shape};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;

use crate::errors::to_pyerr;

/// The most recently used decoded ref images of one dataset (a few chunks' worth).
#[pyclass(frozen, module = "dlas_fast._native")]
pub struct RefCache {
    slots: Mutex<Vec<(PathBuf, Arc<Rgb8>)>>,
    capacity: usize,
}

#[pymethods]
impl RefCache {
    #[new]
    #[pyo3(signature = (capacity = 8))]
    fn new(capacity: usize) -> Self {
        RefCache {
            slots: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
        }
    }
}

impl RefCache {
    fn get(&self, path: &PathBuf, opts: &DecodeOptions) -> dlas_core::Result<Arc<Rgb8>> {
        {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = slots.iter().position(|(p, _)| p == path) {
                let hit = slots.remove(i);
                let img = hit.1.clone();
                slots.push(hit);
                return Ok(img);
            }
        }
        let img = Arc::new(decode_file(path, opts)?);
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= self.capacity {
            slots.remove(0);
        }
        slots.push((path.clone(), img.clone()));
        Ok(img)
    }
}

fn to_numpy<'py>(py: Python<'py>, p: Planes) -> PyResult<Bound<'py, PyAny>> {
    let (c, h, w) = (p.c, p.h, p.w);
    Ok(PyArray1::from_vec(py, p.data)
        .reshape([c, h, w])?
        .into_any())
}

/// Loads one item: decodes the tile (and the chunk's ref through `cache`), then
/// resize_hq and the LQ shrink of SPEC §4, all in float32.
///
/// Args:
///     tile: the tile's path.
///     reference: None, or (ref path, (row, col), width).
///     target_size, multiple, scale, eval: the dataset's shape options.
///     cache: the dataset's RefCache.
///
/// Returns:
///     (hq, hq_ref, lq, lq_ref, hq_centre, lq_centre): float32 arrays of shape
///     (3, H, W), (4, H, W), (3, h, w), (4, h, w), and two (row, col) tuples.
#[pyfunction]
#[pyo3(signature = (tile, reference, target_size, multiple, scale, eval, cache))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
pub fn load_single_item<'py>(
    py: Python<'py>,
    tile: PathBuf,
    reference: Option<(PathBuf, (i64, i64), i64)>,
    target_size: Option<usize>,
    multiple: usize,
    scale: usize,
    eval: bool,
    cache: &RefCache,
) -> PyResult<(
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    (i64, i64),
    (i64, i64),
)> {
    let shape = Shape {
        target_size,
        multiple,
        scale,
        eval,
    };
    shape.validate().map_err(to_pyerr)?;
    let item = py
        .detach(|| -> dlas_core::Result<_> {
            let opts = DecodeOptions::default();
            let img = decode_file(&tile, &opts)?;
            let reference = match &reference {
                Some((path, centre, width)) => Some((cache.get(path, &opts)?, *centre, *width)),
                None => None,
            };
            let r = reference.as_ref().map(|(image, centre, width)| Reference {
                image,
                centre: *centre,
                width: *width,
            });
            Ok(build_item(&img, r, &shape))
        })
        .map_err(to_pyerr)?;
    Ok((
        to_numpy(py, item.hq)?,
        to_numpy(py, item.hq_ref)?,
        to_numpy(py, item.lq)?,
        to_numpy(py, item.lq_ref)?,
        item.hq_centre,
        item.lq_centre,
    ))
}
