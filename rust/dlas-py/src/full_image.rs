//! `load_full_image`: one FullImageDataset item, loaded with the GIL released.

use std::path::PathBuf;

use dlas_core::image::DecodeOptions;
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;

use crate::corrupt::PyCorruptor;
use crate::errors::to_pyerr;

/// FullImageDataset options (docs/spec.md §5 `fullimage`): (train, min_tile_size, target_size,
/// scale, fixed_size, tile_scale_normal_stddev, use_flip, use_rot, use_blurring,
/// blur_magnitude, force_multiple, lq_noise).
type FullImageSpec = (
    bool,
    usize,
    usize,
    usize,
    bool,
    f64,
    bool,
    bool,
    bool,
    usize,
    usize,
    Option<f64>,
);

/// Loads one FullImageDataset item with the GIL released.
///
/// Returns:
///     (hq, lq, hq_ref, lq_ref, hq_centre, lq_centre): float32 arrays (3, H, W),
///     (3, h, w), (4, H', W'), (4, h', w') and two int64 arrays of shape (2,).
#[pyfunction]
#[pyo3(signature = (path, lq_path, spec, corruptor, epoch, index))]
pub fn load_full_image<'py>(
    py: Python<'py>,
    path: PathBuf,
    lq_path: Option<PathBuf>,
    spec: FullImageSpec,
    corruptor: PyRef<'py, PyCorruptor>,
    epoch: u64,
    index: u64,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    use dlas_core::load::full_image::{load_item, FullImageOptions};
    let (train, min_tile, target, scale, fixed_size, tile_dev, flip, rot, blurring) = (
        spec.0, spec.1, spec.2, spec.3, spec.4, spec.5, spec.6, spec.7, spec.8,
    );
    let opts = FullImageOptions {
        train,
        min_tile,
        target,
        scale,
        fixed_size,
        tile_dev,
        flip,
        rot,
        blurring,
        blur_magnitude: spec.9,
        multiple: spec.10,
        lq_noise: spec.11,
    };
    opts.validate().map_err(to_pyerr)?;
    let key = corruptor.augment_key(epoch, index);
    let item = py
        .detach(|| {
            load_item(
                &path,
                lq_path.as_deref(),
                &opts,
                key,
                &DecodeOptions::default(),
            )
        })
        .map_err(to_pyerr)?;
    let planes = |p: dlas_core::load::Planes| -> PyResult<Bound<'py, PyAny>> {
        Ok(PyArray1::from_vec(py, p.data)
            .reshape([p.c, p.h, p.w])?
            .into_any())
    };
    let centre = |c: (i64, i64)| PyArray1::from_vec(py, vec![c.0, c.1]).into_any();
    Ok(vec![
        planes(item.hq)?,
        planes(item.lq)?,
        planes(item.hq_ref)?,
        planes(item.lq_ref)?,
        centre(item.hq_centre),
        centre(item.lq_centre),
    ])
}
