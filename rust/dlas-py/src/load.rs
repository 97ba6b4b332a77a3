//! `load_single_item` / `load_single_batch`: SingleImageDataset items (docs/spec.md §4) in one
//! native call, with the GIL released for decoding, resizing and float conversion.
//! `RefCache` holds a dataset's recently used refs (the core's `load::refs`).

use std::path::PathBuf;

use dlas_core::load::{refs, stack, stack_into, Corruption, Images, Outs, Shape, Wanted};
use numpy::{PyArray1, PyArray2, PyArray4, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::corrupt::PyCorruptor;
use crate::errors::{to_pyerr, with_path, MixedSizesError};

/// The recently used refs of one dataset (`dlas_core::load::refs::RefCache`): decoded
/// images, their prepared planes, and prepared masks.
#[pyclass(frozen, module = "dlas_fast._native")]
pub struct RefCache {
    inner: refs::RefCache,
}

#[pymethods]
impl RefCache {
    #[new]
    #[pyo3(signature = (capacity = 8))]
    fn new(capacity: usize) -> Self {
        RefCache {
            inner: refs::RefCache::new(capacity),
        }
    }
}

/// One item to load: (tile path, None or (ref path, (row, col), width)).
type ItemSpec = refs::TileSpec;

type Arrays<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
);

pub(crate) fn shape_of(
    target_size: Option<usize>,
    multiple: usize,
    scale: usize,
    eval: bool,
) -> PyResult<Shape> {
    let shape = Shape {
        target_size,
        multiple,
        scale,
        eval,
    };
    shape.validate().map_err(to_pyerr)?;
    Ok(shape)
}

/// How a call corrupts its LQ images: (corruptor, corrupt_before_downsize, epoch,
/// each item's dataset index, how many consecutive items are corrupted together).
type CorruptSpec<'py> = (PyRef<'py, PyCorruptor>, bool, u64, Vec<u64>, usize);

/// Checks a dataset's shape options as every load checks them (`target_size`,
/// `force_multiple`, `scale`, `eval`), so that a dataset refuses them when it is made:
/// a ValueError naming the option.
#[pyfunction]
#[pyo3(signature = (target_size, force_multiple, scale, eval))]
pub fn check_shape(
    target_size: Option<usize>,
    force_multiple: usize,
    scale: usize,
    eval: bool,
) -> PyResult<()> {
    shape_of(target_size, force_multiple, scale, eval).map(|_| ())
}

/// Caller-made output arrays: hq, hq_ref, lq, lq_ref (float32, N x C x H x W), the two
/// centre arrays (int64, N x 2), and whether they hold zeros already.
type OutSpec<'py> = (
    Bound<'py, PyArray4<f32>>,
    Option<Bound<'py, PyArray4<f32>>>,
    Bound<'py, PyArray4<f32>>,
    Option<Bound<'py, PyArray4<f32>>>,
    Bound<'py, PyArray2<i64>>,
    Bound<'py, PyArray2<i64>>,
    bool,
);

/// A writable borrow of an output array: C-contiguous (rows written in C order) and
/// not borrowed elsewhere (e.g. the same array passed twice).
pub(crate) fn writable<'py, T: numpy::Element, D: numpy::ndarray::Dimension>(
    a: &Bound<'py, numpy::PyArray<T, D>>,
) -> PyResult<numpy::PyReadwriteArray<'py, T, D>> {
    if !a.is_c_contiguous() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "output arrays must be C-contiguous",
        ));
    }
    a.try_readwrite().map_err(|e| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "output arrays must be distinct and writable: {e}"
        ))
    })
}

/// A float32 array of zeros whose pages are not written until used:
/// `dlas_fast.datasets.batch.zeros_array`, which the worker path uses too (large ones
/// are memory maps of their own rather than numpy's calloc'd and cleared zeros).
fn zero_pages<'py>(py: Python<'py>, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    py.import("dlas_fast.datasets.batch")?
        .getattr("zeros_array")?
        .call1((PyTuple::new(py, shape)?,))
}

