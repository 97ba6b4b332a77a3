//! The corruptions themselves, on planar float32 RGB (`3 x H x W`).
//!
//! Filters follow OpenCV where DLAS used it: `cv2.GaussianBlur` (kernel size from
//! sigma as for float images, reflect-101 borders), `cv2.warpAffine` + `cv2.filter2D`
//! for the motion kernel, `cv2.resize` for resampling. The JPEG round trip truncates
//! to 8 bits as DLAS's `astype(np.uint8)` does (after clamping to [0, 255]), encodes
//! with 4:2:0 chroma like PIL's default, and decodes back.

use super::Rng;
use crate::error::Result;
use crate::image::Rgb8;
use crate::planes::{planes_to_rgb8, resample_plane, Filter, Planes};

/// OpenCV's BORDER_REFLECT_101 (`gfedcb|abcdefgh|gfedcba`) for any offset.
fn reflect101(i: i64, n: usize) -> usize {
    let n = n as i64;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - m }) as usize
}

fn planes_mut(img: &mut Planes) -> impl Iterator<Item = &mut [f32]> {
    let n = img.h * img.w;
    img.data.chunks_exact_mut(n.max(1))
}

/// Every plane resized to `h x w` with `filter`.
pub(super) fn resize_to(img: &mut Planes, h: usize, w: usize, filter: Filter) {
    if (h, w) == (img.h, img.w) {
        return;
    }
    let mut data = Vec::with_capacity(img.c * h * w);
    for c in 0..img.c {
        data.extend(resample_plane(img.plane(c), img.w, img.h, w, h, filter));
    }
    *img = Planes {
        c: img.c,
        h,
        w,
        data,
    };
}

/// `(v * 255) // div * div / 255`, in float32 as numpy computes it.
pub(super) fn quantize(img: &mut Planes, div: u32) {
    let d = div as f32;
    for v in &mut img.data {
        *v = (*v * 255.0 / d).floor() * d / 255.0;
    }
}

