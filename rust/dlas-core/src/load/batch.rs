//! Assembling items into stacked batch arrays: each item written straight into its
//! slots of the final buffers, on a few threads.

use std::mem::MaybeUninit;
use std::sync::Arc;

use super::{resize_plane, Geometry, Planes, PreparedMask, PreparedRef};
use crate::corrupt::{Corruptor, Key};
use crate::error::{CoreError, Result};
use crate::image::Rgb8;
use crate::planes::{copy_into, stream_fence, stream_into};

/// An item's pixels before `resize_hq`: decoded bytes, or float planes when something
/// (a colour jitter, a fit to another image's size) already worked on them.
#[derive(Clone)]
pub enum Pixels {
    Bytes(Rgb8),
    Float(Planes),
    /// Bytes to be colour-jittered (ImageFolderDataset's `all_image_color_jitter`, of
    /// this strength and key) once they are float: in the output slot itself when
    /// nothing resizes them.
    Jittered(Rgb8, f64, Key),
}

impl Pixels {
    /// `(height, width)`.
    pub fn size(&self) -> (usize, usize) {
        match self {
            Pixels::Bytes(img) | Pixels::Jittered(img, ..) => (img.height, img.width),
            Pixels::Float(p) => (p.h, p.w),
        }
    }

    /// As float planes in `[0, 1]` (jittered, if they are to be).
    pub fn into_planes(self) -> Planes {
        match self {
            Pixels::Bytes(img) => Planes::from_rgb8(&img),
            Pixels::Float(p) => p,
            Pixels::Jittered(img, s, key) => {
                let mut p = Planes::from_rgb8(&img);
                crate::corrupt::Augment::color_jitter(&mut p, s, key);
                p
            }
        }
    }
}

/// An item's decoded image, its shared ref side, and its alt image.
pub struct Loaded {
    pub geo: Geometry,
    pub img: Pixels,
    /// A second image of the same size that goes through the same resize and (when
    /// its LQ is asked for) is corrupted with the item: ImageFolderDataset's alt image.
    /// Every item of a batch has one, or none has.
    pub alt: Option<Pixels>,
    pub reference: Option<(Arc<PreparedRef>, Arc<PreparedMask>)>,
    /// The key of the item's corruption (used when the batch is corrupted).
    pub key: Key,
}

impl Loaded {
    /// An item of bytes with no alt, ref or key yet.
    pub fn new(geo: Geometry, img: Rgb8) -> Loaded {
        Loaded {
            geo,
            img: Pixels::Bytes(img),
            alt: None,
            reference: None,
            key: Key::default(),
        }
    }
}

/// How the LQ images of a batch are corrupted (SPEC §4 step 4; never in eval mode).
#[derive(Clone, Copy)]
pub struct Corruption<'a> {
    pub corruptor: &'a Corruptor,
    /// `corrupt_before_downsize`: corrupt a copy of the HQ image and shrink that;
    /// otherwise shrink, then corrupt the LQ image.
    pub before_downsize: bool,
    /// With `before_downsize`: shrink the HQ copy by this factor first, corrupt, then
    /// shrink the rest of the way (ImageFolderDataset's `corrupt_before_downsize_factor`;
    /// 1: corrupt at the HQ size).
    pub before_factor: usize,
    /// Items corrupted together, with one call and the key of the first: 1, or the
    /// frames of a MultiFrameDataset item (one draw of the random corruptions for all
    /// of them, as DLAS corrupts a list of frames). The batch is whole groups.
    pub group: usize,
    /// Report the fixed corruptions' strengths (ImageFolderDataset's
    /// `corruption_entropy`): the corruptor then runs whenever it draws anything.
    pub entropy: bool,
}

impl Corruption<'_> {
    /// A plain corruption of single items.
    pub fn single(corruptor: &Corruptor, before_downsize: bool) -> Corruption<'_> {
        Corruption {
            corruptor,
            before_downsize,
            before_factor: 1,
            group: 1,
            entropy: false,
        }
    }

    /// True when this corruption runs on items of geometry `g`.
    fn applies(&self, g: &Geometry) -> bool {
        !g.eval
            && if self.entropy {
                !self.corruptor.is_noop()
            } else {
                !self.corruptor.changes_nothing()
            }
    }
}

