//! `Loader`: every dataset family's core loader behind one object. Options come in as
//! a dict (read by the core's serde types, errors naming the option), items as named
//! columns, output arrays by key; a batch goes out as a dict by key. The GIL is
//! released while the core loads.

use std::path::PathBuf;
use std::sync::Arc;

use dlas_core::index::folder_list::FolderList;
use dlas_core::load::contract::{Draws, OutputSpec};
use dlas_core::load::folder::FolderLoader;
use dlas_core::load::full_image::FullImageLoader;
use dlas_core::load::multiscale::MultiScaleLoader;
use dlas_core::load::refs::TileSpec;
use dlas_core::load::single::SingleLoader;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays;
use crate::corrupt::PyCorruptor;
use crate::errors::to_pyerr;
use crate::folder::PyImageFolderList;
use crate::index::item_index;

#[derive(Clone)]
enum Family {
    Single(Arc<SingleLoader>),
    Folder(FolderLoader),
    MultiScale(MultiScaleLoader),
    FullImage(FullImageLoader),
}

/// A dataset family's loader (docs/design.md, "The batch contract").
///
/// Args:
///     kind: "single" (SingleImageDataset, and MultiFrameDataset with `num_frames`),
///         "folder" (ImageFolderDataset), "multiscale" (MultiScaleDataset) or
///         "full_image" (FullImageDataset: one item per call).
///     options: the family's options by DLAS's names, checked here once: a ValueError
///         names the option at fault.
///
/// A loader over raw images loads once bound to its ImageFolderList (`with_files`), so
/// that its options are checked before the folders are listed.
#[pyclass(frozen, module = "dlas_fast._native", name = "Loader")]
pub struct PyLoader {
    family: Family,
    /// The images of a loader over raw images, once bound.
    files: Option<Arc<FolderList>>,
}

/// One output of a batch: its item key, shape (batch axes first), dtype ("float32",
/// "int64" or "bool"), and whether it is always zeros (a caller may leave it out of
/// `out` and make it as zero pages).
#[pyclass(frozen, module = "dlas_fast._native", name = "OutputSpec", get_all)]
pub struct PyOutputSpec {
    key: String,
    shape: Vec<usize>,
    dtype: &'static str,
    zeros: bool,
}

impl From<OutputSpec> for PyOutputSpec {
    fn from(s: OutputSpec) -> Self {
        PyOutputSpec {
            key: s.key.to_string(),
            shape: s.shape,
            dtype: s.dtype.name(),
            zeros: s.zeros,
        }
    }
}

fn read<'de, T: serde::Deserialize<'de>>(options: &Bound<'_, PyAny>) -> PyResult<T> {
    if !options.is_instance_of::<PyDict>() {
        return Err(PyValueError::new_err("loader options must be a dict"));
    }
    let mut source = pythonize::Depythonizer::from_object(options);
    dlas_core::load::options::read(&mut source).map_err(to_pyerr)
}

fn column<'py, T: FromPyObject<'py>>(
    items: &Bound<'py, PyDict>,
    name: &str,
) -> PyResult<Option<Vec<T>>> {
    items.get_item(name)?.map(|c| c.extract()).transpose()
}

fn required<'py, T: FromPyObject<'py>>(items: &Bound<'py, PyDict>, name: &str) -> PyResult<Vec<T>> {
    column(items, name)?.ok_or_else(|| PyValueError::new_err(format!("items: no {name:?} column")))
}

/// The tiles of a "single" loader's items: `tile`, and `ref` (None or the chunk's
/// ref.jpg) with `centre` and `width` when refs are read.
fn tiles(items: &Bound<'_, PyDict>) -> PyResult<Vec<TileSpec>> {
    let tile: Vec<PathBuf> = required(items, "tile")?;
    let Some(refs) = column::<Option<PathBuf>>(items, "ref")? else {
        return Ok(tile.into_iter().map(|t| (t, None)).collect());
    };
    let centre: Vec<(i64, i64)> = required(items, "centre")?;
    let width: Vec<i64> = required(items, "width")?;
    if [refs.len(), centre.len(), width.len()] != [tile.len(); 3] {
        return Err(PyValueError::new_err(
            "items: the tile, ref, centre and width columns differ in length",
        ));
    }
    Ok(tile
        .into_iter()
        .zip(refs)
        .zip(centre.into_iter().zip(width))
        .map(|((t, r), (c, w))| (t, r.map(|r| (r, c, w))))
        .collect())
}