/// The Gaussian kernel `cv2.getGaussianKernel` makes for a float image and `sigma`
/// (size `round(8 sigma + 1) | 1`), or None when it is the identity.
fn gaussian_kernel(sigma: f64) -> Option<Vec<f32>> {
    if sigma.is_nan() || sigma <= 0.0 {
        return None;
    }
    let size = ((sigma * 8.0 + 1.0).round() as usize) | 1;
    if size == 1 {
        return None;
    }
    let half = (size - 1) as f64 / 2.0;
    let k: Vec<f64> = (0..size)
        .map(|i| (-(i as f64 - half).powi(2) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    Some(k.iter().map(|v| (v / sum) as f32).collect())
}

/// Separable correlation of every plane with `kx` along rows and `ky` along columns
/// (both odd-sized, centred), reflect-101 borders. Compiled for the baseline target, for
/// AVX2 and for AVX-512 with strips of twice the outputs (picked at run time); plain
/// multiplies and adds in the same order, so all give the same values.
fn separable(img: &mut Planes, kx: &[f32], ky: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        #[target_feature(enable = "avx512f")]
        fn avx512(img: &mut Planes, kx: &[f32], ky: &[f32]) {
            separable_generic::<{ 2 * STRIP }>(img, kx, ky)
        }
        // SAFETY: the CPU supports AVX-512F (checked at run time).
        return unsafe { avx512(img, kx, ky) };
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(img: &mut Planes, kx: &[f32], ky: &[f32]) {
            separable_generic::<STRIP>(img, kx, ky)
        }
        // SAFETY: the CPU supports AVX2 (checked at run time).
        return unsafe { avx2(img, kx, ky) };
    }
    separable_generic::<STRIP>(img, kx, ky)
}

/// Outputs accumulated together in registers: four AVX2 vectors (and four AVX-512
/// vectors in the AVX-512 build).
const STRIP: usize = 32;

/// `out[x] = sum_i src[starts[i] + x] * k[i]` for `x < out.len()`, the taps added in
/// order (as a plain tap-after-tap loop adds them: the same values), a strip of `S`
/// outputs kept in registers through all the taps (then strips of [`STRIP`], then one
/// output at a time).
#[inline(always)]
fn weighted_rows<const S: usize>(src: &[f32], starts: &[usize], k: &[f32], out: &mut [f32]) {
    let mut x = weighted_strips::<S>(src, starts, k, out, 0);
    if S > STRIP {
        x = weighted_strips::<STRIP>(src, starts, k, out, x);
    }
    for (j, o) in out.iter_mut().enumerate().skip(x) {
        let mut a = 0f32;
        for (&at, &kv) in starts.iter().zip(k) {
            a += src[at + j] * kv;
        }
        *o = a;
    }
}

/// [`weighted_rows`] for whole strips of `S` outputs from `x`; returns where they end.
#[inline(always)]
fn weighted_strips<const S: usize>(
    src: &[f32],
    starts: &[usize],
    k: &[f32],
    out: &mut [f32],
    mut x: usize,
) -> usize {
    while x + S <= out.len() {
        let mut acc = [0f32; S];
        for (&at, &kv) in starts.iter().zip(k) {
            let v: &[f32; S] = src[at + x..at + x + S].try_into().expect("a strip");
            for (a, &v) in acc.iter_mut().zip(v) {
                *a += v * kv;
            }
        }
        out[x..x + S].copy_from_slice(&acc);
        x += S;
    }
    x
}

#[inline(always)]
fn separable_generic<const S: usize>(img: &mut Planes, kx: &[f32], ky: &[f32]) {
    let (h, w) = (img.h, img.w);
    let (rx, ry) = (kx.len() / 2, ky.len() / 2);
    let mut pad = vec![0f32; w + 2 * rx];
    let mut tmp = vec![0f32; h * w];
    // Tap i of a row reads the padded row from offset i.
    let shifts: Vec<usize> = (0..kx.len()).collect();
    let mut rows = vec![0usize; ky.len()];
    for plane in planes_mut(img) {
        for y in 0..h {
            let row = &plane[y * w..(y + 1) * w];
            pad[rx..rx + w].copy_from_slice(row);
            for i in (0..rx).chain(rx + w..w + 2 * rx) {
                pad[i] = row[reflect101(i as i64 - rx as i64, w)];
            }
            weighted_rows::<S>(&pad, &shifts, kx, &mut tmp[y * w..(y + 1) * w]);
        }
        for y in 0..h {
            for (i, r) in rows.iter_mut().enumerate() {
                *r = reflect101(y as i64 + i as i64 - ry as i64, h) * w;
            }
            weighted_rows::<S>(&tmp, &rows, ky, &mut plane[y * w..(y + 1) * w]);
        }
    }
}

/// `cv2.GaussianBlur(img, (0, 0), sigma)`.
pub(super) fn gaussian_blur(img: &mut Planes, sigma: f64) {
    if let Some(k) = gaussian_kernel(sigma) {
        separable(img, &k, &k);
    }
}

/// `cv2.GaussianBlur(img, (ksize, ksize), sigma)` with an odd `ksize`: a non-positive
/// sigma is OpenCV's default for the size (its fixed small kernels for sizes up to 7).
pub(crate) fn gaussian_blur_sized(img: &mut Planes, ksize: usize, sigma: f64) {
    if ksize <= 1 {
        return;
    }
    let k: Vec<f64> = if sigma <= 0.0 && ksize <= 7 {
        match ksize {
            3 => vec![0.25, 0.5, 0.25],
            5 => vec![0.0625, 0.25, 0.375, 0.25, 0.0625],
            _ => vec![
                0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125,
            ],
        }
    } else {
        let sigma = if sigma > 0.0 {
            sigma
        } else {
            0.3 * ((ksize as f64 - 1.0) * 0.5 - 1.0) + 0.8
        };
        let half = (ksize - 1) as f64 / 2.0;
        let k: Vec<f64> = (0..ksize)
            .map(|i| (-(i as f64 - half).powi(2) / (2.0 * sigma * sigma)).exp())
            .collect();
        let sum: f64 = k.iter().sum();
        k.iter().map(|v| v / sum).collect()
    };
    let k: Vec<f32> = k.iter().map(|&v| v as f32).collect();
    separable(img, &k, &k);
}

/// DLAS's motion kernel: a `len x len` kernel with its middle row set, rotated by
/// `angle` degrees about its centre (`cv2.warpAffine`, bilinear, zero outside), then
/// normalised.
pub(super) fn motion_kernel(len: usize, angle: f64) -> Vec<f32> {
    let mut line = vec![0f64; len * len];
    line[(len - 1) / 2 * len..(len - 1) / 2 * len + len].fill(1.0);
    let c = len as f64 / 2.0 - 0.5;
    let (sin, cos) = angle.to_radians().sin_cos();
    let at = |x: i64, y: i64| {
        if x < 0 || y < 0 || x >= len as i64 || y >= len as i64 {
            0.0
        } else {
            line[y as usize * len + x as usize]
        }
    };
    let mut k = vec![0f64; len * len];
    for y in 0..len {
        for x in 0..len {
            let (dx, dy) = (x as f64 - c, y as f64 - c);
            let sx = cos * dx - sin * dy + c;
            let sy = sin * dx + cos * dy + c;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            k[y * len + x] = at(x0, y0) * (1.0 - fx) * (1.0 - fy)
                + at(x0 + 1, y0) * fx * (1.0 - fy)
                + at(x0, y0 + 1) * (1.0 - fx) * fy
                + at(x0 + 1, y0 + 1) * fx * fy;
        }
    }
    let sum: f64 = k.iter().sum();
    if sum <= 0.0 {
        let mut id = vec![0f32; len * len];
        id[len / 2 * len + len / 2] = 1.0;
        return id;
    }
    k.iter().map(|v| (v / sum) as f32).collect()
}

/// `cv2.filter2D(img, -1, motion_kernel(len, angle))` (anchor at `len / 2`).
pub(crate) fn motion_blur(img: &mut Planes, len: usize, angle: f64) {
    if len <= 1 {
        return;
    }
    let k = motion_kernel(len, angle);
    let a = (len / 2) as i64;
    let (h, w) = (img.h, img.w);
    let cols: Vec<Vec<usize>> = (0..len)
        .map(|j| {
            (0..w)
                .map(|x| reflect101(x as i64 + j as i64 - a, w))
                .collect()
        })
        .collect();
    let mut out = vec![0f32; h * w];
    for plane in planes_mut(img) {
        out.fill(0.0);
        for y in 0..h {
            let o = &mut out[y * w..(y + 1) * w];
            for i in 0..len {
                let src = &plane[reflect101(y as i64 + i as i64 - a, h) * w..][..w];
                for (j, idx) in cols.iter().enumerate() {
                    let kv = k[i * len + j];
                    if kv == 0.0 {
                        continue;
                    }
                    for (ov, &sx) in o.iter_mut().zip(idx) {
                        *ov += src[sx] * kv;
                    }
                }
            }
        }
        plane.copy_from_slice(&out);
    }
}

/// Adds uniform noise in `[0, amp)` to every value (not clipped, as DLAS).
pub(super) fn add_noise(img: &mut Planes, amp: f32, rng: &mut Rng) {
    rng.bulk().add_scaled(&mut img.data, amp);
}

/// A JPEG round trip at `quality`.
pub(super) fn jpeg_round_trip(img: &mut Planes, quality: u8) -> Result<()> {
    let n = img.h * img.w;
    if n == 0 {
        return Ok(());
    }
    let mut rgb = vec![0u8; 3 * n];
    let (r, rest) = img.data.split_at(n);
    let (g, b) = rest.split_at(n);
    planes_to_rgb8(r, g, b, &mut rgb);
    let src = Rgb8::new(img.w, img.h, rgb);
    let w = img.w;
    let (r, rest) = img.data.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    crate::image::jpeg_round_trip(src.view(), quality, |y, rgb| {
        let at = y * w;
        for (plane, row) in [&mut *r, &mut *g, &mut *b].into_iter().zip(rgb) {
            for (v, &p) in plane[at..at + w].iter_mut().zip(row) {
                *v = p as f32 / 255.0;
            }
        }
    })
}

/// `clip(v + amount, 0, 1)`.
pub(super) fn saturate(img: &mut Planes, amount: f32) {
    for v in &mut img.data {
        *v = (*v + amount).clamp(0.0, 1.0);
    }
}

/// The channel mean copied to all three channels.
pub(super) fn greyscale(img: &mut Planes) {
    let n = img.h * img.w;
    let (r, rest) = img.data.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    for i in 0..n {
        let m = (r[i] + g[i] + b[i]) / 3.0;
        (r[i], g[i], b[i]) = (m, m, m);
    }
}

fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// Brightness, contrast and saturation factors in `[max(0, 1 - s), 1 + s]` and a hue
/// shift in `[-s, s]` of a turn, applied in a random order and clamped to [0, 1]
/// (torchvision's `ColorJitter(s, s, s, s)`). Skipped when `s * 255 <= 1`, as DLAS.
pub(super) fn color_jitter(img: &mut Planes, s: f64, rng: &mut Rng) {
    color_jitter_planes(&mut img.data, s, rng)
}

/// [`color_jitter`] on three planes stored one after the other in `data`.
pub(super) fn color_jitter_planes(data: &mut [f32], s: f64, rng: &mut Rng) {
    if s * 255.0 <= 1.0 {
        return;
    }
    let mut factor = || ((1.0 - s).max(0.0) + rng.unit() * (1.0 + s - (1.0 - s).max(0.0))) as f32;
    let (bright, contrast, sat) = (factor(), factor(), factor());
    let hue = ((rng.unit() * 2.0 - 1.0) * s) as f32;
    let mut order = [0usize, 1, 2, 3];
    for i in (1..4).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let n = data.len() / 3;
    let (r, rest) = data.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    let factors = Jitter {
        order,
        bright,
        contrast,
        sat,
        hue,
    };
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(r: &mut [f32], g: &mut [f32], b: &mut [f32], j: &Jitter) {
            j.apply(r, g, b)
        }
        // SAFETY: the CPU supports AVX2 (checked at run time).
        return unsafe { avx2(r, g, b, &factors) };
    }
    factors.apply(r, g, b)
}

