//! Planar float32 images and their area resize (OpenCV `INTER_AREA` on float images).

mod resample;

pub use resample::{matlab_resize_plane, resample_plane, Filter};

use crate::image::resize::Taps;
use std::mem::MaybeUninit;

use crate::image::Rgb8;

/// `c` planes of `h x w` float32 values, plane after plane.
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Planes {
    pub fn zeros(c: usize, h: usize, w: usize) -> Planes {
        Planes {
            c,
            h,
            w,
            data: vec![0.0; c * h * w],
        }
    }

    /// RGB planes in `[0, 1]` (`value / 255`, as DLAS's `read_img`).
    pub fn from_rgb8(img: &Rgb8) -> Planes {
        let n = img.width * img.height;
        let mut data = Vec::with_capacity(3 * n);
        Planes::write_rgb8(img, &mut data.spare_capacity_mut()[..3 * n]);
        // SAFETY: write_rgb8 wrote all 3 * n values.
        unsafe { data.set_len(3 * n) };
        Planes {
            c: 3,
            h: img.height,
            w: img.width,
            data,
        }
    }

    /// Writes `img` as RGB planes in `[0, 1]` into `out` (`3 * w * h` values, every
    /// one written), as [`Planes::from_rgb8`] computes them.
    pub fn write_rgb8(img: &Rgb8, out: &mut [std::mem::MaybeUninit<f32>]) {
        let n = img.width * img.height;
        assert_eq!(img.data.len(), 3 * n, "image buffer size");
        assert_eq!(out.len(), 3 * n, "output size");
        let (r, rest) = out.split_at_mut(n);
        let (g, b) = rest.split_at_mut(n);
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[target_feature(enable = "avx2")]
            fn avx2(
                src: &[u8],
                r: &mut [MaybeUninit<f32>],
                g: &mut [MaybeUninit<f32>],
                b: &mut [MaybeUninit<f32>],
            ) {
                deinterleave(src, r, g, b)
            }
            // SAFETY: the CPU supports AVX2 (checked at run time).
            return unsafe { avx2(&img.data, r, g, b) };
        }
        deinterleave(&img.data, r, g, b)
    }

    /// Writes the top-left `h x w` of `img` shrunk by the integer factor `k` (exact
    /// `k x k` block means, OpenCV's `INTER_AREA` for integer factors) as RGB planes in
    /// `[0, 1]` into `out` (`3 * h * w` values, every one written). The block sums are
    /// exact integers, so the values differ from averaging `v / 255` floats only by
    /// float rounding.
    pub fn write_rgb8_shrunk(
        img: &Rgb8,
        k: usize,
        h: usize,
        w: usize,
        out: &mut [std::mem::MaybeUninit<f32>],
    ) {
        assert!(
            k >= 1 && h * k <= img.height && w * k <= img.width,
            "shrink size"
        );
        assert_eq!(out.len(), 3 * h * w, "output size");
        let n = h * w;
        let scale = 1.0 / (255.0 * (k * k) as f32);
        let stride = img.width * 3;
        if k == 2 {
            let (pr, rest) = out.split_at_mut(n);
            let (pg, pb) = rest.split_at_mut(n);
            for y in 0..h {
                let r0 = &img.data[2 * y * stride..][..w * 6];
                let r1 = &img.data[(2 * y + 1) * stride..][..w * 6];
                let row = y * w..(y + 1) * w;
                shrink2_row(
                    r0,
                    r1,
                    scale,
                    [&mut pr[row.clone()], &mut pg[row.clone()], &mut pb[row]],
                );
            }
            return;
        }
        let mut acc = vec![0u32; w * 3];
        for y in 0..h {
            acc.fill(0);
            for sy in y * k..(y + 1) * k {
                let row = &img.data[sy * stride..sy * stride + w * k * 3];
                for (a, block) in acc.chunks_exact_mut(3).zip(row.chunks_exact(3 * k)) {
                    for px in block.chunks_exact(3) {
                        a[0] += px[0] as u32;
                        a[1] += px[1] as u32;
                        a[2] += px[2] as u32;
                    }
                }
            }
            for (x, a) in acc.chunks_exact(3).enumerate() {
                for (c, &v) in a.iter().enumerate() {
                    out[c * n + y * w + x].write(v as f32 * scale);
                }
            }
        }
    }

    /// Writes `img` as RGB planes in `[0, 1]` into `hq` (as [`Planes::write_rgb8`]) and
    /// their `k x k` block means into `lq` (`3 * (h / k) * (w / k)` values), with the
    /// same values as [`resize_plane`] gives from those planes, in one pass over the
    /// image: each row is converted once, stored to `hq` and added into per-column
    /// sums, so the HQ planes are never read back. `k` must divide both sides.
    /// `streamed`: `hq` is an output this thread will not read again, written with
    /// non-temporal stores where its rows are aligned for them (as [`stream_into`],
    /// fenced before returning).
    pub fn write_rgb8_boxed(
        img: &Rgb8,
        k: usize,
        hq: &mut [MaybeUninit<f32>],
        lq: &mut [MaybeUninit<f32>],
        streamed: bool,
    ) {
        let (h, w) = (img.height, img.width);
        assert!(
            k >= 1 && h.is_multiple_of(k) && w.is_multiple_of(k),
            "block size"
        );
        assert_eq!(img.data.len(), 3 * h * w, "image buffer size");
        assert_eq!(hq.len(), 3 * h * w, "output size");
        assert_eq!(lq.len(), 3 * (h / k) * (w / k), "output size");
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            #[target_feature(enable = "avx2,fma")]
            fn avx2(
                img: &Rgb8,
                k: usize,
                hq: &mut [MaybeUninit<f32>],
                lq: &mut [MaybeUninit<f32>],
                streamed: bool,
            ) {
                boxed::<true>(img, k, hq, lq, streamed)
            }
            // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
            return unsafe { avx2(img, k, hq, lq, streamed) };
        }
        boxed::<false>(img, k, hq, lq, streamed)
    }

    pub fn plane(&self, i: usize) -> &[f32] {
        &self.data[i * self.h * self.w..(i + 1) * self.h * self.w]
    }

    /// Every plane area-resized to `h x w`.
    pub fn resized(&self, h: usize, w: usize) -> Planes {
        if (h, w) == (self.h, self.w) {
            return self.clone();
        }
        let mut data = Vec::with_capacity(self.c * h * w);
        for i in 0..self.c {
            data.extend(resize_plane(self.plane(i), self.w, self.h, w, h));
        }
        Planes {
            c: self.c,
            h,
            w,
            data,
        }
    }

    /// The top-left `h x w` of every plane.
    pub fn cropped(&self, h: usize, w: usize) -> Planes {
        let mut data = Vec::with_capacity(self.c * h * w);
        for i in 0..self.c {
            let p = self.plane(i);
            for r in 0..h {
                data.extend_from_slice(&p[r * self.w..r * self.w + w]);
            }
        }
        Planes {
            c: self.c,
            h,
            w,
            data,
        }
    }
}