/// Loads and stacks; `batched` keeps the leading batch axis. With `out`, fills and
/// returns those arrays instead of new ones.
#[allow(clippy::too_many_arguments)]
fn arrays<'py>(
    py: Python<'py>,
    items: Vec<ItemSpec>,
    shape: Shape,
    cache: &RefCache,
    threads: usize,
    batched: bool,
    corrupt: Option<CorruptSpec<'py>>,
    out: Option<OutSpec<'py>>,
) -> PyResult<Arrays<'py>> {
    if items.is_empty() {
        return Err(pyo3::exceptions::PyValueError::new_err("no items to load"));
    }
    dlas_core::load::check_batch_len(items.len()).map_err(to_pyerr)?;
    let mut loaded = py
        .detach(|| cache.inner.load_all(&items, &shape, threads))
        .map_err(to_pyerr)?;
    let corruption = match &corrupt {
        None => None,
        Some((c, before, epoch, indices, group)) => {
            if *group == 0 || !items.len().is_multiple_of(*group) {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "{} items do not make whole corruption groups of {group}",
                    items.len()
                )));
            }
            if indices.len() != items.len() {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "{} indices for {} items",
                    indices.len(),
                    items.len()
                )));
            }
            for (l, &i) in loaded.iter_mut().zip(indices) {
                l.key = c.key(*epoch, i);
            }
            Some(Corruption {
                group: *group,
                ..Corruption::single(&c.inner, *before)
            })
        }
    };
    let g = loaded[0].geo;
    if let Some(i) = loaded
        .iter()
        .position(|l| (l.geo.hq, l.geo.lq) != (g.hq, g.lq))
    {
        let err = MixedSizesError::new_err(format!(
            "{}: comes out {:?}, the batch's first item {:?}; set target_size to batch \
             tiles of different sizes",
            items[i].0.display(),
            loaded[i].geo.hq,
            g.hq
        ));
        return Err(with_path(err, &items[i].0));
    }
    let n = loaded.len();
    if let Some((ra, rb, rc, rd, re, rf, zeroed)) = out {
        let has_refs = loaded.iter().any(|l| l.reference.is_some());
        if rb.is_none() != rd.is_none() {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "give both ref output arrays, or neither",
            ));
        }
        if rb.is_none() && has_refs {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "ref output arrays may be left out only for items without refs",
            ));
        }
        let want = [
            [n, 3, g.hq.0, g.hq.1],
            [n, 4, g.hq.0, g.hq.1],
            [n, 3, g.lq.0, g.lq.1],
            [n, 4, g.lq.0, g.lq.1],
        ];
        for (arr, w) in [Some(&ra), rb.as_ref(), Some(&rc), rd.as_ref()]
            .into_iter()
            .zip(want)
        {
            let Some(arr) = arr else { continue };
            if arr.shape() != w {
                return Err(MixedSizesError::new_err(format!(
                    "output array of shape {:?} for items of shape {w:?}; set target_size \
                     to batch tiles of different sizes",
                    arr.shape()
                )));
            }
        }
        if re.shape() != [n, 2] || rf.shape() != [n, 2] {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "centre output arrays must be N x 2",
            ));
        }
        let (mut a, mut c) = (writable(&ra)?, writable(&rc)?);
        let mut b = rb.as_ref().map(writable).transpose()?;
        let mut d = rd.as_ref().map(writable).transpose()?;
        let (mut e, mut f) = (writable(&re)?, writable(&rf)?);
        let a1 = a.as_slice_mut()?;
        let c1 = c.as_slice_mut()?;
        let b1: &mut [f32] = match b.as_mut() {
            Some(b) => b.as_slice_mut()?,
            None => &mut [],
        };
        let d1: &mut [f32] = match d.as_mut() {
            Some(d) => d.as_slice_mut()?,
            None => &mut [],
        };
        let (e1, f1) = (e.as_slice_mut()?, f.as_slice_mut()?);
        py.detach(|| {
            stack_into(
                &loaded,
                threads,
                corruption,
                Wanted::default(),
                Outs::of_init(
                    Images {
                        hq: a1,
                        hq_ref: b1,
                        lq: c1,
                        lq_ref: d1,
                        alt_hq: &mut [],
                        alt_lq: &mut [],
                    },
                    e1,
                    f1,
                    &mut [],
                ),
                zeroed,
            )
        })
        .map_err(to_pyerr)?;
        drop((a, b, c, d, e, f));
        let none = || py.None().into_bound(py);
        return Ok((
            ra.into_any(),
            rb.map_or_else(none, |x| x.into_any()),
            rc.into_any(),
            rd.map_or_else(none, |x| x.into_any()),
            re.into_any(),
            rf.into_any(),
        ));
    }
    let s = py
        .detach(|| stack(&loaded, threads, corruption, Wanted::default()))
        .map_err(to_pyerr)?;
    let arr = |data: Vec<f32>, c: usize, (h, w): (usize, usize)| -> PyResult<Bound<'py, PyAny>> {
        if data.is_empty() {
            // Ref arrays of ref-less items (see `Stacked::hq_ref`).
            return if batched {
                zero_pages(py, &[n, c, h, w])
            } else {
                zero_pages(py, &[c, h, w])
            };
        }
        let a = PyArray1::from_vec(py, data);
        Ok(if batched {
            a.reshape([n, c, h, w])?.into_any()
        } else {
            a.reshape([c, h, w])?.into_any()
        })
    };
    let cen = |data: Vec<i64>| -> PyResult<Bound<'py, PyAny>> {
        let a = PyArray1::from_vec(py, data);
        Ok(if batched {
            a.reshape([n, 2])?.into_any()
        } else {
            a.into_any()
        })
    };
    Ok((
        arr(s.hq, 3, g.hq)?,
        arr(s.hq_ref, 4, g.hq)?,
        arr(s.lq, 3, g.lq)?,
        arr(s.lq_ref, 4, g.lq)?,
        cen(s.hq_centres)?,
        cen(s.lq_centres)?,
    ))
}

