//! Assembling items into stacked batch arrays: each item written straight into its
//! slots of the final buffers, on a few threads.

use std::mem::MaybeUninit;
use std::sync::Arc;

use super::{resize_plane, Geometry, Planes, PreparedMask, PreparedRef};
use crate::corrupt::{Corruptor, Key};
use crate::error::Result;
use crate::image::Rgb8;

/// An item's decoded tile and its shared ref side.
pub struct Loaded {
    pub geo: Geometry,
    pub img: Rgb8,
    pub reference: Option<(Arc<PreparedRef>, Arc<PreparedMask>)>,
    /// The key of the item's corruption (used when the batch is corrupted).
    pub key: Key,
}

/// How the LQ images of a batch are corrupted (SPEC §4 step 4; never in eval mode).
#[derive(Clone, Copy)]
pub struct Corruption<'a> {
    pub corruptor: &'a Corruptor,
    /// `corrupt_before_downsize`: corrupt a copy of the HQ image and shrink that;
    /// otherwise shrink, then corrupt the LQ image.
    pub before_downsize: bool,
    /// Items corrupted together, with one call and the key of the first: 1, or the
    /// frames of a MultiFrameDataset item (one draw of the random corruptions for all
    /// of them, as DLAS corrupts a list of frames). The batch is whole groups.
    pub group: usize,
}

/// `n` items' tensors, stacked: hq, hq_ref (ref RGB + mask), lq, lq_ref, centres.
pub struct Stacked {
    pub hq: Vec<f32>,
    /// Empty when no item has a ref: then both ref arrays are all zeros, for the caller
    /// to allocate as zero pages (nothing here writes or even allocates them).
    pub hq_ref: Vec<f32>,
    pub lq: Vec<f32>,
    pub lq_ref: Vec<f32>,
    pub hq_centres: Vec<i64>,
    pub lq_centres: Vec<i64>,
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
/// pixels when it needs no resize or crop, the LQ planes shrunk from those (unless
/// `lq_later`: a corruption before the downsize writes them), the ref's prepared planes
/// and mask (or zeros), and the centres. With `zeroed`, the slots already hold zeros
/// and the no-ref zeros are not written.
fn fill(it: &Loaded, s: Slots<'_>, lq_later: bool, zeroed: bool) {
    let g = &it.geo;
    let (hn, ln) = (g.hq.0 * g.hq.1, g.lq.0 * g.lq.1);
    if g.hq_is_tile() {
        Planes::write_rgb8(&it.img, s.hq);
    } else if let Some(k) = g.integer_shrink() {
        Planes::write_rgb8_shrunk(&it.img, k, g.hq.0, g.hq.1, s.hq);
    } else {
        copy_into(s.hq, &g.hq_planes(Planes::from_rgb8(&it.img)).data);
    }
    // SAFETY: every element of `s.hq` was written just above (write_rgb8 writes all
    // 3 * H * W values; copy_into asserts equal lengths and writes each one).
    let hq = unsafe { init(s.hq) };
    if g.eval {
        copy_into(s.lq, hq);
    } else if !lq_later {
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
        None if zeroed => {}
        None => {
            // No ref: zeros like the tile, a zero mask, centre (0, 0).
            s.hq_ref.fill(MaybeUninit::new(0.0));
            s.lq_ref.fill(MaybeUninit::new(0.0));
            s.hq_centre.fill(MaybeUninit::new(0));
            s.lq_centre.fill(MaybeUninit::new(0));
        }
    }
}

/// Views fully written slots as values.
///
/// # Safety
/// Every element of `s` must have been written.
unsafe fn init<T>(s: &[MaybeUninit<T>]) -> &[T] {
    // SAFETY: the caller guarantees every element is initialised; the layouts match.
    unsafe { &*(s as *const [MaybeUninit<T>] as *const [T]) }
}

impl Corruption<'_> {
    /// True when this corruption changes the LQ images of items of geometry `g`.
    fn applies(&self, g: &Geometry) -> bool {
        !g.eval && !self.corruptor.changes_nothing()
    }
}