#[cfg(target_arch = "x86_64")]
const Z: i8 = -1;
/// Byte positions of each channel in the three 16-byte thirds of 16 RGB pixels, in
/// pixel order (-1: none): OR-ing the three shuffles gives the channel's 16 bytes.
#[cfg(target_arch = "x86_64")]
#[rustfmt::skip]
const CHANNELS: [[[i8; 16]; 3]; 3] = [
    [[0, 3, 6, 9, 12, 15, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z],
     [Z, Z, Z, Z, Z, Z, 2, 5, 8, 11, 14, Z, Z, Z, Z, Z],
     [Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 1, 4, 7, 10, 13]],
    [[1, 4, 7, 10, 13, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z],
     [Z, Z, Z, Z, Z, 0, 3, 6, 9, 12, 15, Z, Z, Z, Z, Z],
     [Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 2, 5, 8, 11, 14]],
    [[2, 5, 8, 11, 14, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z],
     [Z, Z, Z, Z, Z, 1, 4, 7, 10, 13, Z, Z, Z, Z, Z, Z],
     [Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 0, 3, 6, 9, 12, 15]],
];

/// One output row of a 2x shrink: `out[c][x]` = the sum of channel `c` of pixels
/// `2x, 2x + 1` of rows `r0` and `r1` (RGB bytes, `6 * w` each), times `scale`. The sums
/// are exact integers, so every path gives the same values. With AVX2, eight outputs a
/// step: byte shuffles sort 16 pixels of a row by channel, `pmaddubsw` adds pixel
/// pairs, and the two rows' pair sums are added, converted and scaled.
fn shrink2_row(r0: &[u8], r1: &[u8], scale: f32, out: [&mut [MaybeUninit<f32>]; 3]) {
    let w = out[0].len();
    assert!(r0.len() >= 6 * w && r1.len() >= 6 * w && out.iter().all(|o| o.len() == w));
    let [pr, pg, pb] = out;
    let mut x = 0;
    #[cfg(target_arch = "x86_64")]
    if w >= 8 && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2 (checked at run time); lengths checked above.
        x = unsafe { shrink2_avx2(r0, r1, scale, [&mut *pr, &mut *pg, &mut *pb]) };
    }
    for x in x..w {
        let px = |c: usize| {
            let i = 6 * x + c;
            (r0[i] as u32 + r0[i + 3] as u32 + r1[i] as u32 + r1[i + 3] as u32) as f32 * scale
        };
        pr[x].write(px(0));
        pg[x].write(px(1));
        pb[x].write(px(2));
    }
}

