//! Corruptions that move pixels: interlacing (odd rows shifted sideways) and lateral
//! chromatic aberration (red and blue displaced in opposite directions).

use super::{planes_mut, Rng};
use crate::planes::Planes;

/// Interlacing (combing): every odd row shifted sideways by `1 + int(3 r)` pixels in a
/// random direction, edges replicated.
pub(super) fn interlace(img: &mut Planes, r: f64, rng: &mut Rng) {
    let shift = 1 + (3.0 * r) as i64;
    let shift = if rng.below(2) == 0 { shift } else { -shift };
    let (h, w) = (img.h, img.w);
    let mut row = vec![0f32; w];
    for plane in planes_mut(img) {
        for y in (1..h).step_by(2) {
            let src = &plane[y * w..(y + 1) * w];
            for (x, o) in row.iter_mut().enumerate() {
                *o = src[(x as i64 - shift).clamp(0, w as i64 - 1) as usize];
            }
            plane[y * w..(y + 1) * w].copy_from_slice(&row);
        }
    }
}

/// Bilinear sample of a plane at `(y, x)`, edges replicated.
fn sample(plane: &[f32], h: usize, w: usize, y: f64, x: f64) -> f32 {
    let y = y.clamp(0.0, (h - 1) as f64);
    let x = x.clamp(0.0, (w - 1) as f64);
    let (y0, x0) = (y.floor() as usize, x.floor() as usize);
    let (y1, x1) = ((y0 + 1).min(h - 1), (x0 + 1).min(w - 1));
    let (fy, fx) = ((y - y0 as f64) as f32, (x - x0 as f64) as f32);
    let top = plane[y0 * w + x0] * (1.0 - fx) + plane[y0 * w + x1] * fx;
    let bot = plane[y1 * w + x0] * (1.0 - fx) + plane[y1 * w + x1] * fx;
    top * (1.0 - fy) + bot * fy
}

/// Lateral chromatic aberration: red and blue displaced in opposite directions by
/// `3 r` pixels along a random direction (bilinear, edges replicated); green stays.
pub(super) fn chromatic_aberration(img: &mut Planes, r: f64, rng: &mut Rng) {
    let d = 3.0 * r;
    let theta = rng.unit() * std::f64::consts::TAU;
    if d < 1.0 / 64.0 || img.c < 3 || img.h == 0 || img.w == 0 {
        return;
    }
    let (dy, dx) = (d * theta.sin(), d * theta.cos());
    let (h, w) = (img.h, img.w);
    for (c, sign) in [(0usize, 1.0), (2, -1.0)] {
        let plane = img.plane(c).to_vec();
        let out = &mut img.data[c * h * w..(c + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                out[y * w + x] = sample(&plane, h, w, y as f64 - sign * dy, x as f64 - sign * dx);
            }
        }
    }
}
