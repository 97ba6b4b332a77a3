//! Area resizing with OpenCV `INTER_AREA` semantics, for shrinking.
//!
//! Hand-written because no maintained crate implements these weights:
//! `fast_image_resize`'s box filter takes whole pixels whose centres fall in the
//! window, whereas `INTER_AREA` weights every source pixel by the fraction of it that
//! the destination cell covers. For integer factors both reduce to the exact mean of a
//! `kx x ky` block, which is the fast path here.
//!
//! Enlarging (which the extraction never does) falls back to bilinear sampling with
//! pixel-centre alignment, as OpenCV does for `INTER_AREA` upscales in the common case.

use super::{Rgb8, Rgb8View};

/// Resizes `src` to `dst_w x dst_h` with area averaging.
pub fn resize_area(src: Rgb8View<'_>, dst_w: usize, dst_h: usize) -> Rgb8 {
    let mut out = vec![0u8; dst_w * dst_h * 3];
    resize_area_into(src, dst_w, dst_h, &mut out);
    Rgb8::new(dst_w, dst_h, out)
}

/// Like [`resize_area`], writing into `out` (`dst_w * dst_h * 3` bytes).
pub fn resize_area_into(src: Rgb8View<'_>, dst_w: usize, dst_h: usize, out: &mut [u8]) {
    assert_eq!(out.len(), dst_w * dst_h * 3, "output buffer size mismatch");
    assert!(src.width > 0 && src.height > 0 && dst_w > 0 && dst_h > 0);
    if dst_w == src.width && dst_h == src.height {
        for y in 0..dst_h {
            out[y * dst_w * 3..(y + 1) * dst_w * 3].copy_from_slice(src.row(y));
        }
        return;
    }
    if dst_w > src.width || dst_h > src.height {
        return resize_bilinear(src, dst_w, dst_h, out);
    }
    if src.width.is_multiple_of(dst_w) && src.height.is_multiple_of(dst_h) {
        box_integer(src, src.width / dst_w, src.height / dst_h, out);
    } else {
        area_general(src, dst_w, dst_h, out);
    }
}

