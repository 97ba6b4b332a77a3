//! `TileSet` and `FrameSet`: the items of the chunked datasets (SingleImageDataset's
//! tiles, MultiFrameDataset's windows of frames) over the chunk indexes, in Rust memory.

use std::ffi::OsString;

use dlas_core::index::frames::FrameSet;
use dlas_core::index::TileSet;
use pyo3::prelude::*;

use crate::errors::to_pyerr;
use crate::index::{item_index, PyChunkIndex};

/// The items of a chunked dataset over several roots, in DLAS order: each root's
/// chunks repeated `weights[k]` times, the first `ignore_first` tiles of every chunk
/// dropped, chunks left empty dropped.
#[pyclass(frozen, module = "dlas_fast._native", name = "TileSet")]
pub struct PyTileSet {
    inner: TileSet,
}

#[pymethods]
impl PyTileSet {
    #[new]
    #[pyo3(signature = (indexes, weights, ignore_first = 0))]
    fn new(
        indexes: Vec<PyRef<'_, PyChunkIndex>>,
        weights: Vec<usize>,
        ignore_first: usize,
    ) -> PyResult<Self> {
        let roots = indexes.iter().map(|i| i.inner.clone()).collect();
        let inner = TileSet::new(roots, &weights, ignore_first).map_err(to_pyerr)?;
        Ok(PyTileSet { inner })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Number of chunks in item order (repeats counted).
    #[getter]
    fn num_chunks(&self) -> usize {
        self.inner.num_slots()
    }

    /// Heap bytes of this view (the indexes not included).
    #[getter]
    fn resident_bytes(&self) -> usize {
        self.inner.resident_bytes()
    }

    /// `(root, chunk, tile)` of item `i`: which index, which chunk in it, which tile.
    fn locate(&self, i: isize) -> PyResult<(usize, usize, usize)> {
        let it = self.item(i)?;
        Ok((it.root, it.chunk, it.tile))
    }

    /// The path of item `i`.
    fn tile_path(&self, i: isize) -> PyResult<OsString> {
        let it = self.item(i)?;
        Ok(self.inner.roots[it.root]
            .tile_path(it.chunk, it.tile)
            .into_os_string())
    }

    /// Every item's path, in item order (DLAS's `get_paths()`).
    fn paths(&self, py: Python<'_>) -> Vec<OsString> {
        py.detach(|| {
            let mut out = Vec::with_capacity(self.inner.len());
            for (slot, _) in self.inner.slots() {
                let root = &self.inner.roots[slot.root as usize];
                let chunk = slot.chunk as usize;
                for t in slot.first_tile as usize..root.chunks[chunk].tile_count as usize {
                    out.push(root.tile_path(chunk, t).into_os_string());
                }
            }
            out
        })
    }
}

impl PyTileSet {
    fn item(&self, i: isize) -> PyResult<dlas_core::index::tileset::Item> {
        let j = item_index(i, self.inner.len())?;
        Ok(self.inner.locate(j).expect("in range"))
    }
}

/// The items of a MultiFrameDataset (docs/spec.md §5-6): windows of `frames` consecutive frames
/// (chunks) of one source, and each tile offset all of them have.
#[pyclass(frozen, module = "dlas_fast._native", name = "FrameSet")]
pub struct PyFrameSet {
    inner: FrameSet,
}

#[pymethods]
impl PyFrameSet {
    #[new]
    #[pyo3(signature = (indexes, weights, ignore_first, frames))]
    fn new(
        py: Python<'_>,
        indexes: Vec<PyRef<'_, PyChunkIndex>>,
        weights: Vec<usize>,
        ignore_first: usize,
        frames: usize,
    ) -> PyResult<Self> {
        let roots = indexes.iter().map(|i| i.inner.clone()).collect();
        let inner = py
            .detach(|| FrameSet::new(roots, &weights, ignore_first, frames))
            .map_err(to_pyerr)?;
        Ok(PyFrameSet { inner })
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Heap bytes of this view (the indexes not included).
    #[getter]
    fn resident_bytes(&self) -> usize {
        self.inner.resident_bytes()
    }

    /// `(root, [chunk of each frame], tile)` of item `i`.
    fn locate(&self, i: isize) -> PyResult<(usize, Vec<usize>, usize)> {
        let it = self
            .inner
            .locate(item_index(i, self.inner.len())?)
            .expect("in range");
        Ok((it.root, it.chunks, it.tile))
    }
}

/// Groups names into runs of consecutive frames (docs/spec.md §6): the counter is each name's
/// last `width` characters. Returns the runs as lists of indices into `names`.
#[pyfunction]
#[pyo3(signature = (names, width = 12))]
pub fn frame_runs(py: Python<'_>, names: Vec<String>, width: usize) -> Vec<Vec<u32>> {
    py.detach(|| {
        let bytes: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        let r = dlas_core::index::frames::frame_runs(&bytes, width);
        r.runs
            .iter()
            .map(|run| r.order[run.start as usize..run.end as usize].to_vec())
            .collect()
    })
}