/// Writes the corrupted LQ images of one group of items (one item, or the frames of
/// one MultiFrame item) with one call keyed by the first item: corrupting copies of the
/// HQ images and shrinking them when corrupting before the downsize (the LQ slots are
/// then still unwritten), else corrupting the uncorrupted LQ images `fill` wrote.
fn corrupt_group(
    items: &[Loaded],
    hq: &[f32],
    lq: &mut [MaybeUninit<f32>],
    c: Corruption<'_>,
) -> Result<()> {
    let g = &items[0].geo;
    let (size, src) = if c.before_downsize {
        (g.hq, hq)
    } else {
        // SAFETY: without a corruption before the downsize, fill wrote the LQ slots.
        (g.lq, unsafe { init(lq) })
    };
    let mut imgs: Vec<Planes> = src
        .chunks(3 * size.0 * size.1)
        .map(|d| Planes {
            c: 3,
            h: size.0,
            w: size.1,
            data: d.to_vec(),
        })
        .collect();
    let mut refs: Vec<&mut Planes> = imgs.iter_mut().collect();
    c.corruptor.corrupt(&mut refs, items[0].key)?;
    for (img, out) in imgs.into_iter().zip(lq.chunks_mut(3 * g.lq.0 * g.lq.1)) {
        let img = if c.before_downsize {
            img.resized(g.lq.0, g.lq.1)
        } else {
            img
        };
        copy_into(out, &img.data);
    }
    Ok(())
}

/// `s` cut into `count` consecutive parts of `len` (the last one shorter), empty parts
/// when `len` is 0.
fn parts<T>(mut s: &mut [T], len: usize, count: usize) -> Vec<&mut [T]> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let take = len.min(s.len());
        let (part, rest) = std::mem::take(&mut s).split_at_mut(take);
        out.push(part);
        s = rest;
    }
    out
}

/// Per-item slot sizes of (hq, hq_ref, lq, lq_ref) for a geometry.
fn slot_sizes(g: &Geometry) -> [usize; 4] {
    let (hn, ln) = (g.hq.0 * g.hq.1, g.lq.0 * g.lq.1);
    [3 * hn, 4 * hn, 3 * ln, 4 * ln]
}

/// Fills the slots of `items` (all of one geometry) in `outs` (hq, hq_ref, lq, lq_ref:
/// each `n * size` long) and `centres` (hq, lq: `2 * n` each) in `threads` groups, on
/// the loader pool ([`super::pool::run`]) when there is more than one.
/// Every element of every output is written unless an error is returned.
fn fill_all(
    items: &[Loaded],
    threads: usize,
    outs: [&mut [MaybeUninit<f32>]; 4],
    centres: [&mut [MaybeUninit<i64>]; 2],
    corruption: Option<Corruption<'_>>,
    zeroed: bool,
) -> Result<()> {
    let n = items.len();
    let mut sizes = slot_sizes(&items[0].geo);
    if outs[1].is_empty() && outs[3].is_empty() {
        // No ref arrays at all (see `Stacked::hq_ref`): only for ref-less items in
        // zeroed mode, where nothing would be written to them.
        assert!(
            zeroed && items.iter().all(|it| it.reference.is_none()),
            "ref arrays left out while items have refs"
        );
        sizes[1] = 0;
        sizes[3] = 0;
    }
    let group = corruption.map_or(1, |c| c.group.max(1));
    assert!(
        n.is_multiple_of(group),
        "a batch of whole corruption groups"
    );
    // Threads take whole groups.
    let per = (n / group).div_ceil(threads.clamp(1, n / group)) * group;
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
    let count = n.div_ceil(per);
    let groups = items
        .chunks(per)
        .zip(parts(hq, per * sizes[0], count))
        .zip(parts(hq_ref, per * sizes[1], count))
        .zip(parts(lq, per * sizes[2], count))
        .zip(parts(lq_ref, per * sizes[3], count))
        .zip(parts(hc, per * 2, count))
        .zip(parts(lc, per * 2, count));
    let corruption = corruption.filter(|c| c.applies(&items[0].geo));
    let lq_later = corruption.is_some_and(|c| c.before_downsize);
    let run = move |((((((items, hq), hq_ref), lq), lq_ref), hc), lc): Group<'_, '_>| {
        for (j, it) in items.iter().enumerate() {
            let at = |k: usize| j * k..(j + 1) * k;
            let slots = Slots {
                hq: &mut hq[at(sizes[0])],
                hq_ref: &mut hq_ref[at(sizes[1])],
                lq: &mut lq[at(sizes[2])],
                lq_ref: &mut lq_ref[at(sizes[3])],
                hq_centre: &mut hc[at(2)],
                lq_centre: &mut lc[at(2)],
            };
            fill(it, slots, lq_later, zeroed);
        }
        if let Some(c) = corruption {
            // SAFETY: fill wrote every HQ value just above.
            let hq = unsafe { init(hq) };
            for ((items, hq), lq) in items
                .chunks(group)
                .zip(hq.chunks(group * sizes[0]))
                .zip(lq.chunks_mut(group * sizes[2]))
            {
                corrupt_group(items, hq, lq, c)?;
            }
        }
        Ok(())
    };
    if per >= n {
        // One group: on this thread (no thread to start, and the allocator keeps
        // reusing this thread's memory).
        return groups.into_iter().try_for_each(run);
    }
    use rayon::prelude::*;
    let groups: Vec<_> = groups.collect();
    super::pool::run(threads, || groups.into_par_iter().try_for_each(run))
}

