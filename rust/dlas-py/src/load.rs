//! `load_single_item` / `load_single_batch`: SingleImageDataset items (SPEC §4) in one
//! native call, with the GIL released for decoding, resizing and float conversion.
//!
//! `RefCache` keeps, per dataset and process, the last decoded ref.jpg images and what
//! is derived from them alone (the ref's HQ and LQ planes, and the mask planes of a
//! centre), so a chunk's ref is decoded and resized once, not once per tile.

use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use dlas_core::image::{decode_file, DecodeOptions, Rgb8};
use dlas_core::load::{resize_plane, Geometry, Planes, PreparedMask, PreparedRef, Shape};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;

use crate::errors::to_pyerr;

/// A small most-recently-used map.
struct Lru<K, V> {
    slots: Mutex<Vec<(K, Arc<V>)>>,
    capacity: usize,
}

impl<K: PartialEq + Clone, V> Lru<K, V> {
    fn new(capacity: usize) -> Self {
        Lru {
            slots: Mutex::new(Vec::new()),
            capacity: capacity.max(1),
        }
    }

    fn get_or(
        &self,
        key: &K,
        make: impl FnOnce() -> dlas_core::Result<V>,
    ) -> dlas_core::Result<Arc<V>> {
        {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = slots.iter().position(|(k, _)| k == key) {
                let hit = slots.remove(i);
                let v = hit.1.clone();
                slots.push(hit);
                return Ok(v);
            }
        }
        let v = Arc::new(make()?);
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= self.capacity {
            slots.remove(0);
        }
        slots.push((key.clone(), v.clone()));
        Ok(v)
    }
}

/// The recently used refs of one dataset: decoded images, their prepared planes, and
/// prepared masks.
#[pyclass(frozen, module = "dlas_fast._native")]
pub struct RefCache {
    images: Lru<PathBuf, Rgb8>,
    prepared: Lru<(PathBuf, Geometry), PreparedRef>,
    masks: Lru<(Geometry, (i64, i64), i64), PreparedMask>,
}

#[pymethods]
impl RefCache {
    #[new]
    #[pyo3(signature = (capacity = 8))]
    fn new(capacity: usize) -> Self {
        RefCache {
            images: Lru::new(capacity),
            prepared: Lru::new(capacity),
            masks: Lru::new(64),
        }
    }
}

/// One item to load: (tile path, None or (ref path, (row, col), width)).
type ItemSpec = (PathBuf, Option<(PathBuf, (i64, i64), i64)>);

/// An item's decoded tile and its shared ref side.
struct Loaded {
    geo: Geometry,
    img: Rgb8,
    reference: Option<(Arc<PreparedRef>, Arc<PreparedMask>)>,
}

impl RefCache {
    fn load(&self, (tile, reference): &ItemSpec, shape: &Shape) -> dlas_core::Result<Loaded> {
        let opts = DecodeOptions::default();
        let img = decode_file(tile, &opts)?;
        let geo = Geometry::new((img.height, img.width), shape);
        geo.check(tile)?;
        let reference = match reference {
            None => None,
            Some((path, centre, width)) => {
                let key = (path.clone(), geo);
                let prepared = self.prepared.get_or(&key, || {
                    let image = self.images.get_or(path, || decode_file(path, &opts))?;
                    Ok(PreparedRef::new(&image, &geo))
                })?;
                let mask = self.masks.get_or(&(geo, *centre, *width), || {
                    Ok(PreparedMask::new(&geo, *centre, *width))
                })?;
                Some((prepared, mask))
            }
        };
        Ok(Loaded {
            geo,
            img,
            reference,
        })
    }
}

/// `n` items' tensors, stacked: hq, hq_ref (ref RGB + mask), lq, lq_ref, centres.
struct Stacked {
    hq: Vec<f32>,
    hq_ref: Vec<f32>,
    lq: Vec<f32>,
    lq_ref: Vec<f32>,
    hq_centres: Vec<i64>,
    lq_centres: Vec<i64>,
}

/// One item's slots in the stacked arrays (uninitialised until [`fill`] writes them).
struct Slots<'a> {
    hq: &'a mut [MaybeUninit<f32>],
    hq_ref: &'a mut [MaybeUninit<f32>],
    lq: &'a mut [MaybeUninit<f32>],
    lq_ref: &'a mut [MaybeUninit<f32>],
    hq_centre: &'a mut [MaybeUninit<i64>],
    lq_centre: &'a mut [MaybeUninit<i64>],
}

fn copy_into<T: Copy>(out: &mut [MaybeUninit<T>], src: &[T]) {
    assert_eq!(out.len(), src.len(), "slot size");
    for (o, &v) in out.iter_mut().zip(src) {
        o.write(v);
    }
}