/// [`shrink2_row`]'s outputs `0..8 * (w / 8)`; returns how many it wrote.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn shrink2_avx2(r0: &[u8], r1: &[u8], scale: f32, out: [&mut [MaybeUninit<f32>]; 3]) -> usize {
    use std::arch::x86_64::*;
    let w = out[0].len();
    let steps = w / 8;
    // SAFETY: the masks are 16 bytes each; every load reads 16 bytes inside the first
    // 48 * steps <= 6 * w bytes of a row, every store writes 8 values inside `out[c]`
    // (8 * steps <= w).
    unsafe {
        let m: [[__m128i; 3]; 3] =
            CHANNELS.map(|c| c.map(|t| _mm_loadu_si128(t.as_ptr() as *const __m128i)));
        let ones = _mm_set1_epi8(1);
        let sc = _mm256_set1_ps(scale);
        // The 8 pixel-pair sums of channel `c` of 16 pixels at `p`.
        let pairs = |p: *const u8, c: usize| {
            let a = _mm_loadu_si128(p as *const __m128i);
            let b = _mm_loadu_si128(p.add(16) as *const __m128i);
            let d = _mm_loadu_si128(p.add(32) as *const __m128i);
            let v = _mm_or_si128(
                _mm_or_si128(_mm_shuffle_epi8(a, m[c][0]), _mm_shuffle_epi8(b, m[c][1])),
                _mm_shuffle_epi8(d, m[c][2]),
            );
            _mm_maddubs_epi16(v, ones)
        };
        for s in 0..steps {
            let (p0, p1) = (r0.as_ptr().add(48 * s), r1.as_ptr().add(48 * s));
            for (c, o) in out.iter().enumerate() {
                let sum = _mm_add_epi16(pairs(p0, c), pairs(p1, c));
                let f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(sum)), sc);
                _mm256_storeu_ps(o.as_ptr().add(8 * s) as *mut f32, f);
            }
        }
    }
    steps * 8
}

/// `v / 255` for a byte `v`, correctly rounded as the division is, without a division:
/// the product with the rounded reciprocal, corrected by its exact residual (one fused
/// multiply-add each). Equal to `v as f32 / 255.0` for every byte (tested).
#[inline(always)]
fn div255(v: u8) -> f32 {
    const R: f32 = 1.0 / 255.0;
    let x = v as f32;
    let q = x * R;
    (-q).mul_add(255.0, x).mul_add(R, q)
}

