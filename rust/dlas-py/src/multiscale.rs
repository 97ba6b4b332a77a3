//! `MultiScaleLoader`: MultiScaleDataset's items, loaded with the GIL released.

use std::ffi::OsString;
use std::path::PathBuf;

use dlas_core::corrupt::Key;
use dlas_core::image::DecodeOptions;
use dlas_core::load::multiscale::{self, MultiScale};
use dlas_core::load::pool;
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::corrupt::PyCorruptor;
use crate::errors::to_pyerr;
use crate::folder::PyImageFolderList;
use crate::index::item_index;

/// A MultiScaleDataset's loading options (docs/spec.md §5 `multiscale`), bound to its file list.
///
/// Args:
///     files: the dataset's ImageFolderList (sorted, as DLAS lists it).
///     tile, scales, scale: `hq_tile_size`, `num_scales`, `scale`.
#[pyclass(frozen, module = "dlas_fast._native", name = "MultiScaleLoader")]
pub struct PyMultiScaleLoader {
    files: Py<PyImageFolderList>,
    ms: MultiScale,
}

/// One MultiScale item to load: path, augmentation key, corruption key.
type MultiScaleJob = (PathBuf, Key, Key);

#[pymethods]
impl PyMultiScaleLoader {
    #[new]
    fn new(
        files: Py<PyImageFolderList>,
        tile: usize,
        scales: usize,
        scale: usize,
    ) -> PyResult<Self> {
        let ms = MultiScale {
            tile,
            scales,
            scale,
        };
        ms.validate().map_err(to_pyerr)?;
        Ok(PyMultiScaleLoader { files, ms })
    }

    /// Patches per item: `(4^num_scales - 1) / 3`.
    #[getter]
    fn count(&self) -> usize {
        self.ms.count()
    }

    /// Loads items `indices` on `threads` threads, draws and corruptions keyed by
    /// `corruptor` (`(seed, epoch, index)`).
    ///
    /// Returns:
    ///     (hq, lq, paths): float32 arrays (N, P, 3, t, t) and (N, P, 3, t/s, t/s), and
    ///     each item's path.
    #[pyo3(signature = (indices, corruptor, epoch, threads = 1))]
    fn load<'py>(
        &self,
        py: Python<'py>,
        indices: Vec<isize>,
        corruptor: PyRef<'py, PyCorruptor>,
        epoch: u64,
        threads: usize,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>, Vec<OsString>)> {
        dlas_core::load::check_batch_len(indices.len()).map_err(to_pyerr)?;
        let files = self.files.get();
        let mut jobs: Vec<MultiScaleJob> = Vec::with_capacity(indices.len());
        for &i in &indices {
            let index = item_index(i, files.len)?;
            let (root, file) = files.at(index)?;
            let augment = corruptor.augment_key(epoch, index as u64);
            let key = corruptor.key(epoch, index as u64);
            jobs.push((files.roots[root].path(file), augment, key));
        }
        if jobs.is_empty() {
            return Err(PyValueError::new_err("no items to load"));
        }
        let ms = self.ms;
        let (t, s, p) = (ms.tile, ms.tile / ms.scale, ms.count());
        let n = jobs.len();
        let (hn, ln) = (p * 3 * t * t, p * 3 * s * s);
        // Every value is written below; zeroed first, without aborting when the memory
        // cannot be had.
        let zeros = |k: usize| -> PyResult<Vec<f32>> {
            let mut v = dlas_core::load::room(n, k).map_err(to_pyerr)?;
            v.resize(n * k, 0.0);
            Ok(v)
        };
        let (mut hq, mut lq) = (zeros(hn)?, zeros(ln)?);
        let inner = &corruptor.inner;
        py.detach(|| -> dlas_core::Result<()> {
            let decode = DecodeOptions::default();
            let work: Vec<_> = jobs
                .iter()
                .zip(hq.chunks_mut(hn))
                .zip(lq.chunks_mut(ln))
                .collect();
            let one = |((job, hq), lq): ((&MultiScaleJob, &mut [f32]), &mut [f32])| {
                multiscale::load_item(&job.0, &ms, job.1, Some((inner, job.2)), &decode, hq, lq)
            };
            if threads <= 1 || n <= 1 {
                return work.into_iter().try_for_each(one);
            }
            use rayon::prelude::*;
            pool::run(threads, || {
                work.into_par_iter()
                    .with_min_len(n.div_ceil(threads))
                    .try_for_each(one)
            })
        })
        .map_err(to_pyerr)?;
        let paths = jobs.into_iter().map(|j| j.0.into_os_string()).collect();
        Ok((
            PyArray1::from_vec(py, hq)
                .reshape([n, p, 3, t, t])?
                .into_any(),
            PyArray1::from_vec(py, lq)
                .reshape([n, p, 3, s, s])?
                .into_any(),
            paths,
        ))
    }
}