/// One thread's share of [`fill_all`]: its items and their slots in each output.
type Group<'i, 'o> = (
    (
        (
            (
                (
                    (&'i [Loaded], &'o mut [MaybeUninit<f32>]),
                    &'o mut [MaybeUninit<f32>],
                ),
                &'o mut [MaybeUninit<f32>],
            ),
            &'o mut [MaybeUninit<f32>],
        ),
        &'o mut [MaybeUninit<i64>],
    ),
    &'o mut [MaybeUninit<i64>],
);

/// The stacked arrays of `items` (all of one geometry), filled on `threads` threads
/// straight into their final buffers, the LQ images corrupted by `corruption`.
pub fn stack(
    items: &[Loaded],
    threads: usize,
    corruption: Option<Corruption<'_>>,
) -> Result<Stacked> {
    let n = items.len();
    let mut sizes = slot_sizes(&items[0].geo);
    // Without any ref, the ref planes and centres are zeros: the ref arrays are left to
    // the caller (see `Stacked::hq_ref`), the centres allocated zeroed.
    let zeroed = items.iter().all(|it| it.reference.is_none());
    if zeroed {
        sizes[1] = 0;
        sizes[3] = 0;
    }
    let alloc = |len: usize, zero: bool| {
        if zero {
            vec![0f32; len]
        } else {
            Vec::with_capacity(len)
        }
    };
    let mut bufs: [Vec<f32>; 4] = [
        alloc(n * sizes[0], false),
        alloc(n * sizes[1], zeroed),
        alloc(n * sizes[2], false),
        alloc(n * sizes[3], zeroed),
    ];
    let mut centres: [Vec<i64>; 2] = if zeroed {
        [vec![0; 2 * n], vec![0; 2 * n]]
    } else {
        [Vec::with_capacity(2 * n), Vec::with_capacity(2 * n)]
    };
    fn slots<T>(v: &mut Vec<T>, len: usize) -> &mut [MaybeUninit<T>] {
        if v.len() == len {
            as_slots(v)
        } else {
            &mut v.spare_capacity_mut()[..len]
        }
    }
    {
        let [hq, hq_ref, lq, lq_ref] = &mut bufs;
        let [hc, lc] = &mut centres;
        fill_all(
            items,
            threads,
            [
                slots(hq, n * sizes[0]),
                slots(hq_ref, n * sizes[1]),
                slots(lq, n * sizes[2]),
                slots(lq_ref, n * sizes[3]),
            ],
            [slots(hc, 2 * n), slots(lc, 2 * n)],
            corruption,
            zeroed,
        )?;
    }
    for (buf, k) in bufs.iter_mut().zip(sizes) {
        // SAFETY: fill_all wrote every element of the first `n * k` slots (the
        // zero-allocated ones are initialised already).
        unsafe { buf.set_len(n * k) };
    }
    for c in &mut centres {
        // SAFETY: as above, two values per item.
        unsafe { c.set_len(2 * n) };
    }
    let [hq, hq_ref, lq, lq_ref] = bufs;
    let [hq_centres, lq_centres] = centres;
    Ok(Stacked {
        hq,
        hq_ref,
        lq,
        lq_ref,
        hq_centres,
        lq_centres,
    })
}

/// Views initialised values as writable `MaybeUninit` slots (only values are ever
/// written through them).
fn as_slots<T>(s: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: MaybeUninit<T> has T's layout, and every write through the result
    // stores an initialised T, so `s` stays initialised.
    unsafe { &mut *(s as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// Like [`stack`], into the caller's buffers (hq, hq_ref, lq, lq_ref, then the two
/// centre arrays), each exactly `n` items long. `zeroed` says they hold zeros already
/// (fresh shared memory), so the zeros of items without a ref are not written again.
pub fn stack_into(
    items: &[Loaded],
    threads: usize,
    corruption: Option<Corruption<'_>>,
    outs: [&mut [f32]; 4],
    centres: [&mut [i64]; 2],
    zeroed: bool,
) -> Result<()> {
    let [a, b, c, d] = outs;
    let [e, f] = centres;
    fill_all(
        items,
        threads,
        [as_slots(a), as_slots(b), as_slots(c), as_slots(d)],
        [as_slots(e), as_slots(f)],
        corruption,
        zeroed,
    )
}