/// [`Planes::write_rgb8_boxed`]; `VECTOR`: with the AVX2 row conversion (the caller
/// checked that the CPU supports AVX2 and FMA).
#[inline(always)]
fn boxed<const VECTOR: bool>(
    img: &Rgb8,
    k: usize,
    hq: &mut [MaybeUninit<f32>],
    lq: &mut [MaybeUninit<f32>],
    streamed: bool,
) {
    let (h, w) = (img.height, img.width);
    let (n, lw) = (h * w, w / k);
    let ln = (h / k) * lw;
    let scale = 1.0 / (k * k) as f32;
    // The column sums of the current band of `k` rows, per channel.
    let mut acc = vec![0f32; 3 * w];
    let (hr, rest) = hq.split_at_mut(n);
    let (hg, hb) = rest.split_at_mut(n);
    for (y, src) in img.data.chunks_exact(3 * w).enumerate() {
        let row = y * w..(y + 1) * w;
        let (or, og, ob) = (&mut hr[row.clone()], &mut hg[row.clone()], &mut hb[row]);
        let (ar, rest) = acc.split_at_mut(w);
        let (ag, ab) = rest.split_at_mut(w);
        // The band's rows added in order, as box_plane adds them.
        let first = y % k == 0;
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the caller checked AVX2 and FMA when VECTOR is set.
        let done = if VECTOR {
            unsafe {
                row_avx2(
                    src,
                    [&mut *or, &mut *og, &mut *ob],
                    [&mut *ar, &mut *ag, &mut *ab],
                    first,
                    streamed,
                )
            }
        } else {
            0
        };
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        row_scalar(src, done, [or, og, ob], [ar, ag, ab], first);
        if y % k == k - 1 {
            let at = (y / k) * lw;
            for (c, sums) in acc.chunks_exact(w).enumerate() {
                let out = &mut lq[c * ln + at..][..lw];
                match k {
                    2 => {
                        for (o, p) in out.iter_mut().zip(sums.chunks_exact(2)) {
                            o.write((p[0] + p[1]) * scale);
                        }
                    }
                    4 => {
                        for (o, p) in out.iter_mut().zip(sums.chunks_exact(4)) {
                            o.write((((p[0] + p[1]) + p[2]) + p[3]) * scale);
                        }
                    }
                    _ => {
                        for (o, p) in out.iter_mut().zip(sums.chunks_exact(k)) {
                            o.write(p.iter().sum::<f32>() * scale);
                        }
                    }
                }
            }
        }
    }
    if streamed {
        stream_fence();
    }
}

/// Converts pixels `from..` of one RGB row into the three rows `out` and adds them
/// into the column sums `acc` (or, for a band's `first` row, sets the sums to them).
#[inline(always)]
fn row_scalar(
    src: &[u8],
    from: usize,
    out: [&mut [MaybeUninit<f32>]; 3],
    acc: [&mut [f32]; 3],
    first: bool,
) {
    for (c, (o, a)) in out.into_iter().zip(acc).enumerate() {
        for ((o, a), px) in o[from..]
            .iter_mut()
            .zip(&mut a[from..])
            .zip(src[3 * from..].chunks_exact(3))
        {
            let v = div255(px[c]);
            o.write(v);
            *a = if first { v } else { *a + v };
        }
    }
}