/// Which outputs a batch has besides its HQ images and centres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wanted {
    /// The LQ images (ImageFolderDataset's `skip_lq` turns them off).
    pub lq: bool,
    /// The alt images' LQ images, corrupted with the item's (when items have alts).
    pub alt_lq: bool,
    /// `v * a + b` per channel `(a, b)` on the finished RGB images (hq, lq, alt_hq,
    /// alt_lq): ImageFolderDataset's `normalize` and `rgb_n1_to_1`.
    pub affine: Option<[(f32, f32); 3]>,
}

impl Default for Wanted {
    fn default() -> Self {
        Wanted {
            lq: true,
            alt_lq: true,
            affine: None,
        }
    }
}

/// `n` items' tensors, stacked: hq, hq_ref (ref RGB + mask), lq, lq_ref, alt_hq,
/// alt_lq, centres and entropy.
pub struct Stacked {
    pub hq: Vec<f32>,
    /// Empty when no item has a ref: then both ref arrays are all zeros, for the caller
    /// to allocate as zero pages (nothing here writes or even allocates them).
    pub hq_ref: Vec<f32>,
    /// Empty when not [`Wanted::lq`].
    pub lq: Vec<f32>,
    pub lq_ref: Vec<f32>,
    /// Empty when the items have no alt image (alt_lq also without [`Wanted::alt_lq`]).
    pub alt_hq: Vec<f32>,
    pub alt_lq: Vec<f32>,
    pub hq_centres: Vec<i64>,
    pub lq_centres: Vec<i64>,
    /// The fixed corruptions' strengths of each corruption group, group after group
    /// ([`Layout::entropy`] each); empty unless [`Corruption::entropy`].
    pub entropy: Vec<f32>,
}

/// The sizes of a batch's outputs, per item (per group for the entropy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// hq, hq_ref, lq, lq_ref, alt_hq, alt_lq values per item (0: not output).
    pub f32s: [usize; 6],
    /// Strengths per corruption group.
    pub entropy: usize,
    /// Items per corruption group.
    pub group: usize,
    /// The ref arrays are left out (all zeros: no item has a ref).
    pub zero_refs: bool,
}

impl Layout {
    /// The layout of `items` (all of one geometry) under these options.
    pub fn of(items: &[Loaded], corruption: Option<&Corruption<'_>>, wanted: Wanted) -> Layout {
        let g = &items[0].geo;
        let (hn, ln) = (g.hq.0 * g.hq.1, g.lq.0 * g.lq.1);
        let zero_refs = items.iter().all(|it| it.reference.is_none());
        let alt = items[0].alt.is_some();
        let lq = if wanted.lq { 3 * ln } else { 0 };
        let alt_lq = alt && wanted.lq && wanted.alt_lq;
        let group = corruption.map_or(1, |c| c.group.max(1));
        let images = group * if alt_lq { 2 } else { 1 };
        let entropy = match corruption {
            Some(c) if c.entropy && wanted.lq && c.applies(g) => c.corruptor.fixed_len() * images,
            _ => 0,
        };
        Layout {
            f32s: [
                3 * hn,
                if zero_refs { 0 } else { 4 * hn },
                lq,
                if zero_refs { 0 } else { 4 * ln },
                if alt { 3 * hn } else { 0 },
                if alt_lq { lq } else { 0 },
            ],
            entropy,
            group,
            zero_refs,
        }
    }
}

