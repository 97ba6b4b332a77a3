//! Noise: uniform noise added to every value (drawn by the [`Bulk`](super::bulk::Bulk)
//! generator), and a block of the image replaced by noise.

use super::{planes_mut, Rng};
use crate::planes::Planes;

/// Adds uniform noise in `[0, amp)` to every value (not clipped, as DLAS).
pub(super) fn add_noise(img: &mut Planes, amp: f32, rng: &mut Rng) {
    rng.bulk().add_scaled(&mut img.data, amp);
}

/// One block covering `0.1 + 0.4 r` of each side, at a random place, replaced by
/// uniform noise in [0, 1) (DLAS: "large distortion blocks in part of an image").
pub(super) fn block_noise(img: &mut Planes, r: f64, rng: &mut Rng) {
    let frac = 0.1 + 0.4 * r;
    let bh = ((img.h as f64 * frac).round() as usize).clamp(1, img.h.max(1));
    let bw = ((img.w as f64 * frac).round() as usize).clamp(1, img.w.max(1));
    if img.h == 0 || img.w == 0 {
        return;
    }
    let y0 = rng.below(img.h - bh + 1);
    let x0 = rng.below(img.w - bw + 1);
    let w = img.w;
    for plane in planes_mut(img) {
        for y in y0..y0 + bh {
            for v in &mut plane[y * w + x0..y * w + x0 + bw] {
                *v = rng.unit_f32();
            }
        }
    }
}
