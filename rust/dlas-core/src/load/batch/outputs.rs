//! A batch's outputs by name: what each item holds of each ([`Layout`]), the buffers
//! of a batch or of one thread's share ([`Outs`]), the stacked result ([`Stacked`]).

use std::mem::MaybeUninit;

use super::{Corruption, Geometry, Loaded, Wanted};

/// One thing per float output of a batch, by name: what a batch holds per item, its
/// buffers, one item's slots in them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Images<T> {
    /// The HQ image (RGB).
    pub hq: T,
    /// The ref at the HQ size: its RGB planes, then the mask of the tile's place.
    pub hq_ref: T,
    /// The LQ image (RGB), shrunk from the HQ one and corrupted.
    pub lq: T,
    /// The ref at the LQ size, as `hq_ref`.
    pub lq_ref: T,
    /// The alt image (ImageFolderDataset's `fetch_alt_image`) through the HQ path.
    pub alt_hq: T,
    /// The alt image's LQ image, corrupted with the item's.
    pub alt_lq: T,
    /// The HQ image sharpened as Real-ESRGAN sharpens its ground truth (BasicSR's
    /// USMSharp): with the degradation's `gt_usm`.
    pub hq_usm: T,
}

impl<T> Images<T> {
    /// `f` of each output, in the order the fields are declared.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Images<U> {
        Images {
            hq: f(self.hq),
            hq_ref: f(self.hq_ref),
            lq: f(self.lq),
            lq_ref: f(self.lq_ref),
            alt_hq: f(self.alt_hq),
            alt_lq: f(self.alt_lq),
            hq_usm: f(self.hq_usm),
        }
    }

    /// Each output paired with the same output of `other`.
    pub fn zip<U>(self, other: Images<U>) -> Images<(T, U)> {
        Images {
            hq: (self.hq, other.hq),
            hq_ref: (self.hq_ref, other.hq_ref),
            lq: (self.lq, other.lq),
            lq_ref: (self.lq_ref, other.lq_ref),
            alt_hq: (self.alt_hq, other.alt_hq),
            alt_lq: (self.alt_lq, other.alt_lq),
            hq_usm: (self.hq_usm, other.hq_usm),
        }
    }

    /// Borrows each output mutably.
    pub fn as_mut(&mut self) -> Images<&mut T> {
        Images {
            hq: &mut self.hq,
            hq_ref: &mut self.hq_ref,
            lq: &mut self.lq,
            lq_ref: &mut self.lq_ref,
            alt_hq: &mut self.alt_hq,
            alt_lq: &mut self.alt_lq,
            hq_usm: &mut self.hq_usm,
        }
    }

    /// Borrows each output.
    pub fn as_ref(&self) -> Images<&T> {
        Images {
            hq: &self.hq,
            hq_ref: &self.hq_ref,
            lq: &self.lq,
            lq_ref: &self.lq_ref,
            alt_hq: &self.alt_hq,
            alt_lq: &self.alt_lq,
            hq_usm: &self.hq_usm,
        }
    }

    /// The outputs in the order the fields are declared.
    pub fn into_array(self) -> [T; 7] {
        [
            self.hq,
            self.hq_ref,
            self.lq,
            self.lq_ref,
            self.alt_hq,
            self.alt_lq,
            self.hq_usm,
        ]
    }

    /// The outputs with their names (DLAS's item keys are the callers').
    pub fn named(self) -> [(&'static str, T); 7] {
        let names = ["hq", "hq_ref", "lq", "lq_ref", "alt_hq", "alt_lq", "hq_usm"];
        let mut values = self.into_array().into_iter();
        names.map(|name| (name, values.next().expect("seven outputs")))
    }
}

impl Images<(usize, (usize, usize))> {
    /// Channels and `(height, width)` of each output for items of geometry `g`: the
    /// HQ-sized outputs at `g.hq`, the LQ-sized ones at `g.lq`.
    pub fn shapes(g: &Geometry) -> Images<(usize, (usize, usize))> {
        Images {
            hq: (3, g.hq),
            hq_ref: (4, g.hq),
            lq: (3, g.lq),
            lq_ref: (4, g.lq),
            alt_hq: (3, g.hq),
            alt_lq: (3, g.lq),
            hq_usm: (3, g.hq),
        }
    }
}

/// `n` items' tensors, stacked: hq, hq_ref (ref RGB + mask), lq, lq_ref, alt_hq,
/// alt_lq, centres and entropy.
pub struct Stacked {
    /// The image outputs. The ref arrays are empty when no item has a ref: then both
    /// are all zeros, for the caller to allocate as zero pages (nothing here writes or
    /// even allocates them); `lq` is empty when not [`Wanted::lq`]; the alt arrays are
    /// empty when the items have no alt image (`alt_lq` also without
    /// [`Wanted::alt_lq`]).
    pub images: Images<Vec<f32>>,
    pub hq_centres: Vec<i64>,
    pub lq_centres: Vec<i64>,
    /// The fixed corruptions' strengths of each corruption group, group after group
    /// ([`Layout::entropy`] each); empty unless [`Corruption::entropy`].
    pub entropy: Vec<f32>,
}