/// Exact block mean for integer factors `kx`, `ky` (rounded half up).
fn box_integer(src: Rgb8View<'_>, kx: usize, ky: usize, out: &mut [u8]) {
    if kx == 2 && ky == 2 {
        return box_2x2(src, out);
    }
    let dst_w = src.width / kx;
    let dst_h = src.height / ky;
    let div = Divider::new((kx * ky) as u32);
    let mut acc = vec![0u32; dst_w * 3];
    for (dy, out_row) in out.chunks_exact_mut(dst_w * 3).enumerate().take(dst_h) {
        acc.iter_mut().for_each(|a| *a = 0);
        for sy in dy * ky..(dy + 1) * ky {
            let row = src.row(sy);
            for (a, block) in acc.chunks_exact_mut(3).zip(row.chunks_exact(3 * kx)) {
                for px in block.chunks_exact(3) {
                    a[0] += px[0] as u32;
                    a[1] += px[1] as u32;
                    a[2] += px[2] as u32;
                }
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = div.rounded(a);
        }
    }
}

/// The 2x2 case (every level shrunk by 0.5, and halving): rows are summed pairwise
/// as whole byte slices, which the compiler vectorises, then neighbouring pixels.
fn box_2x2(src: Rgb8View<'_>, out: &mut [u8]) {
    let dst_w = src.width / 2;
    let mut sum = vec![0u16; dst_w * 6];
    for (dy, out_row) in out.chunks_exact_mut(dst_w * 3).enumerate() {
        let (r0, r1) = (src.row(2 * dy), src.row(2 * dy + 1));
        simd::add_rows(&mut sum, &r0[..dst_w * 6], &r1[..dst_w * 6]);
        for (o, s) in out_row.chunks_exact_mut(3).zip(sum.chunks_exact(6)) {
            o[0] = ((s[0] + s[3] + 2) >> 2) as u8;
            o[1] = ((s[1] + s[4] + 2) >> 2) as u8;
            o[2] = ((s[2] + s[5] + 2) >> 2) as u8;
        }
    }
}

/// `(n + d / 2) / d` without a division per pixel: a multiply by a rounded-up
/// reciprocal, exact for every `n <= 256 * d` when `d < 2^16` (`n * d < 2^40`), with a
/// plain division for larger blocks.
struct Divider {
    d: u32,
    magic: u64,
}

impl Divider {
    const SHIFT: u32 = 40;

    fn new(d: u32) -> Self {
        let magic = if d < 1 << 16 {
            (1u64 << Self::SHIFT).div_ceil(d as u64)
        } else {
            0
        };
        Divider { d, magic }
    }

    #[inline]
    fn rounded(&self, sum: u32) -> u8 {
        let n = (sum + self.d / 2) as u64;
        let q = if self.magic != 0 {
            (n * self.magic) >> Self::SHIFT
        } else {
            n / self.d as u64
        };
        q as u8
    }
}

/// The two whole-row loops of the resizers, compiled twice: for the baseline x86-64
/// target and for AVX2, picked at run time. Element-wise integer adds and float
/// multiply-adds (not fused) give the same results either way.
pub(crate) mod simd {
    /// `sum[i] = a[i] + b[i]`.
    #[inline(always)]
    fn add_rows_generic(sum: &mut [u16], a: &[u8], b: &[u8]) {
        for ((s, &x), &y) in sum.iter_mut().zip(a).zip(b) {
            *s = x as u16 + y as u16;
        }
    }

    /// `acc[i] += row[i] * w`.
    #[inline(always)]
    fn weighted_add_generic(acc: &mut [f32], row: &[u8], w: f32) {
        for (a, &p) in acc.iter_mut().zip(row) {
            *a += p as f32 * w;
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod avx2 {
        #[target_feature(enable = "avx2")]
        pub(super) fn add_rows(sum: &mut [u16], a: &[u8], b: &[u8]) {
            super::add_rows_generic(sum, a, b)
        }

        #[target_feature(enable = "avx2")]
        pub(super) fn weighted_add(acc: &mut [f32], row: &[u8], w: f32) {
            super::weighted_add_generic(acc, row, w)
        }
    }

    pub(crate) fn add_rows(sum: &mut [u16], a: &[u8], b: &[u8]) {
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::features().avx2 {
            // SAFETY: the CPU supports AVX2 (checked at run time).
            return unsafe { avx2::add_rows(sum, a, b) };
        }
        add_rows_generic(sum, a, b)
    }

    pub(super) fn weighted_add(acc: &mut [f32], row: &[u8], w: f32) {
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::features().avx2 {
            // SAFETY: the CPU supports AVX2 (checked at run time).
            return unsafe { avx2::weighted_add(acc, row, w) };
        }
        weighted_add_generic(acc, row, w)
    }
}

/// Per destination index along one axis: the first source pixel it covers and the
/// weights of the consecutive source pixels from there (summing to 1, except for
/// slivers under 1e-3 px that OpenCV drops too).
pub(crate) struct Taps {
    first: Vec<usize>,
    /// `weights[offsets[d]..offsets[d + 1]]` belong to destination `d`.
    offsets: Vec<usize>,
    weights: Vec<f32>,
}

impl Taps {
    pub(crate) fn new(src_len: usize, dst_len: usize) -> Self {
        let scale = src_len as f64 / dst_len as f64;
        let mut taps = Taps {
            first: Vec::with_capacity(dst_len),
            offsets: vec![0],
            weights: Vec::new(),
        };
        for d in 0..dst_len {
            let start = d as f64 * scale;
            let end = start + scale;
            let cell = scale.min(src_len as f64 - start);
            let lo_px = start.floor() as usize;
            let hi_px = (end.ceil() as usize).min(src_len);
            let mut first = None;
            for s in lo_px..hi_px {
                let cover = end.min(s as f64 + 1.0) - start.max(s as f64);
                if cover > 1e-3 {
                    first.get_or_insert(s);
                    taps.weights.push((cover / cell) as f32);
                } else if first.is_some() {
                    taps.weights.push(0.0);
                }
            }
            taps.first.push(first.unwrap_or(lo_px));
            taps.offsets.push(taps.weights.len());
        }
        taps
    }

    #[inline]
    pub(crate) fn of(&self, d: usize) -> (usize, &[f32]) {
        (
            self.first[d],
            &self.weights[self.offsets[d]..self.offsets[d + 1]],
        )
    }
}

/// General area averaging, separable: the source rows that cover a destination row
/// are weighted and summed into one float row first (a plain multiply-add over whole
/// rows, which vectorises), then that row is filtered horizontally once. OpenCV
/// filters horizontally first; the sums are the same up to float rounding.
fn area_general(src: Rgb8View<'_>, dst_w: usize, dst_h: usize, out: &mut [u8]) {
    let xt = Taps::new(src.width, dst_w);
    let yt = Taps::new(src.height, dst_h);
    let mut acc = vec![0f32; src.width * 3];
    for (dy, out_row) in out.chunks_exact_mut(dst_w * 3).enumerate().take(dst_h) {
        acc.iter_mut().for_each(|a| *a = 0.0);
        let (sy0, wy) = yt.of(dy);
        for (i, &w) in wy.iter().enumerate() {
            if w != 0.0 {
                simd::weighted_add(&mut acc, src.row(sy0 + i), w);
            }
        }
        horizontal(&acc, &xt, out_row);
    }
}

fn horizontal(row: &[f32], xt: &Taps, out: &mut [u8]) {
    for (dx, o) in out.chunks_exact_mut(3).enumerate() {
        let (sx0, wx) = xt.of(dx);
        let px = &row[sx0 * 3..(sx0 + wx.len()) * 3];
        let (mut r, mut g, mut b) = (0f32, 0f32, 0f32);
        for (p, &w) in px.chunks_exact(3).zip(wx) {
            r += p[0] * w;
            g += p[1] * w;
            b += p[2] * w;
        }
        // The sums are never negative: adding 0.5 and truncating rounds half up, as
        // `round` would, without a libm call (the cast saturates at 255).
        o[0] = (r + 0.5) as u8;
        o[1] = (g + 0.5) as u8;
        o[2] = (b + 0.5) as u8;
    }
}

/// Bilinear resampling with half-pixel centres (used only when enlarging).
fn resize_bilinear(src: Rgb8View<'_>, dst_w: usize, dst_h: usize, out: &mut [u8]) {
    let sx = src.width as f32 / dst_w as f32;
    let sy = src.height as f32 / dst_h as f32;
    let coord = |d: usize, scale: f32, len: usize| {
        let f = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (f.floor() as usize).min(len - 1);
        let i1 = (i0 + 1).min(len - 1);
        (i0, i1, f - i0 as f32)
    };
    let xs: Vec<_> = (0..dst_w).map(|d| coord(d, sx, src.width)).collect();
    for dy in 0..dst_h {
        let (y0, y1, fy) = coord(dy, sy, src.height);
        let (r0, r1) = (src.row(y0), src.row(y1));
        for (dx, &(x0, x1, fx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let top = r0[x0 * 3 + c] as f32 * (1.0 - fx) + r0[x1 * 3 + c] as f32 * fx;
                let bot = r1[x0 * 3 + c] as f32 * (1.0 - fx) + r1[x1 * 3 + c] as f32 * fx;
                let v = top * (1.0 - fy) + bot * fy;
                out[(dy * dst_w + dx) * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> Rgb8 {
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[
                    (x * 7 % 256) as u8,
                    (y * 5 % 256) as u8,
                    ((x + y) % 256) as u8,
                ]);
            }
        }
        Rgb8::new(w, h, data)
    }

    #[test]
    fn integer_factor_is_exact_block_mean() {
        let img = ramp(12, 8);
        for (k, l) in [(2, 2), (3, 2), (4, 4), (6, 1)] {
            let (dw, dh) = (12 / k, 8 / l);
            let out = resize_area(img.view(), dw, dh);
            for dy in 0..dh {
                for dx in 0..dw {
                    for c in 0..3 {
                        let mut sum = 0u32;
                        for y in dy * l..(dy + 1) * l {
                            for x in dx * k..(dx + 1) * k {
                                sum += img.data[(y * 12 + x) * 3 + c] as u32;
                            }
                        }
                        let mean = (sum as f64 / (k * l) as f64 + 0.5).floor() as u8;
                        assert_eq!(out.data[(dy * dw + dx) * 3 + c], mean);
                    }
                }
            }
        }
    }

    #[test]
    fn divider_matches_integer_division() {
        for d in (1..=1100).chain([4095, 65535, 65536, 1 << 20]) {
            let div = Divider::new(d);
            let max = 255 * d;
            let step = (max / 997).max(1);
            for sum in (0..=max)
                .step_by(step as usize)
                .chain([max, max - 1, d / 2, d])
            {
                assert_eq!(div.rounded(sum) as u32, (sum + d / 2) / d, "{sum}/{d}");
            }
        }
    }

    #[test]
    fn general_matches_integer_path_on_integer_factors() {
        let img = ramp(40, 40);
        let a = resize_area(img.view(), 10, 10);
        let mut b = vec![0u8; 300];
        area_general(img.view(), 10, 10, &mut b);
        for (x, y) in a.data.iter().zip(&b) {
            assert!((*x as i32 - *y as i32).abs() <= 1);
        }
    }

    #[test]
    fn fractional_weights_cover_partial_pixels() {
        // 3 -> 2: the middle source pixel is split evenly between the two outputs.
        let img = Rgb8::new(3, 1, vec![0, 0, 0, 90, 90, 90, 180, 180, 180]);
        let out = resize_area(img.view(), 2, 1);
        // cell = 1.5 px: (0*1 + 90*0.5)/1.5 = 30; (90*0.5 + 180*1)/1.5 = 150.
        assert_eq!(out.data, vec![30, 30, 30, 150, 150, 150]);
    }

    #[test]
    fn taps_sum_to_one() {
        for (s, d) in [(1000, 256), (2000, 256), (6001, 3000), (777, 256), (5, 3)] {
            let taps = Taps::new(s, d);
            for i in 0..d {
                let sum: f32 = taps.of(i).1.iter().sum();
                // Slivers under 1e-3 px are dropped without renormalising, as OpenCV does.
                assert!((sum - 1.0).abs() < 1e-3, "{s}->{d}: {sum}");
            }
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = Rgb8::new(37, 23, vec![77; 37 * 23 * 3]);
        for (w, h) in [(10, 7), (36, 22), (3, 2), (60, 40)] {
            assert!(resize_area(img.view(), w, h).data.iter().all(|&v| v == 77));
        }
    }

    #[test]
    fn shrinking_the_whole_then_cropping_equals_shrinking_the_crop() {
        // The extractor relies on this for aligned tiles of a level shrunk by 2.
        let img = ramp(64, 64);
        let whole = resize_area(img.view(), 32, 32);
        for (r, c) in [(0, 0), (16, 8), (32, 32)] {
            let tile = resize_area(img.crop(r, c, 32, 32), 16, 16);
            assert_eq!(whole.crop(r / 2, c / 2, 16, 16).to_owned(), tile);
        }
    }

    #[test]
    fn works_on_strided_views() {
        let img = ramp(16, 16);
        let view = img.crop(4, 2, 8, 8);
        let a = resize_area(view, 4, 4);
        let b = resize_area(view.to_owned().view(), 4, 4);
        assert_eq!(a, b);
    }
}