/// Loads one item: decodes the tile (and the chunk's ref through `cache`), then
/// resize_hq and the LQ shrink of docs/spec.md §4, all in float32.
///
/// Args:
///     tile: the tile's path.
///     reference: None, or (ref path, (row, col), width).
///     target_size, multiple, scale, eval: the dataset's shape options.
///     cache: the dataset's RefCache.
///     corrupt: None, or (Corruptor, corrupt_before_downsize, epoch, [item index], 1).
///
/// Returns:
///     (hq, hq_ref, lq, lq_ref, hq_centre, lq_centre): float32 arrays of shape
///     (3, H, W), (4, H, W), (3, h, w), (4, h, w), and two int64 arrays of shape (2,).
#[pyfunction]
#[pyo3(signature = (tile, reference, target_size, multiple, scale, eval, cache, corrupt = None))]
#[allow(clippy::too_many_arguments)]
pub fn load_single_item<'py>(
    py: Python<'py>,
    tile: PathBuf,
    reference: Option<(PathBuf, (i64, i64), i64)>,
    target_size: Option<usize>,
    multiple: usize,
    scale: usize,
    eval: bool,
    cache: &RefCache,
    corrupt: Option<CorruptSpec<'py>>,
) -> PyResult<Arrays<'py>> {
    let shape = shape_of(target_size, multiple, scale, eval)?;
    arrays(
        py,
        vec![(tile, reference)],
        shape,
        cache,
        1,
        false,
        corrupt,
        None,
    )
}

/// Loads a whole batch in one call, on `threads` threads (1 inside a DataLoader worker,
/// where the workers already use the cores), and returns it already stacked.
///
/// Returns:
///     (hq, hq_ref, lq, lq_ref, hq_centres, lq_centres): float32 arrays of shape
///     (N, 3, H, W), (N, 4, H, W), (N, 3, h, w), (N, 4, h, w) and int64 arrays (N, 2).
///     Every item must come out the same size (set target_size for mixed tiles).
///     `corrupt` as for load_single_item, with one index per item; its last value says
///     how many consecutive items are corrupted together (keyed by the first).
///     `out`: None, or (hq, hq_ref, lq, lq_ref, hq_centres, lq_centres, zeroed): C-contiguous
///     writable arrays of exactly those shapes to fill and return (e.g. in shared
///     memory); `zeroed` says they hold zeros already.
#[pyfunction]
#[pyo3(signature = (items, target_size, multiple, scale, eval, cache, threads = 1, corrupt = None, out = None))]
#[allow(clippy::too_many_arguments)]
pub fn load_single_batch<'py>(
    py: Python<'py>,
    items: Vec<ItemSpec>,
    target_size: Option<usize>,
    multiple: usize,
    scale: usize,
    eval: bool,
    cache: &RefCache,
    threads: usize,
    corrupt: Option<CorruptSpec<'py>>,
    out: Option<OutSpec<'py>>,
) -> PyResult<Arrays<'py>> {
    let shape = shape_of(target_size, multiple, scale, eval)?;
    arrays(py, items, shape, cache, threads, true, corrupt, out)
}