/// Writes every value of one item's slots: the tile's HQ planes straight from its
/// pixels when it needs no resize or crop, the LQ planes shrunk from those, the ref's
/// prepared planes and mask (or zeros), and the centres.
fn fill(it: &Loaded, s: Slots<'_>) {
    let g = &it.geo;
    let (hn, ln) = (g.hq.0 * g.hq.1, g.lq.0 * g.lq.1);
    if g.hq_is_tile() {
        Planes::write_rgb8(&it.img, s.hq);
    } else {
        copy_into(s.hq, &g.hq_planes(Planes::from_rgb8(&it.img)).data);
    }
    // SAFETY: every element of `s.hq` was written just above (write_rgb8 writes all
    // 3 * H * W values; copy_into asserts equal lengths and writes each one), and
    // MaybeUninit<f32> has the layout of f32.
    let hq: &[f32] = unsafe { &*(s.hq as *const [MaybeUninit<f32>] as *const [f32]) };
    if g.eval {
        copy_into(s.lq, hq);
    } else {
        for c in 0..3 {
            let small = resize_plane(&hq[c * hn..(c + 1) * hn], g.hq.1, g.hq.0, g.lq.1, g.lq.0);
            copy_into(&mut s.lq[c * ln..(c + 1) * ln], &small);
        }
    }
    match &it.reference {
        Some((r, m)) => {
            copy_into(&mut s.hq_ref[..3 * hn], &r.hq.data);
            copy_into(&mut s.hq_ref[3 * hn..], &m.hq.data);
            copy_into(&mut s.lq_ref[..3 * ln], &r.lq.data);
            copy_into(&mut s.lq_ref[3 * ln..], &m.lq.data);
            copy_into(s.hq_centre, &[m.hq_centre.0, m.hq_centre.1]);
            copy_into(s.lq_centre, &[m.lq_centre.0, m.lq_centre.1]);
        }
        None => {
            // No ref: zeros like the tile, a zero mask, centre (0, 0).
            s.hq_ref.fill(MaybeUninit::new(0.0));
            s.lq_ref.fill(MaybeUninit::new(0.0));
            s.hq_centre.fill(MaybeUninit::new(0));
            s.lq_centre.fill(MaybeUninit::new(0));
        }
    }
}

/// Per-item slot sizes of (hq, hq_ref, lq, lq_ref) for a geometry.
fn slot_sizes(g: &Geometry) -> [usize; 4] {
    let (hn, ln) = (g.hq.0 * g.hq.1, g.lq.0 * g.lq.1);
    [3 * hn, 4 * hn, 3 * ln, 4 * ln]
}

/// Fills the slots of `items` (all of one geometry) in `outs` (hq, hq_ref, lq, lq_ref:
/// each `n * size` long) and `centres` (hq, lq: `2 * n` each) on `threads` threads.
/// Every element of every output is written.
fn fill_all(
    items: &[Loaded],
    threads: usize,
    outs: [&mut [MaybeUninit<f32>]; 4],
    centres: [&mut [MaybeUninit<i64>]; 2],
) {
    let n = items.len();
    let sizes = slot_sizes(&items[0].geo);
    let per = n.div_ceil(threads.clamp(1, n));
    let [hq, hq_ref, lq, lq_ref] = outs;
    let [hc, lc] = centres;
    for (out, k) in [
        (&hq, sizes[0]),
        (&hq_ref, sizes[1]),
        (&lq, sizes[2]),
        (&lq_ref, sizes[3]),
    ] {
        assert_eq!(out.len(), n * k, "output size");
    }
    assert_eq!((hc.len(), lc.len()), (2 * n, 2 * n), "centre output size");
    let groups = items
        .chunks(per)
        .zip(hq.chunks_mut(per * sizes[0]))
        .zip(hq_ref.chunks_mut(per * sizes[1]))
        .zip(lq.chunks_mut(per * sizes[2]))
        .zip(lq_ref.chunks_mut(per * sizes[3]))
        .zip(hc.chunks_mut(per * 2))
        .zip(lc.chunks_mut(per * 2));
    std::thread::scope(|scope| {
        for ((((((group, hq), hq_ref), lq), lq_ref), hc), lc) in groups {
            scope.spawn(move || {
                for (j, it) in group.iter().enumerate() {
                    let at = |k: usize| j * k..(j + 1) * k;
                    fill(
                        it,
                        Slots {
                            hq: &mut hq[at(sizes[0])],
                            hq_ref: &mut hq_ref[at(sizes[1])],
                            lq: &mut lq[at(sizes[2])],
                            lq_ref: &mut lq_ref[at(sizes[3])],
                            hq_centre: &mut hc[at(2)],
                            lq_centre: &mut lc[at(2)],
                        },
                    );
                }
            });
        }
    });
}