/// [`row_scalar`] for the first `16 * (w / 16)` pixels, sixteen a step: the channel's
/// bytes gathered with three shuffles (as [`shrink2_avx2`]), widened, converted and
/// divided by 255 as [`div255`] does, then stored to `out` (non-temporal when
/// `streamed` and the rows are 32-byte aligned) and to the sums. Returns the pixels
/// done.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn row_avx2(
    src: &[u8],
    out: [&mut [MaybeUninit<f32>]; 3],
    acc: [&mut [f32]; 3],
    first: bool,
    streamed: bool,
) -> usize {
    use std::arch::x86_64::*;
    let w = out[0].len();
    assert!(
        src.len() >= 3 * w && out.iter().all(|o| o.len() == w) && acc.iter().all(|a| a.len() >= w)
    );
    let steps = w / 16;
    let stream = streamed && out.iter().all(|o| o.as_ptr().align_offset(32) == 0);
    // SAFETY: the masks are 16 bytes each; every load reads 16 bytes inside the first
    // 48 * steps <= 3 * w bytes of the row, every store writes 8 values inside `out[c]`
    // or `acc[c]` (16 * steps <= w); with `stream`, the rows start 32-byte aligned, so
    // every 8-value store at a multiple of 8 is aligned.
    unsafe {
        let m: [[__m128i; 3]; 3] =
            CHANNELS.map(|c| c.map(|t| _mm_loadu_si128(t.as_ptr() as *const __m128i)));
        let recip = _mm256_set1_ps(1.0 / 255.0);
        let full = _mm256_set1_ps(255.0);
        for s in 0..steps {
            let p = src.as_ptr().add(48 * s);
            let a = _mm_loadu_si128(p as *const __m128i);
            let b = _mm_loadu_si128(p.add(16) as *const __m128i);
            let d = _mm_loadu_si128(p.add(32) as *const __m128i);
            for c in 0..3 {
                let bytes = _mm_or_si128(
                    _mm_or_si128(_mm_shuffle_epi8(a, m[c][0]), _mm_shuffle_epi8(b, m[c][1])),
                    _mm_shuffle_epi8(d, m[c][2]),
                );
                for half in 0..2 {
                    let ints = _mm256_cvtepu8_epi32(if half == 0 {
                        bytes
                    } else {
                        _mm_srli_si128(bytes, 8)
                    });
                    let x = _mm256_cvtepi32_ps(ints);
                    let q = _mm256_mul_ps(x, recip);
                    let v = _mm256_fmadd_ps(_mm256_fnmadd_ps(q, full, x), recip, q);
                    let at = 16 * s + 8 * half;
                    let o = out[c].as_ptr().add(at) as *mut f32;
                    if stream {
                        _mm256_stream_ps(o, v);
                    } else {
                        _mm256_storeu_ps(o, v);
                    }
                    let ap = acc[c].as_ptr().add(at) as *mut f32;
                    let sum = if first {
                        v
                    } else {
                        _mm256_add_ps(_mm256_loadu_ps(ap), v)
                    };
                    _mm256_storeu_ps(ap, sum);
                }
            }
        }
    }
    16 * steps
}

/// Copies `src` into `out` with non-temporal stores where AVX is available (on whole
/// 32-byte aligned vectors; plain stores for the ends): for outputs this thread will
/// not read again, which are then not read into the cache before being written, and
/// leave the cache to the data that is. Callers order them for other threads or
/// processes with [`stream_fence`].
pub(crate) fn stream_into(out: &mut [MaybeUninit<f32>], src: &[f32]) {
    assert_eq!(out.len(), src.len(), "slot size");
    #[cfg(target_arch = "x86_64")]
    if out.len() >= 64 && std::arch::is_x86_feature_detected!("avx") {
        use std::arch::x86_64::*;
        // Up to the first 32-byte aligned output value, then whole vectors, then the rest.
        let head = out.as_ptr().align_offset(32).min(out.len());
        copy_into(&mut out[..head], &src[..head]);
        let body = (out.len() - head) / 8 * 8;
        #[target_feature(enable = "avx")]
        fn stream(out: &mut [MaybeUninit<f32>], src: &[f32]) {
            for (o, s) in out.chunks_exact_mut(8).zip(src.chunks_exact(8)) {
                // SAFETY: 8 values each side; `o` is 32-byte aligned (the chunks start
                // at an aligned value and are 32 bytes long).
                unsafe {
                    let v = _mm256_loadu_ps(s.as_ptr());
                    _mm256_stream_ps(o.as_mut_ptr() as *mut f32, v);
                }
            }
        }
        // SAFETY: the CPU supports AVX (checked at run time).
        unsafe { stream(&mut out[head..head + body], &src[head..head + body]) };
        copy_into(&mut out[head + body..], &src[head + body..]);
        return;
    }
    copy_into(out, src)
}

