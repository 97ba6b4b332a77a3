//! Writing values into output slots (`MaybeUninit` memory another thread or process
//! reads), plainly or with non-temporal stores.

use std::mem::MaybeUninit;

/// Copies `src` into `out` with non-temporal stores where AVX is available (on whole
/// 32-byte aligned vectors; plain stores for the ends): for outputs this thread will
/// not read again, which are then not read into the cache before being written, and
/// leave the cache to the data that is. Callers order them for other threads or
/// processes with [`stream_fence`].
pub(crate) fn stream_into(out: &mut [MaybeUninit<f32>], src: &[f32]) {
    assert_eq!(out.len(), src.len(), "slot size");
    #[cfg(target_arch = "x86_64")]
    if out.len() >= 64 && crate::cpu::features().avx {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
