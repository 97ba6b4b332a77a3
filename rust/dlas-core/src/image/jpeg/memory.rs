//! Where libjpeg-turbo's memory comes from: the allocator this program uses.
//!
//! `csrc/jmem_rust.c` replaces libjpeg's system-dependent memory functions (malloc and
//! free in libjpeg-turbo's own build) with the two below. A progressive photo's
//! decoder holds the coefficients of the whole image (about 6 bytes a pixel for 4:4:4
//! colour): through glibc each such block is mapped on allocation and unmapped when
//! freed, so every progressive photo had its tens of megabytes faulted in and zeroed
//! by the kernel anew. The Python extension's allocator (mimalloc) keeps freed blocks
//! for the next photo.

use std::alloc::{alloc, dealloc, Layout};
use std::ffi::c_void;

/// The alignment malloc gives on 64-bit targets, which libjpeg's pool headers assume.
const ALIGN: usize = 16;
/// Room before each block for its size, so that freeing never depends on the size
/// libjpeg passes back (it passes the same one today).
const HEADER: usize = ALIGN;

extern "C" {
    fn dlas_jpeg_memory_linked() -> i32;
}

/// A reference the linker must resolve, so that `csrc/jmem_rust.c` is always linked,
/// ahead of libjpeg-turbo's library (and its malloc-based version of these functions).
#[used]
static LINKED: unsafe extern "C" fn() -> i32 = dlas_jpeg_memory_linked;

#[cfg(test)]
thread_local! {
    /// Bytes handed to libjpeg on this thread, for the tests.
    pub(crate) static OBTAINED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// `size` bytes for libjpeg, aligned as malloc aligns; null when out of memory (libjpeg
/// then fails with its own "insufficient memory" error).
#[no_mangle]
extern "C" fn dlas_jpeg_alloc(size: usize) -> *mut c_void {
    let Some(layout) = size
        .checked_add(HEADER)
        .and_then(|total| Layout::from_size_align(total, ALIGN).ok())
    else {
        return std::ptr::null_mut();
    };
    #[cfg(test)]
    OBTAINED.with(|n| n.set(n.get() + size));
    // SAFETY: the layout's size is at least HEADER > 0.
    let base = unsafe { alloc(layout) };
    if base.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the block holds HEADER bytes (aligned for usize) before the caller's.
    unsafe {
        base.cast::<usize>().write(layout.size());
        base.add(HEADER).cast()
    }
}

/// Frees a block from [`dlas_jpeg_alloc`].
#[no_mangle]
extern "C" fn dlas_jpeg_free(ptr: *mut c_void, _size: usize) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: `ptr` came from dlas_jpeg_alloc: HEADER bytes before it hold the size of
    // the block allocated with alignment ALIGN.
    unsafe {
        let base = ptr.cast::<u8>().sub(HEADER);
        let total = base.cast::<usize>().read();
        dealloc(base, Layout::from_size_align_unchecked(total, ALIGN));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_and_writable_then_freed() {
        for size in [1usize, 15, 16, 4096, 3 << 20] {
            let p = dlas_jpeg_alloc(size);
            assert!(!p.is_null());
            assert_eq!(p as usize % ALIGN, 0);
            // SAFETY: the block holds `size` bytes.
            unsafe { std::ptr::write_bytes(p.cast::<u8>(), 0xAB, size) };
            dlas_jpeg_free(p, size);
        }
        dlas_jpeg_free(std::ptr::null_mut(), 0);
        assert!(
            dlas_jpeg_alloc(usize::MAX - 4).is_null(),
            "an impossible size is refused"
        );
    }
}