/// The sizes of a batch's outputs, per item (per group for the entropy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Values per item of each output (0: not output).
    pub per_item: Images<usize>,
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
        let refs = items.iter().any(|it| it.reference.is_some());
        Layout::new(
            &items[0].geo,
            refs,
            items[0].alt.is_some(),
            corruption,
            wanted,
        )
    }

    /// The layout of items of geometry `g`, with refs (any item) and alt images (every
    /// item) or without: what a batch will hold, known before it is loaded.
    pub fn new(
        g: &Geometry,
        refs: bool,
        alt: bool,
        corruption: Option<&Corruption<'_>>,
        wanted: Wanted,
    ) -> Layout {
        let (hn, ln) = (g.hq.0 * g.hq.1, g.lq.0 * g.lq.1);
        let zero_refs = !refs;
        let lq = if wanted.lq { 3 * ln } else { 0 };
        let alt_lq = alt && wanted.lq && wanted.alt_lq;
        let group = corruption.map_or(1, |c| c.group.max(1));
        let images = group * if alt_lq { 2 } else { 1 };
        let entropy = match corruption {
            Some(c) if c.entropy && wanted.lq && c.applies(g) => c.corruptor.fixed_len() * images,
            _ => 0,
        };
        Layout {
            per_item: Images {
                hq: 3 * hn,
                hq_ref: if zero_refs { 0 } else { 4 * hn },
                lq,
                lq_ref: if zero_refs { 0 } else { 4 * ln },
                alt_hq: if alt { 3 * hn } else { 0 },
                alt_lq: if alt_lq { lq } else { 0 },
                hq_usm: if wanted.hq_usm { 3 * hn } else { 0 },
            },
            entropy,
            group,
            zero_refs,
        }
    }
}

/// Output buffers of a whole batch, or of one thread's share of it.
pub struct Outs<'a> {
    pub images: Images<&'a mut [MaybeUninit<f32>]>,
    /// The tile's centre in the HQ ref, two values per item.
    pub hq_centres: &'a mut [MaybeUninit<i64>],
    /// The same in the LQ ref.
    pub lq_centres: &'a mut [MaybeUninit<i64>],
    pub entropy: &'a mut [MaybeUninit<f32>],
}

impl<'a> Outs<'a> {
    /// Views initialised buffers (see [`stack_into`]); outputs not laid out are empty.
    pub fn of_init(
        images: Images<&'a mut [f32]>,
        hq_centres: &'a mut [i64],
        lq_centres: &'a mut [i64],
        entropy: &'a mut [f32],
    ) -> Outs<'a> {
        Outs {
            images: images.map(as_slots),
            hq_centres: as_slots(hq_centres),
            lq_centres: as_slots(lq_centres),
            entropy: as_slots(entropy),
        }
    }

    /// Checks every buffer is the size `n` items of `layout` need.
    pub(super) fn check(&self, n: usize, layout: &Layout) {
        let sizes = self
            .images
            .as_ref()
            .map(|out| out.len())
            .zip(layout.per_item);
        for (name, (len, k)) in sizes.named() {
            assert_eq!(len, n * k, "size of the {name} output");
        }
        for c in [&self.hq_centres, &self.lq_centres] {
            assert_eq!(c.len(), 2 * n, "centre output size");
        }
        assert_eq!(
            self.entropy.len(),
            n / layout.group * layout.entropy,
            "entropy output size"
        );
    }

    /// Cut into `count` parts of `per` items each (the last one shorter).
    pub(super) fn split(self, per: usize, count: usize, layout: &Layout) -> Vec<Outs<'a>> {
        let Outs {
            images,
            hq_centres,
            lq_centres,
            entropy,
        } = self;
        let mut images = images
            .zip(layout.per_item)
            .map(|(s, k)| parts(s, per * k, count).into_iter());
        let mut hq_centres = parts(hq_centres, per * 2, count).into_iter();
        let mut lq_centres = parts(lq_centres, per * 2, count).into_iter();
        let mut entropy = parts(entropy, per / layout.group * layout.entropy, count).into_iter();
        (0..count)
            .map(|_| Outs {
                images: images.as_mut().map(|p| p.next().expect("count parts")),
                hq_centres: hq_centres.next().expect("count parts"),
                lq_centres: lq_centres.next().expect("count parts"),
                entropy: entropy.next().expect("count parts"),
            })
            .collect()
    }
}

/// `s` cut into `count` consecutive parts of `len` (the last one shorter), empty parts
/// when `len` is 0.
pub(super) fn parts<T>(mut s: &mut [T], len: usize, count: usize) -> Vec<&mut [T]> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let take = len.min(s.len());
        let (part, rest) = std::mem::take(&mut s).split_at_mut(take);
        out.push(part);
        s = rest;
    }
    out
}

/// Views initialised values as writable `MaybeUninit` slots (only values are ever
/// written through them).
pub(super) fn as_slots<T>(s: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: MaybeUninit<T> has T's layout, and every write through the result
    // stores an initialised T, so `s` stays initialised.
    unsafe { &mut *(s as *mut [T] as *mut [MaybeUninit<T>]) }
}

/// Views fully written slots as mutable values.
///
/// # Safety
/// Every element of `s` must have been written.
pub(super) unsafe fn init_mut<T>(s: &mut [MaybeUninit<T>]) -> &mut [T] {
    // SAFETY: the caller guarantees every element is initialised; the layouts match.
    unsafe { &mut *(s as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// Views fully written slots as values.
///
/// # Safety
/// Every element of `s` must have been written.
pub(super) unsafe fn init<T>(s: &[MaybeUninit<T>]) -> &[T] {
    // SAFETY: the caller guarantees every element is initialised; the layouts match.
    unsafe { &*(s as *const [MaybeUninit<T>] as *const [T]) }
}
