//! One item written into its slots, and a group's LQ images corrupted together.

use std::mem::MaybeUninit;

use super::outputs::{init, init_mut, parts, Images, Layout, Outs};
use super::{Corruption, Loaded, Pixels};
use crate::corrupt::Key;
use crate::error::Result;
use crate::load::{resize_plane, Geometry, Planes, PreparedRef};
use crate::planes::{copy_into, stream_fence, stream_into};

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
                // Planes made at the size already (a reduced decode) are not copied.
                Some((h, w)) if (p.h, p.w) != (h, w) => {
                    resized = p.resized(h, w);
                    &resized
                }
                _ => p,
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
    images: Images<&'a mut [MaybeUninit<f32>]>,
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
    let Images {
        hq,
        hq_ref,
        lq,
        lq_ref,
        alt_hq,
        alt_lq,
        // Written after the corruption (fill_part).
        hq_usm: _,
    } = s.images;
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

/// Writes the corrupted LQ images of one group with one call keyed by `key`: `members`
/// are (HQ planes, LQ slot) of its images in DLAS's order. Corrupts copies of the HQ
/// images and shrinks them when corrupting before the downsize (the LQ slots are then
/// still unwritten), else the uncorrupted LQ images `fill` wrote. Returns the fixed
/// corruptions' strengths.
fn corrupt_group(
    members: Vec<(&[f32], &mut [MaybeUninit<f32>])>,
    usm: Vec<&mut [MaybeUninit<f32>]>,
    g: &Geometry,
    key: Key,
    c: Corruption<'_>,
) -> Result<Vec<f64>> {
    if let Some(d) = c.corruptor.degradation() {
        // Real-ESRGAN's degradation makes each LQ image from its HQ image, one draw for
        // the group (fill left the LQ slots unwritten), and writes the sharpened HQ
        // images into `usm` (one slot per item, whose image is every `stride`-th member:
        // alt images come between).
        let draws = d.draw(key);
        let scale = (g.hq.0 / g.lq.0.max(1)).max(1);
        let stride = members.len() / usm.len().max(1);
        let mut usm = usm.into_iter();
        for (i, (hq, lq)) in members.into_iter().enumerate() {
            let p = Planes {
                c: 3,
                h: g.hq.0,
                w: g.hq.1,
                data: hq.to_vec(),
            };
            let out = d.degrade_with(&p, scale, g.lq, &draws, i as u64);
            copy_into(lq, &out.lq.data);
            if stride > 0 && i % stride == 0 {
                if let (Some(slot), Some(sharp)) = (usm.next(), &out.gt_usm) {
                    if !slot.is_empty() {
                        copy_into(slot, &sharp.data);
                    }
                }
            }
        }
        return Ok(Vec::new());
    }
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

/// Fills, and corrupts, one thread's share of a batch.
pub(super) fn fill_part(
    items: &[Loaded],
    outs: Outs<'_>,
    layout: &Layout,
    corruption: Option<Corruption<'_>>,
    zeroed: bool,
    affine: Option<[(f32, f32); 3]>,
) -> Result<()> {
    let lq_later =
        corruption.is_some_and(|c| c.before_downsize || c.corruptor.degradation().is_some());
    let Outs {
        mut images,
        hq_centres,
        lq_centres,
        entropy,
    } = outs;
    let sizes = layout.per_item;
    // Group after group: filled, then corrupted while its HQ images are still in the
    // cache.
    let group = layout.group;
    for (gi, members) in items.chunks(group).enumerate() {
        for (jj, it) in members.iter().enumerate() {
            let j = gi * group + jj;
            let at = |k: usize| j * k..(j + 1) * k;
            let slots = Slots {
                images: images.as_mut().zip(sizes).map(|(out, k)| &mut out[at(k)]),
                hq_centre: &mut hq_centres[at(2)],
                lq_centre: &mut lq_centres[at(2)],
            };
            fill(it, slots, lq_later, zeroed);
        }
        if let Some(c) = corruption {
            let at = |k: usize| gi * group * k..(gi * group + members.len()) * k;
            corrupt_part(
                members,
                layout,
                c,
                (&images.hq[at(sizes.hq)], &mut images.lq[at(sizes.lq)]),
                (
                    &images.alt_hq[at(sizes.alt_hq)],
                    &mut images.alt_lq[at(sizes.alt_lq)],
                ),
                &mut images.hq_usm[at(sizes.hq_usm)],
                &mut entropy[gi * layout.entropy..(gi + 1) * layout.entropy],
            )?;
        }
    }
    // The sharpened HQ images the degradation did not write (eval mode, or a
    // degradation not asked for them).
    let degraded = corruption
        .and_then(|c| c.corruptor.degradation())
        .is_some_and(|d| d.options().gt_usm);
    if sizes.hq_usm > 0 && !degraded {
        // SAFETY: fill wrote every HQ value.
        let hq = unsafe { init(&images.hq[..]) };
        let (h, w) = items[0].geo.hq;
        for (src, out) in hq
            .chunks_exact(sizes.hq)
            .zip(images.hq_usm.chunks_exact_mut(sizes.hq_usm))
        {
            let p = Planes {
                c: 3,
                h,
                w,
                data: src.to_vec(),
            };
            copy_into(out, &crate::corrupt::realesrgan::usm_sharp(&p).data);
        }
    }
    if let Some(ab) = affine {
        let Images {
            hq,
            lq,
            alt_hq,
            alt_lq,
            hq_usm,
            ..
        } = images;
        for out in [hq, lq, alt_hq, alt_lq, hq_usm] {
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
    hq_usm: &mut [MaybeUninit<f32>],
    entropy: &mut [MaybeUninit<f32>],
) -> Result<()> {
    let sizes = layout.per_item;
    // SAFETY: fill wrote every HQ value.
    let (hq, alt_hq) = unsafe { (init(hq), init(alt_hq)) };
    let g = &items[0].geo;
    let per_group = |k: usize| layout.group * k;
    let mut alt_parts = alt_hq
        .chunks(sizes.alt_hq.max(1))
        .zip(alt_lq.chunks_mut(sizes.alt_lq.max(1)));
    let groups = items.len() / layout.group;
    let mut usm_groups = hq_usm.chunks_mut(per_group(sizes.hq_usm).max(1));
    for (((items, hq), lq), entropy) in items
        .chunks(layout.group)
        .zip(hq.chunks(per_group(sizes.hq)))
        .zip(lq.chunks_mut(per_group(sizes.lq)))
        .zip(parts(entropy, layout.entropy, groups))
    {
        let usm: Vec<&mut [MaybeUninit<f32>]> = match usm_groups.next() {
            Some(g) if sizes.hq_usm > 0 => g.chunks_mut(sizes.hq_usm).collect(),
            _ => Vec::new(),
        };
        let mut members = Vec::with_capacity(2 * items.len());
        for (hq, lq) in hq.chunks(sizes.hq).zip(lq.chunks_mut(sizes.lq)) {
            members.push((hq, lq));
            if sizes.alt_lq > 0 {
                let (ahq, alq) = alt_parts.next().expect("an alt per item");
                members.push((ahq, alq));
            }
        }
        let strengths = corrupt_group(members, usm, g, items[0].key, c)?;
        if layout.entropy > 0 {
            let values: Vec<f32> = strengths.iter().map(|&v| v as f32).collect();
            copy_into(&mut entropy[..layout.entropy], &values);
        }
    }
    Ok(())
}
