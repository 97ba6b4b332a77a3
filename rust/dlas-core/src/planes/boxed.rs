//! 8-bit RGB to float planes and their `k x k` block means in one pass over the
//! image, for the loaders' HQ and LQ outputs.

use std::mem::MaybeUninit;

use super::convert::div255;
#[cfg(target_arch = "x86_64")]
use super::convert::CHANNELS;
use super::stream::stream_fence;
use super::Planes;
use crate::image::Rgb8;

impl Planes {
    /// Writes `img` as RGB planes in `[0, 1]` into `hq` (as [`Planes::write_rgb8`]) and
    /// their `k x k` block means into `lq` (`3 * (h / k) * (w / k)` values), with the
    /// same values as [`resize_plane`] gives from those planes, in one pass over the
    /// image: each row is converted once, stored to `hq` and added into per-column
    /// sums, so the HQ planes are never read back. `k` must divide both sides.
    /// `streamed`: `hq` is an output this thread will not read again, written with
    /// non-temporal stores where its rows are aligned for them (as [`stream_into`],
    /// fenced before returning).
    ///
    /// [`resize_plane`]: super::resize_plane
    /// [`stream_into`]: super::stream_into
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
        if crate::cpu::features().avx2_fma {
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
///
/// [`shrink2_avx2`]: super::shrink
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