/// One colour jitter's draws.
struct Jitter {
    order: [usize; 4],
    bright: f32,
    contrast: f32,
    sat: f32,
    hue: f32,
}

impl Jitter {
    /// The four steps on the R, G and B planes, in `order`; plain loops over the
    /// planes, so they vectorise (the caller compiles them for AVX2 when it can).
    #[inline(always)]
    fn apply(&self, r: &mut [f32], g: &mut [f32], b: &mut [f32]) {
        let n = r.len();
        for step in self.order {
            match step {
                0 => {
                    let f = self.bright;
                    img_map(r, g, b, |v, _| v * f)
                }
                1 => {
                    // The mean luma: f32 sums of blocks in 8 lanes, added up in f64.
                    let mut total = 0f64;
                    for ((r, g), b) in r.chunks(4096).zip(g.chunks(4096)).zip(b.chunks(4096)) {
                        let mut lanes = [0f32; 8];
                        let (r8, g8, b8) =
                            (r.chunks_exact(8), g.chunks_exact(8), b.chunks_exact(8));
                        let tail = r8
                            .remainder()
                            .iter()
                            .zip(g8.remainder())
                            .zip(b8.remainder());
                        let tail: f64 = tail.map(|((&r, &g), &b)| luma(r, g, b) as f64).sum();
                        for ((r, g), b) in r8.zip(g8).zip(b8) {
                            for k in 0..8 {
                                lanes[k] += luma(r[k], g[k], b[k]);
                            }
                        }
                        total += tail + lanes.iter().map(|&v| v as f64).sum::<f64>();
                    }
                    let (c, m) = (
                        self.contrast,
                        (total / n as f64) as f32 * (1.0 - self.contrast),
                    );
                    img_map(r, g, b, |v, _| v * c + m)
                }
                2 => {
                    let f = self.sat;
                    img_map(r, g, b, |v, grey| v * f + grey * (1.0 - f))
                }
                _ => hue_rotate_generic(r, g, b, self.hue),
            }
        }
    }
}