/// The stacked arrays of `items` (all of one geometry), filled on `threads` threads
/// straight into their final buffers.
fn stack(items: &[Loaded], threads: usize) -> Stacked {
    let n = items.len();
    let sizes = slot_sizes(&items[0].geo);
    let mut bufs: [Vec<f32>; 4] = sizes.map(|k| Vec::with_capacity(n * k));
    let mut centres: [Vec<i64>; 2] = [Vec::with_capacity(2 * n), Vec::with_capacity(2 * n)];
    {
        let [hq, hq_ref, lq, lq_ref] = &mut bufs;
        let [hc, lc] = &mut centres;
        fill_all(
            items,
            threads,
            [
                &mut hq.spare_capacity_mut()[..n * sizes[0]],
                &mut hq_ref.spare_capacity_mut()[..n * sizes[1]],
                &mut lq.spare_capacity_mut()[..n * sizes[2]],
                &mut lq_ref.spare_capacity_mut()[..n * sizes[3]],
            ],
            [
                &mut hc.spare_capacity_mut()[..2 * n],
                &mut lc.spare_capacity_mut()[..2 * n],
            ],
        );
    }
    for (buf, k) in bufs.iter_mut().zip(sizes) {
        // SAFETY: fill_all wrote every element of the first `n * k` spare slots.
        unsafe { buf.set_len(n * k) };
    }
    for c in &mut centres {
        // SAFETY: as above, two values per item.
        unsafe { c.set_len(2 * n) };
    }
    let [hq, hq_ref, lq, lq_ref] = bufs;
    let [hq_centres, lq_centres] = centres;
    Stacked {
        hq,
        hq_ref,
        lq,
        lq_ref,
        hq_centres,
        lq_centres,
    }
}

/// Loads `items` on `threads` threads (in order) and stacks them.
fn load_all(
    items: &[ItemSpec],
    shape: &Shape,
    cache: &RefCache,
    threads: usize,
) -> dlas_core::Result<Vec<Loaded>> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(|it| cache.load(it, shape)).collect();
    }
    let per = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(per)
            .map(|group| {
                s.spawn(move || {
                    group
                        .iter()
                        .map(|it| cache.load(it, shape))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("loader thread panicked"))
            .collect()
    })
}

type Arrays<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
);

fn shape_of(
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

/// Loads and stacks; `batched` keeps the leading batch axis.
fn arrays<'py>(
    py: Python<'py>,
    items: Vec<ItemSpec>,
    shape: Shape,
    cache: &RefCache,
    threads: usize,
    batched: bool,
) -> PyResult<Arrays<'py>> {
    if items.is_empty() {
        return Err(pyo3::exceptions::PyValueError::new_err("no items to load"));
    }
    let loaded = py
        .detach(|| load_all(&items, &shape, cache, threads))
        .map_err(to_pyerr)?;
    let g = loaded[0].geo;
    if let Some(i) = loaded
        .iter()
        .position(|l| (l.geo.hq, l.geo.lq) != (g.hq, g.lq))
    {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{}: comes out {:?}, the batch's first item {:?}; set target_size to batch \
             tiles of different sizes",
            items[i].0.display(),
            loaded[i].geo.hq,
            g.hq
        )));
    }
    let s = py.detach(|| stack(&loaded, threads));
    let n = loaded.len();
    let arr = |data: Vec<f32>, c: usize, (h, w): (usize, usize)| -> PyResult<Bound<'py, PyAny>> {
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
///     (3, H, W), (4, H, W), (3, h, w), (4, h, w), and two int64 arrays of shape (2,).
#[pyfunction]
#[pyo3(signature = (tile, reference, target_size, multiple, scale, eval, cache))]
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
) -> PyResult<Arrays<'py>> {
    let shape = shape_of(target_size, multiple, scale, eval)?;
    arrays(py, vec![(tile, reference)], shape, cache, 1, false)
}

/// Loads a whole batch in one call, on `threads` threads (1 inside a DataLoader worker,
/// where the workers already use the cores), and returns it already stacked.
///
/// Returns:
///     (hq, hq_ref, lq, lq_ref, hq_centres, lq_centres): float32 arrays of shape
///     (N, 3, H, W), (N, 4, H, W), (N, 3, h, w), (N, 4, h, w) and int64 arrays (N, 2).
///     Every item must come out the same size (set target_size for mixed tiles).
#[pyfunction]
#[pyo3(signature = (items, target_size, multiple, scale, eval, cache, threads = 1))]
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
) -> PyResult<Arrays<'py>> {
    let shape = shape_of(target_size, multiple, scale, eval)?;
    arrays(py, items, shape, cache, threads, true)
}