#[pymethods]
impl PyLoader {
    #[new]
    fn new(kind: &str, options: &Bound<'_, PyAny>) -> PyResult<Self> {
        let family = match kind {
            "single" => Family::Single(Arc::new(
                SingleLoader::new(read(options)?).map_err(to_pyerr)?,
            )),
            "folder" => Family::Folder(FolderLoader::new(read(options)?).map_err(to_pyerr)?),
            "multiscale" => {
                Family::MultiScale(MultiScaleLoader::new(read(options)?).map_err(to_pyerr)?)
            }
            "full_image" => {
                Family::FullImage(FullImageLoader::new(read(options)?).map_err(to_pyerr)?)
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "loader kind must be 'single', 'folder', 'multiscale' or 'full_image', \
                     not {other:?}"
                )))
            }
        };
        Ok(PyLoader {
            family,
            files: None,
        })
    }

    /// This loader over raw images, bound to the images it loads.
    fn with_files(&self, files: PyRef<'_, PyImageFolderList>) -> PyResult<Self> {
        if let Family::Single(_) = self.family {
            return Err(PyValueError::new_err(
                "a 'single' loader reads chunk indexes, not an ImageFolderList",
            ));
        }
        Ok(PyLoader {
            family: self.family.clone(),
            files: Some(files.inner.clone()),
        })
    }

    /// The outputs of a batch of `n` items when the options fix their sizes
    /// (`target_size`), else None; `corruptor` is the one `load` will be given.
    #[pyo3(signature = (n, corruptor))]
    fn outputs(&self, n: usize, corruptor: PyRef<'_, PyCorruptor>) -> Option<Vec<PyOutputSpec>> {
        let specs = match &self.family {
            Family::Single(l) => l.outputs(n),
            Family::Folder(l) => l.outputs(n, &corruptor.inner),
            Family::MultiScale(l) => Some(l.outputs(n)),
            Family::FullImage(_) => None,
        }?;
        Some(specs.into_iter().map(Into::into).collect())
    }

    /// Loads one batch on `threads` threads (1 inside a DataLoader worker).
    ///
    /// Args:
    ///     items: the items by column: `index` (dataset indices, which key the draws);
    ///         for a "single" loader `tile` (`num_frames` per item), with `ref`,
    ///         `centre` and `width` when refs are read; for "full_image", `lq_path`
    ///         (None, or the LQ image).
    ///     corruptor: makes the LQ images; `epoch` keys its draws with the indices.
    ///     corrupt: for a "single" loader, False loads without corrupting (eval mode,
    ///         or a corruptor that changes nothing).
    ///     out: None, or arrays to fill by key (every output of `outputs`, except
    ///         zeros, which may be left out); `zeroed` says they hold zeros already.
    ///
    /// Returns:
    ///     A dict of every output by key (the given arrays; a shape tuple for zeros
    ///     left out), and `paths`: each loaded image's path. Raises MixedSizesError
    ///     when the items come out in different sizes, or not those of `out`.
    #[pyo3(signature = (items, corruptor, epoch, threads = 1, corrupt = true, out = None, zeroed = false))]
    #[allow(clippy::too_many_arguments)]
    fn load<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyDict>,
        corruptor: PyRef<'py, PyCorruptor>,
        epoch: u64,
        threads: usize,
        corrupt: bool,
        out: Option<&Bound<'py, PyDict>>,
        zeroed: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let mut out_arrays = out.map(arrays::borrow_all).transpose()?;
        let given = out_arrays
            .as_mut()
            .map(|a| arrays::given(a, zeroed))
            .transpose()?;
        let draws = Draws {
            corruptor: &corruptor.inner,
            keys: &corruptor.keys,
            epoch,
        };
        let batch = match &self.family {
            Family::Single(l) => {
                let indices: Vec<u64> = required(items, "index")?;
                let tiles = tiles(items)?;
                let draws = corrupt.then_some(draws);
                py.detach(|| l.load(&tiles, &indices, draws, threads, given))
            }
            family => {
                let files = self.files.as_deref().ok_or_else(|| {
                    PyValueError::new_err("bind this loader to its files first (with_files)")
                })?;
                let indices = required::<isize>(items, "index")?
                    .into_iter()
                    .map(|i| item_index(i, files.len()))
                    .collect::<PyResult<Vec<_>>>()?;
                match family {
                    Family::Folder(l) => {
                        py.detach(|| l.load(files, &indices, draws, threads, given))
                    }
                    Family::MultiScale(l) => {
                        py.detach(|| l.load(files, &indices, draws, threads, given))
                    }
                    Family::FullImage(l) => {
                        let lq: Vec<Option<PathBuf>> = required(items, "lq_path")?;
                        let ([index], [lq], None) = (&indices[..], &lq[..], &given) else {
                            return Err(PyValueError::new_err(
                                "a 'full_image' loader loads one item per call, into new arrays",
                            ));
                        };
                        let path = files.path(*index);
                        py.detach(|| l.load(*index, path, lq.as_deref(), draws))
                    }
                    Family::Single(_) => unreachable!("matched above"),
                }
            }
        }
        .map_err(to_pyerr)?;
        arrays::to_dict(py, batch, out_arrays.unwrap_or_default())
    }
}
