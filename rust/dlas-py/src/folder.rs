//! `ImageFolderList`: the file listing of ImageFolderDataset, MultiScaleDataset and
//! the other datasets over raw images, held in Rust memory and cached like the chunk
//! index.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use dlas_core::corrupt::{Augment, Key};
use dlas_core::index::folder::FolderIndex;
use pyo3::exceptions::PyValueError;
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
    pub(crate) roots: Vec<Arc<FolderIndex>>,
    /// (first item, root) of each root with items, in item order.
    pub(crate) starts: Vec<(usize, usize)>,
    pub(crate) len: usize,
    /// With `sort`: item i is `(root, file)` = `order[i]`.
    pub(crate) order: Option<Vec<(u32, u32)>>,
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
        if weights.len() != roots.len() {
            return Err(PyValueError::new_err(format!(
                "weights: {} weights for {} paths; give one per path",
                weights.len(),
                roots.len()
            )));
        }
        let mut indexes = Vec::with_capacity(roots.len());
        for root in &roots {
            let index = py
                .detach(|| FolderIndex::open(root, mode))
                .map_err(to_pyerr)?;
            indexes.push(Arc::new(index));
        }
        // Sorted, every listed image takes 8 bytes of `order`; unsorted, the weights
        // only count.
        let counts: Vec<usize> = if sort {
            indexes.iter().map(|i| i.len()).collect()
        } else {
            vec![0; indexes.len()]
        };
        dlas_core::index::check_weights("weights", &weights, &counts).map_err(to_pyerr)?;
        let mut starts = Vec::new();
        let mut len = 0usize;
        for (k, (index, &w)) in indexes.iter().zip(&weights).enumerate() {
            if index.len() * w > 0 {
                starts.push((len, k));
                len += index.len() * w;
            }
        }
        let mut list = PyImageFolderList {
            roots: indexes,
            starts,
            len,
            order: None,
        };
        if sort {
            // DLAS's find_files_of_type over a list of roots: every path, sorted. A
            // root's weight repeats each of its paths in place, so each file is sorted
            // once and then repeated.
            let order = py.detach(|| {
                let mut keyed: Vec<(Vec<u8>, (u32, u32))> = Vec::new();
                for (root, index) in list.roots.iter().enumerate() {
                    if weights[root] == 0 {
                        continue;
                    }
                    for file in 0..index.len() {
                        let path = index.path(file).into_os_string();
                        keyed.push((path.into_encoded_bytes(), (root as u32, file as u32)));
                    }
                }
                keyed.sort();
                let mut order = Vec::with_capacity(list.len);
                for (_, at) in keyed {
                    order.extend(std::iter::repeat_n(at, weights[at.0 as usize]));
                }
                order
            });
            list.order = Some(order);
        }
        Ok(list)
    }

    fn __len__(&self) -> usize {
        self.len
    }

    /// How many images each root holds (before weights).
    fn root_lens(&self) -> Vec<usize> {
        self.roots.iter().map(|r| r.len()).collect()
    }

    /// Where each root's listing cache is (None: not saved), and whether it was read
    /// from there.
    fn caches(&self) -> Vec<(Option<OsString>, bool)> {
        self.roots
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
        self.roots.iter().map(|r| r.resident_bytes()).sum::<usize>()
            + self.order.as_ref().map_or(0, |o| o.capacity() * 8)
    }

    /// `(root, file)` of item `i`.
    fn locate(&self, i: isize) -> PyResult<(usize, usize)> {
        self.at(item_index(i, self.len)?)
    }

    /// The path of item `i` (`os.path.join(dirpath, name)` from the root as given).
    fn path(&self, i: isize) -> PyResult<OsString> {
        let (root, file) = self.at(item_index(i, self.len)?)?;
        Ok(self.roots[root].path(file).into_os_string())
    }

    /// Every item's path, in item order (DLAS's `get_paths()`).
    fn paths(&self, py: Python<'_>) -> Vec<OsString> {
        py.detach(|| {
            (0..self.len)
                .map(|i| {
                    let (root, file) = self.at(i).expect("in range");
                    self.roots[root].path(file).into_os_string()
                })
                .collect()
        })
    }
}

impl PyImageFolderList {
    pub(crate) fn at(&self, i: usize) -> PyResult<(usize, usize)> {
        if let Some(order) = &self.order {
            let (root, file) = order[i];
            return Ok((root as usize, file as usize));
        }
        let s = self.starts.partition_point(|&(first, _)| first <= i);
        let (first, root) = self.starts[s - 1];
        Ok((root, (i - first) % self.roots[root].len()))
    }

    /// Another listed image of the folder holding item `(root, file)`, drawn by `key`,
    /// skipping names with "ref." (as DLAS); None when there is none.
    pub(crate) fn other_tile(&self, root: usize, file: usize, key: Key) -> Option<PathBuf> {
        let index = &self.roots[root];
        let usable = |j: usize| j != file && !index.name(j).windows(4).any(|w| w == b"ref.");
        let range = index.siblings(file);
        let n = range.clone().filter(|&j| usable(j)).count();
        if n == 0 {
            return None;
        }
        let pick = Augment::new(key).below(n);
        range
            .filter(|&j| usable(j))
            .nth(pick)
            .map(|j| index.path(j))
    }
}