/// Orders this thread's [`stream_into`] stores before its later stores (e.g. a flag
/// another process reads).
pub(crate) fn stream_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE is part of the x86-64 baseline.
    unsafe {
        std::arch::x86_64::_mm_sfence()
    };
}

pub(crate) fn copy_into<T: Copy>(out: &mut [MaybeUninit<T>], src: &[T]) {
    assert_eq!(out.len(), src.len(), "slot size");
    for (o, &v) in out.iter_mut().zip(src) {
        o.write(v);
    }
}

/// RGB bytes to three planes of `value / 255`: a plain loop over pixels (the
/// vectoriser turns the stride-3 reads into shuffles).
#[inline(always)]
fn deinterleave(
    src: &[u8],
    r: &mut [MaybeUninit<f32>],
    g: &mut [MaybeUninit<f32>],
    b: &mut [MaybeUninit<f32>],
) {
    for (((px, r), g), b) in src
        .chunks_exact(3)
        .zip(r.iter_mut())
        .zip(g.iter_mut())
        .zip(b.iter_mut())
    {
        r.write(px[0] as f32 / 255.0);
        g.write(px[1] as f32 / 255.0);
        b.write(px[2] as f32 / 255.0);
    }
}

/// Block means of `k x k` blocks (OpenCV's `INTER_AREA` for an integer factor on a
/// float image: the block sum times `1 / k^2`). Compiled for the baseline target and
/// for AVX2 (picked at run time); the same additions in the same order in both.
fn box_plane(src: &[f32], src_w: usize, k: usize, dst_w: usize, dst_h: usize) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(src: &[f32], src_w: usize, k: usize, dst_w: usize, dst_h: usize) -> Vec<f32> {
            box_plane_generic(src, src_w, k, dst_w, dst_h)
        }
        // SAFETY: the CPU supports AVX2 (checked at run time).
        return unsafe { avx2(src, src_w, k, dst_w, dst_h) };
    }
    box_plane_generic(src, src_w, k, dst_w, dst_h)
}

#[inline(always)]
fn box_plane_generic(src: &[f32], src_w: usize, k: usize, dst_w: usize, dst_h: usize) -> Vec<f32> {
    let scale = 1.0 / (k * k) as f32;
    let mut out = vec![0f32; dst_w * dst_h];
    if out.is_empty() {
        return out;
    }
    let mut acc = vec![0f32; src_w];
    for (dy, row) in out.chunks_exact_mut(dst_w).enumerate() {
        acc.copy_from_slice(&src[dy * k * src_w..(dy * k + 1) * src_w]);
        for sy in dy * k + 1..(dy + 1) * k {
            for (a, &v) in acc.iter_mut().zip(&src[sy * src_w..(sy + 1) * src_w]) {
                *a += v;
            }
        }
        if k == 2 {
            // The pair sums in a form the vectoriser takes (the same values as the sum
            // below: adding to 0.0 first changes no non-zero value).
            for (o, p) in row.iter_mut().zip(acc.chunks_exact(2)) {
                *o = (p[0] + p[1]) * scale;
            }
        } else {
            for (o, b) in row.iter_mut().zip(acc.chunks_exact(k)) {
                *o = b.iter().sum::<f32>() * scale;
            }
        }
    }
    out
}