/// Output buffers of a whole batch, or of one thread's share of it.
pub struct Outs<'a> {
    /// hq, hq_ref, lq, lq_ref, alt_hq, alt_lq.
    pub f32s: [&'a mut [MaybeUninit<f32>]; 6],
    /// hq and lq centres, two values per item.
    pub centres: [&'a mut [MaybeUninit<i64>]; 2],
    pub entropy: &'a mut [MaybeUninit<f32>],
}

impl<'a> Outs<'a> {
    /// Views initialised buffers (see [`stack_into`]).
    pub fn of_init(
        f32s: [&'a mut [f32]; 6],
        centres: [&'a mut [i64]; 2],
        entropy: &'a mut [f32],
    ) -> Outs<'a> {
        Outs {
            f32s: f32s.map(as_slots),
            centres: centres.map(as_slots),
            entropy: as_slots(entropy),
        }
    }

    /// Checks every buffer is the size `n` items of `layout` need.
    fn check(&self, n: usize, layout: &Layout) {
        for (out, k) in self.f32s.iter().zip(layout.f32s) {
            assert_eq!(out.len(), n * k, "output size");
        }
        for c in &self.centres {
            assert_eq!(c.len(), 2 * n, "centre output size");
        }
        assert_eq!(
            self.entropy.len(),
            n / layout.group * layout.entropy,
            "entropy output size"
        );
    }

    /// Cut into `count` parts of `per` items each (the last one shorter).
    fn split(self, per: usize, count: usize, layout: &Layout) -> Vec<Outs<'a>> {
        let Outs {
            f32s,
            centres,
            entropy,
        } = self;
        let mut f32_parts: Vec<std::vec::IntoIter<&mut [MaybeUninit<f32>]>> = f32s
            .into_iter()
            .zip(layout.f32s)
            .map(|(s, k)| parts(s, per * k, count).into_iter())
            .collect();
        let mut centre_parts: Vec<_> = centres
            .into_iter()
            .map(|s| parts(s, per * 2, count).into_iter())
            .collect();
        let mut entropy_parts =
            parts(entropy, per / layout.group * layout.entropy, count).into_iter();
        (0..count)
            .map(|_| {
                let mut f = f32_parts.iter_mut().map(|p| p.next().expect("count parts"));
                let mut c = centre_parts
                    .iter_mut()
                    .map(|p| p.next().expect("count parts"));
                Outs {
                    f32s: std::array::from_fn(|_| f.next().expect("six")),
                    centres: std::array::from_fn(|_| c.next().expect("two")),
                    entropy: entropy_parts.next().expect("count parts"),
                }
            })
            .collect()
    }
}

/// Writes an image's HQ planes (resize_hq and the crop to a multiple): straight from
/// its bytes when it needs no resize or crop, or shrinks by an integer factor.
fn write_hq(img: &Pixels, g: &Geometry, out: &mut [MaybeUninit<f32>]) {
    match img {
        Pixels::Bytes(img) if g.hq_is_tile() => Planes::write_rgb8(img, out),
        Pixels::Bytes(img) => match g.integer_shrink() {
            Some(k) => Planes::write_rgb8_shrunk(img, k, g.hq.0, g.hq.1, out),
            None => copy_into(out, &g.hq_planes(Planes::from_rgb8(img)).data),
        },
        Pixels::Jittered(img, s, key) if g.hq_is_tile() => {
            Planes::write_rgb8(img, out);
            // SAFETY: write_rgb8 wrote every value.
            let data = unsafe { init_mut(out) };
            crate::corrupt::Augment::color_jitter_planes(data, *s, *key);
        }
        Pixels::Jittered(..) => write_hq(&Pixels::Float(img_planes(img)), g, out),
        Pixels::Float(p) if g.hq_is_tile() => copy_into(out, &p.data),
        Pixels::Float(p) => {
            let resized;
            let p = match g.resize {
                Some((h, w)) => {
                    resized = p.resized(h, w);
                    &resized
                }
                None => p,
            };
            if (p.h, p.w) == g.hq {
                copy_into(out, &p.data);
            } else {
                copy_into(out, &p.cropped(g.hq.0, g.hq.1).data);
            }
        }
    }
}

fn img_planes(p: &Pixels) -> Planes {
    p.clone().into_planes()
}

/// Writes the LQ planes shrunk from the HQ planes `hq` (a copy in eval mode).
fn write_lq(hq: &[f32], g: &Geometry, out: &mut [MaybeUninit<f32>]) {
    if g.eval {
        copy_into(out, hq);
        return;
    }
    let (hn, ln) = (g.hq.0 * g.hq.1, g.lq.0 * g.lq.1);
    for c in 0..3 {
        let small = resize_plane(&hq[c * hn..(c + 1) * hn], g.hq.1, g.hq.0, g.lq.1, g.lq.0);
        copy_into(&mut out[c * ln..(c + 1) * ln], &small);
    }
}

/// One item's slots (uninitialised until [`fill`] writes them).
struct Slots<'a> {
    f32s: [&'a mut [MaybeUninit<f32>]; 6],
    hq_centre: &'a mut [MaybeUninit<i64>],
    lq_centre: &'a mut [MaybeUninit<i64>],
}

/// Writes every value of one item's slots: its HQ planes, the LQ planes shrunk from
/// those (unless `lq_later`: a corruption before the downsize writes them), the same
/// for its alt image, the ref's prepared planes and mask (or zeros), and the centres.
/// With `zeroed`, the slots already hold zeros and the no-ref zeros are not written.
/// Empty slots are outputs not asked for.
fn fill(it: &Loaded, s: Slots<'_>, lq_later: bool, zeroed: bool) {
    let g = &it.geo;
    let [hq, hq_ref, lq, lq_ref, alt_hq, alt_lq] = s.f32s;
    match (&it.img, g.lq_factor()) {
        // The tile's own bytes as HQ and their block means as LQ, in one pass.
        (Pixels::Bytes(img), Some(k)) if g.hq_is_tile() && !lq.is_empty() && !lq_later => {
            Planes::write_rgb8_boxed(img, k, hq, lq, true)
        }
        _ => {
            write_hq(&it.img, g, hq);
            // SAFETY: write_hq writes every element of `hq` (write_rgb8 and
            // write_rgb8_shrunk write all 3 * H * W values; copy_into asserts equal
            // lengths and writes each one).
            let hq = unsafe { init(hq) };
            if !lq.is_empty() && !lq_later {
                write_lq(hq, g, lq);
            }
        }
    }
    if let Some(alt) = &it.alt {
        write_hq(alt, g, alt_hq);
        if !alt_lq.is_empty() && !lq_later {
            // SAFETY: as above.
            write_lq(unsafe { init(alt_hq) }, g, alt_lq);
        }
    }
    let ln = g.lq.0 * g.lq.1;
    match &it.reference {
        Some((r, m)) => {
            let hn = g.hq.0 * g.hq.1;
            let (rgb, lq_rgb) = (&mut hq_ref[..3 * hn], &mut lq_ref[..3 * ln]);
            match &**r {
                PreparedRef::Planes { hq, lq } => {
                    stream_into(rgb, &hq.data);
                    stream_into(lq_rgb, &lq.data);
                }
                PreparedRef::Bytes { image, k } => {
                    Planes::write_rgb8_boxed(image, *k, rgb, lq_rgb, true)
                }
            }
            stream_into(&mut hq_ref[3 * hn..], &m.hq.data);
            stream_into(&mut lq_ref[3 * ln..], &m.lq.data);
            stream_fence();
            copy_into(s.hq_centre, &[m.hq_centre.0, m.hq_centre.1]);
            copy_into(s.lq_centre, &[m.lq_centre.0, m.lq_centre.1]);
        }
        None if zeroed => {}
        None => {
            // No ref: zeros like the tile, a zero mask, centre (0, 0).
            hq_ref.fill(MaybeUninit::new(0.0));
            lq_ref.fill(MaybeUninit::new(0.0));
            s.hq_centre.fill(MaybeUninit::new(0));
            s.lq_centre.fill(MaybeUninit::new(0));
        }
    }
}

/// Views fully written slots as mutable values.
///
/// # Safety
/// Every element of `s` must have been written.
unsafe fn init_mut<T>(s: &mut [MaybeUninit<T>]) -> &mut [T] {
    // SAFETY: the caller guarantees every element is initialised; the layouts match.
    unsafe { &mut *(s as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// Views fully written slots as values.
///
/// # Safety
/// Every element of `s` must have been written.
unsafe fn init<T>(s: &[MaybeUninit<T>]) -> &[T] {
    // SAFETY: the caller guarantees every element is initialised; the layouts match.
    unsafe { &*(s as *const [MaybeUninit<T>] as *const [T]) }
}

/// Writes the corrupted LQ images of one group with one call keyed by `key`: `members`
/// are (HQ planes, LQ slot) of its images in DLAS's order. Corrupts copies of the HQ
/// images and shrinks them when corrupting before the downsize (the LQ slots are then
/// still unwritten), else the uncorrupted LQ images `fill` wrote. Returns the fixed
/// corruptions' strengths.
fn corrupt_group(
    members: Vec<(&[f32], &mut [MaybeUninit<f32>])>,
    g: &Geometry,
    key: Key,
    c: Corruption<'_>,
) -> Result<Vec<f64>> {
    let mut imgs = Vec::with_capacity(members.len());
    let mut outs = Vec::with_capacity(members.len());
    for (hq, lq) in members {
        let img = if c.before_downsize {
            let p = Planes {
                c: 3,
                h: g.hq.0,
                w: g.hq.1,
                data: hq.to_vec(),
            };
            match c.before_factor {
                0 | 1 => p,
                f => p.resized(g.hq.0 / f, g.hq.1 / f),
            }
        } else {
            Planes {
                c: 3,
                h: g.lq.0,
                w: g.lq.1,
                // SAFETY: without a corruption before the downsize, fill wrote the LQ
                // slots.
                data: unsafe { init(lq) }.to_vec(),
            }
        };
        imgs.push(img);
        outs.push(lq);
    }
    let mut refs: Vec<&mut Planes> = imgs.iter_mut().collect();
    let entropy = c.corruptor.corrupt(&mut refs, key)?;
    for (img, out) in imgs.into_iter().zip(outs) {
        if (img.h, img.w) == g.lq {
            copy_into(out, &img.data);
        } else {
            copy_into(out, &img.resized(g.lq.0, g.lq.1).data);
        }
    }
    Ok(entropy)
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

/// Fills, and corrupts, one thread's share of a batch.
fn fill_part(
    items: &[Loaded],
    outs: Outs<'_>,
    layout: &Layout,
    corruption: Option<Corruption<'_>>,
    zeroed: bool,
    affine: Option<[(f32, f32); 3]>,
) -> Result<()> {
    let lq_later = corruption.is_some_and(|c| c.before_downsize);
    let Outs {
        f32s,
        centres: [hc, lc],
        entropy,
    } = outs;
    let sizes = layout.f32s;
    let [hq, hq_ref, lq, lq_ref, alt_hq, alt_lq] = f32s;
    // Group after group: filled, then corrupted while its HQ images are still in the
    // cache.
    let group = layout.group;
    for (gi, members) in items.chunks(group).enumerate() {
        for (jj, it) in members.iter().enumerate() {
            let j = gi * group + jj;
            let at = |k: usize| j * k..(j + 1) * k;
            let slots = Slots {
                f32s: [
                    &mut hq[at(sizes[0])],
                    &mut hq_ref[at(sizes[1])],
                    &mut lq[at(sizes[2])],
                    &mut lq_ref[at(sizes[3])],
                    &mut alt_hq[at(sizes[4])],
                    &mut alt_lq[at(sizes[5])],
                ],
                hq_centre: &mut hc[at(2)],
                lq_centre: &mut lc[at(2)],
            };
            fill(it, slots, lq_later, zeroed);
        }
        if let Some(c) = corruption {
            let at = |k: usize| gi * group * k..(gi * group + members.len()) * k;
            corrupt_part(
                members,
                layout,
                c,
                (&hq[at(sizes[0])], &mut lq[at(sizes[2])]),
                (&alt_hq[at(sizes[4])], &mut alt_lq[at(sizes[5])]),
                &mut entropy[gi * layout.entropy..(gi + 1) * layout.entropy],
            )?;
        }
    }
    if let Some(ab) = affine {
        for out in [hq, lq, alt_hq, alt_lq] {
            if out.is_empty() {
                continue;
            }
            // SAFETY: fill and the corruption wrote every value of these outputs.
            let values = unsafe { init_mut(out) };
            for img in values.chunks_exact_mut(values.len() / items.len().max(1)) {
                let plane = img.len() / 3;
                for (chan, &(a, b)) in img.chunks_exact_mut(plane.max(1)).zip(&ab) {
                    chan.iter_mut().for_each(|v| *v = *v * a + b);
                }
            }
        }
    }
    Ok(())
}

/// Corrupts one thread's share of a batch, group after group (see [`corrupt_group`]):
/// the (hq, lq) and (alt_hq, alt_lq) outputs, the HQ ones written by `fill`.
fn corrupt_part(
    items: &[Loaded],
    layout: &Layout,
    c: Corruption<'_>,
    (hq, lq): (&[MaybeUninit<f32>], &mut [MaybeUninit<f32>]),
    (alt_hq, alt_lq): (&[MaybeUninit<f32>], &mut [MaybeUninit<f32>]),
    entropy: &mut [MaybeUninit<f32>],
) -> Result<()> {
    let sizes = layout.f32s;
    // SAFETY: fill wrote every HQ value.
    let (hq, alt_hq) = unsafe { (init(hq), init(alt_hq)) };
    let g = &items[0].geo;
    let per_group = |k: usize| layout.group * k;
    let mut alt_parts = alt_hq
        .chunks(sizes[4].max(1))
        .zip(alt_lq.chunks_mut(sizes[5].max(1)));
    for (((items, hq), lq), entropy) in items
        .chunks(layout.group)
        .zip(hq.chunks(per_group(sizes[0])))
        .zip(lq.chunks_mut(per_group(sizes[2])))
        .zip(parts(entropy, layout.entropy, items.len() / layout.group))
    {
        let mut members = Vec::with_capacity(2 * items.len());
        for (hq, lq) in hq.chunks(sizes[0]).zip(lq.chunks_mut(sizes[2])) {
            members.push((hq, lq));
            if sizes[5] > 0 {
                let (ahq, alq) = alt_parts.next().expect("an alt per item");
                members.push((ahq, alq));
            }
        }
        let strengths = corrupt_group(members, g, items[0].key, c)?;
        if layout.entropy > 0 {
            let values: Vec<f32> = strengths.iter().map(|&v| v as f32).collect();
            copy_into(&mut entropy[..layout.entropy], &values);
        }
    }
    Ok(())
}

/// Fills the slots of `items` (all of one geometry) in `outs` in `threads` parts, on
/// the loader pool ([`super::pool::run`]) when there is more than one.
/// Every element of every output is written unless an error is returned.
fn fill_all(
    items: &[Loaded],
    threads: usize,
    outs: Outs<'_>,
    layout: &Layout,
    corruption: Option<Corruption<'_>>,
    zeroed: bool,
    affine: Option<[(f32, f32); 3]>,
) -> Result<()> {
    let n = items.len();
    assert!(
        items
            .iter()
            .all(|it| it.alt.is_some() == items[0].alt.is_some()),
        "every item has an alt image, or none has"
    );
    let group = layout.group;
    assert!(
        n.is_multiple_of(group),
        "a batch of whole corruption groups"
    );
    outs.check(n, layout);
    let corruption = corruption.filter(|c| layout.f32s[2] > 0 && c.applies(&items[0].geo));
    if corruption.is_none() && layout.entropy > 0 {
        unreachable!("entropy is only laid out for a corruption that runs");
    }
    // Threads take whole groups.
    let per = (n / group).div_ceil(threads.clamp(1, n / group)) * group;
    let count = n.div_ceil(per);
    if count == 1 {
        // One part: on this thread (no thread to start, and the allocator keeps
        // reusing this thread's memory).
        return fill_part(items, outs, layout, corruption, zeroed, affine);
    }
    use rayon::prelude::*;
    let work: Vec<_> = items
        .chunks(per)
        .zip(outs.split(per, count, layout))
        .collect();
    super::pool::run(threads, || {
        work.into_par_iter().try_for_each(|(items, outs)| {
            fill_part(items, outs, layout, corruption, zeroed, affine)
        })
    })
}

/// The stacked arrays of `items` (all of one geometry), filled on `threads` threads
/// straight into their final buffers, the LQ images corrupted by `corruption`.
pub fn stack(
    items: &[Loaded],
    threads: usize,
    corruption: Option<Corruption<'_>>,
    wanted: Wanted,
) -> Result<Stacked> {
    let n = items.len();
    let layout = Layout::of(items, corruption.as_ref(), wanted);
    // Without any ref, the ref planes and centres are zeros: the ref arrays are left to
    // the caller (see `Stacked::hq_ref`), the centres allocated zeroed.
    let zeroed = layout.zero_refs;
    let mut bufs: [Vec<f32>; 6] = Default::default();
    for (buf, k) in bufs.iter_mut().zip(layout.f32s) {
        *buf = room(n, k)?;
    }
    let mut centres: [Vec<i64>; 2] = if zeroed {
        [vec![0; 2 * n], vec![0; 2 * n]]
    } else {
        [Vec::with_capacity(2 * n), Vec::with_capacity(2 * n)]
    };
    let n_entropy = n / layout.group * layout.entropy;
    let mut entropy: Vec<f32> = Vec::with_capacity(n_entropy);
    fn slots<T>(v: &mut Vec<T>, len: usize) -> &mut [MaybeUninit<T>] {
        if v.len() == len {
            as_slots(v)
        } else {
            &mut v.spare_capacity_mut()[..len]
        }
    }
    {
        let [a, b, c, d, e, f] = &mut bufs;
        let [hc, lc] = &mut centres;
        let s = layout.f32s;
        let outs = Outs {
            f32s: [
                slots(a, n * s[0]),
                slots(b, n * s[1]),
                slots(c, n * s[2]),
                slots(d, n * s[3]),
                slots(e, n * s[4]),
                slots(f, n * s[5]),
            ],
            centres: [slots(hc, 2 * n), slots(lc, 2 * n)],
            entropy: slots(&mut entropy, n_entropy),
        };
        fill_all(
            items,
            threads,
            outs,
            &layout,
            corruption,
            zeroed,
            wanted.affine,
        )?;
    }
    for (buf, k) in bufs.iter_mut().zip(layout.f32s) {
        // SAFETY: fill_all wrote every element of the first `n * k` slots.
        unsafe { buf.set_len(n * k) };
    }
    for c in &mut centres {
        // SAFETY: as above (or allocated zeroed), two values per item.
        unsafe { c.set_len(2 * n) };
    }
    // SAFETY: fill_all wrote the entropy of every group.
    unsafe { entropy.set_len(n_entropy) };
    let [hq, hq_ref, lq, lq_ref, alt_hq, alt_lq] = bufs;
    let [hq_centres, lq_centres] = centres;
    Ok(Stacked {
        hq,
        hq_ref,
        lq,
        lq_ref,
        alt_hq,
        alt_lq,
        hq_centres,
        lq_centres,
        entropy,
    })
}

/// An empty vector with room for `n` items of `k` values each, or an error naming
/// `batch_size` when that memory cannot be had (an allocation failure would abort the
/// process).
pub fn room<T>(n: usize, k: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    let fits = n
        .checked_mul(k)
        .is_some_and(|len| v.try_reserve_exact(len).is_ok());
    if !fits {
        return Err(CoreError::option(
            "batch_size",
            format!(
                "a batch of {n} items needs {:.1} GB for one of its outputs, which cannot \
                 be allocated; lower batch_size or target_size",
                n as f64 * k as f64 * std::mem::size_of::<T>() as f64 / 1e9
            ),
        ));
    }
    Ok(v)
}

/// Views initialised values as writable `MaybeUninit` slots (only values are ever
/// written through them).
fn as_slots<T>(s: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: MaybeUninit<T> has T's layout, and every write through the result
    // stores an initialised T, so `s` stays initialised.
    unsafe { &mut *(s as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// Like [`stack`], into the caller's buffers ([`Outs::of_init`]), each exactly the
/// size [`Layout::of`] gives for these items (empty for outputs not laid out; the ref
/// arrays may also be empty when no item has a ref and `zeroed`). `zeroed` says they
/// hold zeros already (fresh shared memory), so the zeros of items without a ref are
/// not written again.
pub fn stack_into(
    items: &[Loaded],
    threads: usize,
    corruption: Option<Corruption<'_>>,
    wanted: Wanted,
    outs: Outs<'_>,
    zeroed: bool,
) -> Result<()> {
    let mut layout = Layout::of(items, corruption.as_ref(), wanted);
    if layout.zero_refs && !outs.f32s[1].is_empty() {
        // Ref arrays given for ref-less items: zeros, written unless already there.
        let g = &items[0].geo;
        layout.f32s[1] = 4 * g.hq.0 * g.hq.1;
        layout.f32s[3] = 4 * g.lq.0 * g.lq.1;
    }
    fill_all(
        items,
        threads,
        outs,
        &layout,
        corruption,
        zeroed,
        wanted.affine,
    )
}
