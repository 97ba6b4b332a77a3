//! Assembling items into stacked batch arrays: each item written straight into its
//! slots of the final buffers, on a few threads.
//!
//! The outputs are named ([`Images`]: `hq`, `hq_ref`, `lq`, `lq_ref`, `alt_hq`,
//! `alt_lq`, then the centres and the corruption strengths), from the sizes a batch
//! lays out ([`Layout`]) to one item's slots: `outputs` holds those types, `fill`
//! writes one item and corrupts a group, and this file runs a batch on its threads.

mod fill;
mod outputs;
#[cfg(test)]
mod tests;

use std::mem::MaybeUninit;
use std::sync::Arc;

use super::{Geometry, Planes, PreparedMask, PreparedRef};
use crate::corrupt::{Corruptor, Key};
use crate::error::{CoreError, Result};
use crate::image::Rgb8;
use fill::fill_part;
use outputs::as_slots;
pub use outputs::{Images, Layout, Outs, Stacked};

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

/// How the LQ images of a batch are corrupted (docs/spec.md §4 step 4; never in eval mode).
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
    pub(super) fn applies(&self, g: &Geometry) -> bool {
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
    /// The HQ images sharpened as Real-ESRGAN sharpens its ground truth (the
    /// degradation's `gt_usm`).
    pub hq_usm: bool,
}

impl Default for Wanted {
    fn default() -> Self {
        Wanted {
            lq: true,
            alt_lq: true,
            affine: None,
            hq_usm: false,
        }
    }
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
    let corruption = corruption.filter(|c| layout.per_item.lq > 0 && c.applies(&items[0].geo));
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
    let mut bufs: Images<Vec<f32>> = Images::default();
    for (buf, k) in bufs.as_mut().zip(layout.per_item).into_array() {
        *buf = room(n, k)?;
    }
    let (mut hq_centres, mut lq_centres) = if zeroed {
        (vec![0; 2 * n], vec![0; 2 * n])
    } else {
        (Vec::with_capacity(2 * n), Vec::with_capacity(2 * n))
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
    let outs = Outs {
        images: bufs
            .as_mut()
            .zip(layout.per_item)
            .map(|(buf, k)| slots(buf, n * k)),
        hq_centres: slots(&mut hq_centres, 2 * n),
        lq_centres: slots(&mut lq_centres, 2 * n),
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
    for (buf, k) in bufs.as_mut().zip(layout.per_item).into_array() {
        // SAFETY: fill_all wrote every element of the first `n * k` slots.
        unsafe { buf.set_len(n * k) };
    }
    for c in [&mut hq_centres, &mut lq_centres] {
        // SAFETY: as above (or allocated zeroed), two values per item.
        unsafe { c.set_len(2 * n) };
    }
    // SAFETY: fill_all wrote the entropy of every group.
    unsafe { entropy.set_len(n_entropy) };
    Ok(Stacked {
        images: bufs,
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
    if layout.zero_refs && !outs.images.hq_ref.is_empty() {
        // Ref arrays given for ref-less items: zeros, written unless already there.
        let g = &items[0].geo;
        layout.per_item.hq_ref = 4 * g.hq.0 * g.hq.1;
        layout.per_item.lq_ref = 4 * g.lq.0 * g.lq.1;
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