/// Applies `f(value, luma of the pixel)` to every channel, clamped to [0, 1].
#[inline(always)]
fn img_map(r: &mut [f32], g: &mut [f32], b: &mut [f32], f: impl Fn(f32, f32) -> f32) {
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        let grey = luma(*r, *g, *b);
        *r = clamp01(f(*r, grey));
        *g = clamp01(f(*g, grey));
        *b = clamp01(f(*b, grey));
    }
}

/// `v` clamped to [0, 1] with plain comparisons (one min and one max instruction).
#[inline(always)]
fn clamp01(v: f32) -> f32 {
    let v = if v < 0.0 { 0.0 } else { v };
    if v > 1.0 {
        1.0
    } else {
        v
    }
}

/// Rotates every pixel's hue by `turn` (a fraction of the colour wheel), in HSV, the
/// values clamped to [0, 1] first. Branch-free per pixel, so it vectorises.
#[inline(always)]
fn hue_rotate_generic(r: &mut [f32], g: &mut [f32], b: &mut [f32], turn: f32) {
    let shift = turn * 6.0;
    for ((r, g), b) in r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut()) {
        (*r, *g, *b) = shift_hue(*r, *g, *b, shift);
    }
}

/// One pixel's hue rotated by `shift` sixths of a turn: the hue sector from the largest
/// channel, then each channel of `V - V S clamp(min(k, 4 - k), 0, 1)` with
/// `k = (n + H) mod 6` for n = 5, 3, 1 (the usual HSV to RGB, without branches).
#[inline(always)]
fn shift_hue(r: f32, g: f32, b: f32, shift: f32) -> (f32, f32, f32) {
    let (r, g, b) = (clamp01(r), clamp01(g), clamp01(b));
    let big = |a: f32, b: f32| if a > b { a } else { b };
    let small = |a: f32, b: f32| if a < b { a } else { b };
    let max = big(big(r, g), b);
    let delta = max - small(small(r, g), b);
    let inv = if delta > 0.0 { 1.0 / delta } else { 0.0 };
    let h = if max == r {
        (g - b) * inv
    } else if max == g {
        (b - r) * inv + 2.0
    } else {
        (r - g) * inv + 4.0
    } + shift;
    let h = h - 6.0 * (h * (1.0 / 6.0)).floor();
    let channel = |n: f32| {
        let k = n + h;
        let k = if k >= 6.0 { k - 6.0 } else { k };
        max - delta * clamp01(small(k, 4.0 - k))
    };
    (channel(5.0), channel(3.0), channel(1.0))
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

/// A colour cast: each channel offset by a uniform amount in `[-0.15 r, 0.15 r]`,
/// clamped to [0, 1].
pub(super) fn color_shift(img: &mut Planes, r: f64, rng: &mut Rng) {
    let offsets: Vec<f32> = (0..img.c)
        .map(|_| ((rng.unit() * 2.0 - 1.0) * 0.15 * r) as f32)
        .collect();
    for (plane, off) in planes_mut(img).zip(offsets) {
        for v in plane {
            *v = (*v + off).clamp(0.0, 1.0);
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect101_matches_opencv() {
        let got: Vec<usize> = (-3..8).map(|i| reflect101(i, 5)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
        assert_eq!(reflect101(-7, 1), 0);
    }

    /// The separable filter as plainly written: each tap added over the whole row.
    fn separable_plain(img: &mut Planes, kx: &[f32], ky: &[f32]) {
        let (h, w) = (img.h, img.w);
        let (rx, ry) = (kx.len() as i64 / 2, ky.len() as i64 / 2);
        for plane in planes_mut(img) {
            let mut tmp = vec![0f32; h * w];
            for y in 0..h {
                for (i, &kv) in kx.iter().enumerate() {
                    for x in 0..w {
                        let sx = reflect101(x as i64 + i as i64 - rx, w);
                        tmp[y * w + x] += plane[y * w + sx] * kv;
                    }
                }
            }
            plane.fill(0.0);
            for (i, &kv) in ky.iter().enumerate() {
                for y in 0..h {
                    let sy = reflect101(y as i64 + i as i64 - ry, h);
                    for x in 0..w {
                        plane[y * w + x] += tmp[sy * w + x] * kv;
                    }
                }
            }
        }
    }

    #[test]
    fn blocked_separable_filter_gives_the_plain_filters_values() {
        // Widths below, at and past a strip of either size, and kernels of 3 to 13
        // taps; through the dispatcher (AVX-512, AVX2 or baseline, whichever this CPU
        // runs) and through both strip sizes compiled for the baseline.
        for (h, w) in [(1, 1), (5, 7), (33, 32), (40, 70), (9, 100), (128, 128)] {
            for sigma in [0.3, 0.8, 1.5] {
                let k = gaussian_kernel(sigma).unwrap();
                let data: Vec<f32> = (0..3 * h * w)
                    .map(|i| ((i * 2_654_435_761usize) % 1000) as f32 / 999.0)
                    .collect();
                let mut a = Planes { c: 3, h, w, data };
                let mut b = a.clone();
                let (mut c, mut d) = (a.clone(), a.clone());
                separable(&mut a, &k, &k);
                separable_plain(&mut b, &k, &k);
                separable_generic::<STRIP>(&mut c, &k, &k);
                separable_generic::<{ 2 * STRIP }>(&mut d, &k, &k);
                assert_eq!(a.data, b.data, "{h}x{w}, sigma {sigma}");
                assert_eq!(c.data, b.data, "{h}x{w}, sigma {sigma}, strip {STRIP}");
                assert_eq!(
                    d.data,
                    b.data,
                    "{h}x{w}, sigma {sigma}, strip {}",
                    2 * STRIP
                );
            }
        }
    }

    #[test]
    fn gaussian_kernel_matches_opencv_sizes() {
        // cv2.getGaussianKernel(ksize, sigma) with ksize = round(8 sigma + 1) | 1.
        assert!(gaussian_kernel(0.0).is_none());
        assert!(gaussian_kernel(0.05).is_none());
        assert_eq!(gaussian_kernel(1.5).unwrap().len(), 13);
        let k = gaussian_kernel(1.0).unwrap();
        assert_eq!(k.len(), 9);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((k[4] - 0.398_943).abs() < 1e-3);
    }

    #[test]
    fn motion_kernel_at_zero_degrees_is_the_middle_row() {
        let k = motion_kernel(3, 0.0);
        assert_eq!(
            k,
            [
                0.0,
                0.0,
                0.0,
                1.0 / 3.0,
                1.0 / 3.0,
                1.0 / 3.0,
                0.0,
                0.0,
                0.0
            ]
        );
        let k = motion_kernel(5, 90.0);
        for (i, v) in k.iter().enumerate() {
            let want = if i % 5 == 2 { 0.2 } else { 0.0 };
            assert!((v - want).abs() < 1e-6, "{i}: {v}");
        }
    }

    #[test]
    fn hue_round_trip_of_zero_is_identity() {
        let (r, g, b) = shift_hue(0.2, 0.5, 0.9, 0.0);
        assert!((r - 0.2).abs() < 1e-6 && (g - 0.5).abs() < 1e-6 && (b - 0.9).abs() < 1e-6);
        // A third of a turn (two sixths): red becomes green.
        let (r, g, b) = shift_hue(1.0, 0.0, 0.0, 2.0);
        assert!((r - 0.0).abs() < 1e-6 && (g - 1.0).abs() < 1e-6 && b.abs() < 1e-6);
    }
}