/// Area resize of one float plane (`src_w x src_h` -> `dst_w x dst_h`): pixel-area
/// weights when shrinking (exact box means for integer factors), and OpenCV's linear
/// interpolation with area coefficients when enlarging on any axis, as `INTER_AREA`.
pub fn resize_plane(
    src: &[f32],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
) -> Vec<f32> {
    assert_eq!(src.len(), src_w * src_h, "plane size");
    if (dst_w, dst_h) == (src_w, src_h) {
        return src.to_vec();
    }
    if dst_w > src_w || dst_h > src_h {
        return resample_plane(src, src_w, src_h, dst_w, dst_h, Filter::AreaUp);
    }
    if src_w.is_multiple_of(dst_w) && src_h.is_multiple_of(dst_h) && src_w / dst_w == src_h / dst_h
    {
        return box_plane(src, src_w, src_w / dst_w, dst_w, dst_h);
    }
    let xt = Taps::new(src_w, dst_w);
    let yt = Taps::new(src_h, dst_h);
    let mut out = vec![0f32; dst_w * dst_h];
    let mut acc = vec![0f32; src_w];
    for (dy, out_row) in out.chunks_exact_mut(dst_w).enumerate() {
        acc.fill(0.0);
        let (sy0, wy) = yt.of(dy);
        for (i, &wgt) in wy.iter().enumerate() {
            let row = &src[(sy0 + i) * src_w..(sy0 + i + 1) * src_w];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v * wgt;
            }
        }
        for (dx, o) in out_row.iter_mut().enumerate() {
            let (sx0, wx) = xt.of(dx);
            *o = acc[sx0..sx0 + wx.len()]
                .iter()
                .zip(wx)
                .map(|(v, w)| v * w)
                .sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_shrink_is_the_block_mean() {
        let src: Vec<f32> = (0..36).map(|v| v as f32).collect();
        let out = resize_plane(&src, 6, 6, 3, 3);
        let mean = |r: usize, c: usize| {
            (src[r * 6 + c] + src[r * 6 + c + 1] + src[(r + 1) * 6 + c] + src[(r + 1) * 6 + c + 1])
                / 4.0
        };
        for (i, v) in out.iter().enumerate() {
            let (r, c) = (i / 3 * 2, i % 3 * 2);
            assert!((v - mean(r, c)).abs() < 1e-5);
        }
    }

    #[test]
    fn fractional_shrink_weights_partial_pixels() {
        let out = resize_plane(&[0.0, 0.3, 0.6], 3, 1, 2, 1);
        assert!(
            (out[0] - 0.1).abs() < 1e-6 && (out[1] - 0.5).abs() < 1e-6,
            "{out:?}"
        );
    }

    #[test]
    fn halving_bytes_gives_the_exact_block_means() {
        // Output widths below, at and past the 8-wide step, a crop of the top-left, and
        // bytes up to 255 (pair sums past a signed byte).
        for (h, w, src_h, src_w) in [(1, 1, 2, 2), (3, 7, 7, 15), (2, 8, 4, 16), (4, 21, 9, 43)] {
            let data: Vec<u8> = (0..src_h * src_w * 3)
                .map(|i| ((i * 2_654_435_761usize) >> 7) as u8)
                .collect();
            let img = Rgb8::new(src_w, src_h, data.clone());
            let mut out = vec![MaybeUninit::new(f32::NAN); 3 * h * w];
            Planes::write_rgb8_shrunk(&img, 2, h, w, &mut out);
            let scale = 1.0 / (255.0 * 4.0f32);
            for c in 0..3 {
                for y in 0..h {
                    for x in 0..w {
                        let at = |yy: usize, xx: usize| data[(yy * src_w + xx) * 3 + c] as u32;
                        let sum = at(2 * y, 2 * x)
                            + at(2 * y, 2 * x + 1)
                            + at(2 * y + 1, 2 * x)
                            + at(2 * y + 1, 2 * x + 1);
                        // SAFETY: initialised above.
                        let got = unsafe { out[(c * h + y) * w + x].assume_init() };
                        assert_eq!(got, sum as f32 * scale, "{h}x{w} c{c} y{y} x{x}");
                    }
                }
            }
        }
    }

    #[test]
    fn streamed_copies_equal_their_source_at_every_alignment() {
        let src: Vec<f32> = (0..5000).map(|i| i as f32 * 0.5).collect();
        let mut buf = vec![MaybeUninit::new(-1f32); 5100];
        for start in 0..9 {
            for len in [0, 7, 63, 64, 65, 71, 72, 4096, 5000] {
                for v in buf.iter_mut() {
                    v.write(-1.0);
                }
                stream_into(&mut buf[start..start + len], &src[..len]);
                stream_fence();
                // SAFETY: every element was written above.
                let got: Vec<f32> = buf.iter().map(|v| unsafe { v.assume_init() }).collect();
                assert_eq!(&got[start..start + len], &src[..len], "{start}+{len}");
                assert!(got[..start].iter().all(|&v| v == -1.0));
                assert!(got[start + len..].iter().all(|&v| v == -1.0));
            }
        }
    }

    #[test]
    fn division_by_255_without_dividing_is_exact_for_every_byte() {
        for v in 0..=255u8 {
            assert_eq!(div255(v).to_bits(), (v as f32 / 255.0).to_bits(), "{v}");
        }
    }

    #[test]
    fn converting_and_box_shrinking_in_one_pass_equals_the_two_passes() {
        let bits = |s: &[MaybeUninit<f32>]| -> Vec<u32> {
            // SAFETY: every value is written before this is called.
            s.iter()
                .map(|v| unsafe { v.assume_init() }.to_bits())
                .collect()
        };
        // Block sizes 1 to 5 (2 and 4 have their own sums), sides below, at and past a
        // 16-pixel vector step, rows and columns of different lengths, bytes over the
        // whole range.
        for (k, h, w) in [
            (1, 3, 5),
            (2, 2, 2),
            (2, 6, 34),
            (3, 9, 12),
            (4, 8, 8),
            (4, 32, 68),
            (4, 256, 256),
            (5, 10, 15),
        ] {
            let data: Vec<u8> = (0..h * w * 3)
                .map(|i| ((i * 2_654_435_761usize) >> 9) as u8)
                .collect();
            let img = Rgb8::new(w, h, data);
            let planes = Planes::from_rgb8(&img);
            let (lh, lw) = (h / k, w / k);
            let want_hq: Vec<u32> = planes.data.iter().map(|v| v.to_bits()).collect();
            let want_lq: Vec<u32> = (planes.resized(lh, lw).data.iter())
                .map(|v| v.to_bits())
                .collect();
            // Plain stores; non-temporal ones into rows 32-byte aligned (when the width
            // keeps them so) and misaligned; the scalar rows alone.
            for (how, at) in [
                ("plain", None),
                ("aligned", Some(0)),
                ("misaligned", Some(1)),
            ] {
                let mut buf = vec![MaybeUninit::new(f32::NAN); 3 * h * w + 16];
                let mut lq = vec![MaybeUninit::new(f32::NAN); 3 * lh * lw];
                let start = buf.as_ptr().align_offset(32) + at.unwrap_or(0);
                let hq = &mut buf[start..start + 3 * h * w];
                Planes::write_rgb8_boxed(&img, k, hq, &mut lq, at.is_some());
                assert_eq!(bits(hq), want_hq, "{how} hq {k} {h}x{w}");
                assert_eq!(bits(&lq), want_lq, "{how} lq {k} {h}x{w}");
            }
            let mut hq = vec![MaybeUninit::new(f32::NAN); 3 * h * w];
            let mut lq = vec![MaybeUninit::new(f32::NAN); 3 * lh * lw];
            boxed::<false>(&img, k, &mut hq, &mut lq, false);
            assert_eq!(bits(&hq), want_hq, "scalar hq {k} {h}x{w}");
            assert_eq!(bits(&lq), want_lq, "scalar lq {k} {h}x{w}");
        }
    }

    #[test]
    fn crop_keeps_the_top_left() {
        let p = Planes {
            c: 1,
            h: 3,
            w: 3,
            data: (0..9).map(|v| v as f32).collect(),
        };
        assert_eq!(p.cropped(2, 2).data, vec![0.0, 1.0, 3.0, 4.0]);
    }
}
