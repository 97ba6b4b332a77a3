//! `ChunkIndex`: the chunk index (docs/spec.md §3) held in Rust memory, so that
//! forked DataLoader workers share it instead of copying Python objects page by page.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use dlas_core::index::{CacheMode, RootIndex, HAS_CENTERS, HAS_REF};
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;

use crate::errors::{to_pyerr, with_path, CentersFileError};

/// The index of one chunked-dataset root: chunk folders (sorted, names starting with
/// "." skipped), their tiles in DLAS order, ref.jpg presence and tile centres.
///
/// Args:
///     root: the dataset folder (a `paths` entry).
///     cache: "use" (reuse a fresh cache, else build and save it), "rebuild", or
///         "off" (build, write nothing).
#[pyclass(frozen, module = "dlas_fast._native", name = "ChunkIndex")]
pub struct PyChunkIndex {
    pub inner: Arc<RootIndex>,
}

/// A `cache` argument: "use", "rebuild" or "off".
pub(crate) fn cache_mode(cache: &str) -> PyResult<CacheMode> {
    match cache {
        "use" => Ok(CacheMode::Use),
        "rebuild" => Ok(CacheMode::Rebuild),
        "off" => Ok(CacheMode::Off),
        other => Err(PyValueError::new_err(format!(
            "cache must be 'use', 'rebuild' or 'off', not {other:?}"
        ))),
    }
}

fn check(i: usize, n: usize, what: &str) -> PyResult<()> {
    if i < n {
        Ok(())
    } else {
        Err(PyIndexError::new_err(format!(
            "{what} {i} out of range ({n})"
        )))
    }
}

#[pymethods]
impl PyChunkIndex {
    #[new]
    #[pyo3(signature = (root, cache = "use"))]
    fn new(py: Python<'_>, root: PathBuf, cache: &str) -> PyResult<Self> {
        let mode = cache_mode(cache)?;
        let inner = py
            .detach(|| {
                let index = RootIndex::open(&root, mode);
                crate::release_freed_memory();
                index
            })
            .map_err(to_pyerr)?;
        Ok(PyChunkIndex {
            inner: Arc::new(inner),
        })
    }

    /// The root as given.
    #[getter]
    fn root(&self) -> OsString {
        self.inner.root.clone().into_os_string()
    }

    /// Number of chunk folders (empty ones included).
    #[getter]
    fn num_chunks(&self) -> usize {
        self.inner.chunks.len()
    }

    /// Number of tiles over all chunks.
    #[getter]
    fn num_tiles(&self) -> usize {
        self.inner.tiles.len()
    }

    /// The cache file read or written, or None.
    #[getter]
    fn cache_path(&self) -> Option<OsString> {
        self.inner.cache_path.clone().map(PathBuf::into_os_string)
    }

    /// True when the index was read from a fresh cache.
    #[getter(from_cache)]
    fn loaded_from_cache(&self) -> bool {
        self.inner.from_cache
    }

    /// Heap bytes the index holds.
    #[getter]
    fn resident_bytes(&self) -> usize {
        self.inner.resident_bytes()
    }

    /// The folder name of chunk `i`.
    fn chunk_name(&self, i: usize) -> PyResult<OsString> {
        check(i, self.inner.chunks.len(), "chunk")?;
        Ok(dlas_core::index::bytes_path(self.inner.chunk_name(i))
            .as_os_str()
            .to_os_string())
    }

    /// Number of tiles in chunk `i`.
    fn chunk_len(&self, i: usize) -> PyResult<usize> {
        check(i, self.inner.chunks.len(), "chunk")?;
        Ok(self.inner.chunks[i].tile_count as usize)
    }

    /// `os.path.join(root, chunk)`.
    fn chunk_dir(&self, i: usize) -> PyResult<OsString> {
        check(i, self.inner.chunks.len(), "chunk")?;
        Ok(self.inner.chunk_dir(i).into_os_string())
    }

    /// The chunk's ref.jpg, or None when it has none.
    fn ref_path(&self, i: usize) -> PyResult<Option<OsString>> {
        check(i, self.inner.chunks.len(), "chunk")?;
        Ok((self.inner.chunks[i].flags & HAS_REF != 0)
            .then(|| self.inner.chunk_dir(i).join("ref.jpg").into_os_string()))
    }

    /// `os.path.join(root, chunk, tile)` of tile `j` of chunk `i`.
    fn tile_path(&self, i: usize, j: usize) -> PyResult<OsString> {
        check(i, self.inner.chunks.len(), "chunk")?;
        check(j, self.inner.chunks[i].tile_count as usize, "tile")?;
        Ok(self.inner.tile_path(i, j).into_os_string())
    }

    /// `((row, col), width)` of tile `j` of chunk `i` from centers.pt, or None when
    /// centers.pt has no entry for it. Raises CentersFileError when the chunk's
    /// centers.pt could not be read (damaged, or carrying code, which never runs).
    fn centre(&self, i: usize, j: usize) -> PyResult<Option<((i32, i32), i32)>> {
        check(i, self.inner.chunks.len(), "chunk")?;
        check(j, self.inner.chunks[i].tile_count as usize, "tile")?;
        if let Some(reason) = self.inner.centers_error(i) {
            let path = self.inner.chunk_dir(i).join("centers.pt");
            return Err(with_path(
                CentersFileError::new_err(reason.to_string()),
                &path,
            ));
        }
        Ok(self.inner.centre(i, j))
    }

    /// True when chunk `i` has a centers.pt (readable or not).
    fn has_centers(&self, i: usize) -> PyResult<bool> {
        check(i, self.inner.chunks.len(), "chunk")?;
        Ok(self.inner.chunks[i].flags & HAS_CENTERS != 0)
    }

    /// Why chunk `i`'s centers.pt could not be read, or None.
    fn centers_error(&self, i: usize) -> PyResult<Option<String>> {
        check(i, self.inner.chunks.len(), "chunk")?;
        Ok(self.inner.centers_error(i).map(str::to_string))
    }

    fn __repr__(&self) -> String {
        format!(
            "ChunkIndex({:?}: {} chunks, {} tiles{})",
            self.inner.root,
            self.inner.chunks.len(),
            self.inner.tiles.len(),
            if self.inner.from_cache {
                ", from cache"
            } else {
                ""
            }
        )
    }
}

/// Item `i` of `n` with Python's negative indices, or an IndexError.
pub(crate) fn item_index(i: isize, n: usize) -> PyResult<usize> {
    let j = if i < 0 { i + n as isize } else { i };
    if j < 0 || j >= n as isize {
        return Err(PyIndexError::new_err(format!(
            "item {i} out of range ({n})"
        )));
    }
    Ok(j as usize)
}
