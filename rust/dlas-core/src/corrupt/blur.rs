//! The blurs, made as OpenCV makes them where DLAS used it: `cv2.GaussianBlur` (kernel
//! size from sigma as for float images, reflect-101 borders), and `cv2.warpAffine` +
//! `cv2.filter2D` for the motion kernel.

use super::planes_mut;
use crate::planes::Planes;

/// OpenCV's BORDER_REFLECT_101 (`gfedcb|abcdefgh|gfedcba`) for any offset.
pub(crate) fn reflect101(i: i64, n: usize) -> usize {
    let n = n as i64;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - m }) as usize
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
    if crate::cpu::features().avx512f {
        #[target_feature(enable = "avx512f")]
        fn avx512(img: &mut Planes, kx: &[f32], ky: &[f32]) {
            separable_generic::<{ 2 * STRIP }>(img, kx, ky)
        }
        // SAFETY: the CPU supports AVX-512F (checked at run time).
        return unsafe { avx512(img, kx, ky) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::features().avx2 {
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

/// Correlation of every plane with the `size x size` kernel `k` (row after row, odd
/// size), reflect-101 borders (torch's `reflect` padding, folded again for images
/// smaller than the kernel): BasicSR's `filter2D`. Taps of zero (a small kernel padded
/// to a larger size) are skipped; the others are added in row order, so every CPU path
/// gives the same values.
pub(crate) fn correlate(img: &mut Planes, k: &[f32], size: usize) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::features().avx512f {
        #[target_feature(enable = "avx512f")]
        fn avx512(img: &mut Planes, k: &[f32], size: usize) {
            correlate_generic::<{ 2 * STRIP }>(img, k, size)
        }
        // SAFETY: the CPU supports AVX-512F (checked at run time).
        return unsafe { avx512(img, k, size) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::features().avx2 {
        #[target_feature(enable = "avx2")]
        fn avx2(img: &mut Planes, k: &[f32], size: usize) {
            correlate_generic::<STRIP>(img, k, size)
        }
        // SAFETY: the CPU supports AVX2 (checked at run time).
        return unsafe { avx2(img, k, size) };
    }
    correlate_generic::<STRIP>(img, k, size)
}

#[inline(always)]
fn correlate_generic<const S: usize>(img: &mut Planes, k: &[f32], size: usize) {
    assert_eq!(k.len(), size * size);
    let (h, w) = (img.h, img.w);
    if h == 0 || w == 0 {
        return;
    }
    let r = size / 2;
    let (ph, pw) = (h + 2 * r, w + 2 * r);
    let mut pad = vec![0f32; ph * pw];
    // The non-zero taps: their offsets in a padded row pair and their weights.
    let taps: Vec<(usize, usize, f32)> = (0..size)
        .flat_map(|i| (0..size).map(move |j| (i, j)))
        .map(|(i, j)| (i, j, k[i * size + j]))
        .filter(|t| t.2 != 0.0)
        .collect();
    let weights: Vec<f32> = taps.iter().map(|t| t.2).collect();
    let mut starts = vec![0usize; taps.len()];
    let cols: Vec<usize> = (0..pw)
        .map(|x| reflect101(x as i64 - r as i64, w))
        .collect();
    for plane in planes_mut(img) {
        for y in 0..ph {
            let src = &plane[reflect101(y as i64 - r as i64, h) * w..][..w];
            let row = &mut pad[y * pw..(y + 1) * pw];
            for (p, &x) in row.iter_mut().zip(&cols) {
                *p = src[x];
            }
        }
        for y in 0..h {
            for (s, &(i, j, _)) in starts.iter_mut().zip(&taps) {
                *s = (y + i) * pw + j;
            }
            weighted_rows::<S>(&pad, &starts, &weights, &mut plane[y * w..(y + 1) * w]);
        }
    }
}

/// [`separable`] for other modules.
pub(crate) fn correlate_separable(img: &mut Planes, kx: &[f32], ky: &[f32]) {
    separable(img, kx, ky)
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
}
