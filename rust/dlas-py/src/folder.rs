//! `ImageFolderList`: the file listing of ImageFolderDataset, MultiScaleDataset and
//! the other datasets over raw images, held in Rust memory and cached like the chunk
//! index.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use dlas_core::index::folder_list::FolderList;
use pyo3::prelude::*;

use crate::errors::to_pyerr;
use crate::index::{cache_mode, item_index};

/// The images of one or more folders, in DLAS's ImageFolderDataset order: each root's
/// files (`sorted(os.walk(root))`, DLAS's image extensions, no `ref.jpg`) repeated
/// `weights[k]` times.
///
/// Args:
///     roots: the dataset folders (`paths`).
///     weights: how many times each root's files are listed.
///     cache: "use" (reuse a fresh cache, else build and save one), "rebuild", "off".
#[pyclass(frozen, module = "dlas_fast._native", name = "ImageFolderList")]
pub struct PyImageFolderList {
    pub(crate) inner: Arc<FolderList>,
}

#[pymethods]
impl PyImageFolderList {
    #[new]
    #[pyo3(signature = (roots, weights, cache = "use", sort = false))]
    fn new(
        py: Python<'_>,
        roots: Vec<PathBuf>,
        weights: Vec<usize>,
        cache: &str,
        sort: bool,
    ) -> PyResult<Self> {
        let mode = cache_mode(cache)?;
        let list = py
            .detach(|| FolderList::new(&roots, &weights, mode, sort))
            .map_err(to_pyerr)?;
        Ok(PyImageFolderList {
            inner: Arc::new(list),
        })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// How many images each root holds (before weights).
    fn root_lens(&self) -> Vec<usize> {
        self.inner.roots.iter().map(|r| r.len()).collect()
    }

    /// Where each root's listing cache is (None: not saved), and whether it was read
    /// from there.
    fn caches(&self) -> Vec<(Option<OsString>, bool)> {
        self.inner
            .roots
            .iter()
            .map(|r| {
                (
                    r.cache_path.clone().map(PathBuf::into_os_string),
                    r.from_cache,
                )
            })
            .collect()
    }

    /// Heap bytes of the listings.
    #[getter]
    fn resident_bytes(&self) -> usize {
        self.inner.resident_bytes()
    }

    /// `(root, file)` of item `i`.
    fn locate(&self, i: isize) -> PyResult<(usize, usize)> {
        Ok(self.inner.at(item_index(i, self.inner.len())?))
    }

    /// The path of item `i` (`os.path.join(dirpath, name)` from the root as given).
    fn path(&self, i: isize) -> PyResult<OsString> {
        let i = item_index(i, self.inner.len())?;
        Ok(self.inner.path(i).into_os_string())
    }

    /// Every item's path, in item order (DLAS's `get_paths()`).
    fn paths(&self, py: Python<'_>) -> Vec<OsString> {
        py.detach(|| {
            (0..self.inner.len())
                .map(|i| self.inner.path(i).into_os_string())
                .collect()
        })
    }
}
