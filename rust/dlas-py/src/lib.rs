//! `dlas_fast._native`: thin PyO3 wrappers over dlas-core. Arguments are converted
//! first, the core runs with the GIL released, results are converted after.

mod arrays;
mod background;
mod corrupt;
mod errors;
mod extract;
mod folder;
mod index;
mod items;
mod loader;
mod pack;
mod realesrgan;

use std::path::PathBuf;

use dlas_core::torchfile;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use errors::to_pyerr;

/// mimalloc for the extension's own allocations. The loaders allocate and free
/// megabytes per batch (decoded tiles, planes, output arrays); glibc returns such
/// blocks to the kernel (mmap, heap trimming) and the next batch faults every page in
/// again, which cost more than the resizing itself (docs/benchmarks.md, loading).
/// mimalloc keeps them for reuse. libjpeg-turbo's pools come from it too (dlas-core's
/// `image/jpeg/memory.rs`). Python's and torch's allocations are not affected.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    /// mimalloc's `mi_collect` (linked from the static library the `mimalloc` crate
    /// builds): gives the memory its heaps hold freed back to the kernel.
    fn mi_collect(force: bool);
    /// mimalloc's `mi_option_set`.
    fn mi_option_set(option: i32, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_t` (the same in mimalloc 2 and
/// 3): how long freed memory stays mapped for reuse before it goes back to the kernel.
const MI_OPTION_PURGE_DELAY: i32 = 15;
/// Milliseconds: ten times mimalloc's own delay. Extraction frees the tens of megabytes
/// a large photo took (its pixels, libjpeg's coefficients for a progressive file) and
/// takes as much again for the next photo; under the default delay much of it went
/// back to the kernel in between and came back page by page, zeroed again.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// Sets this module's allocator up: only the extension's own mimalloc is concerned
/// (statically linked, its options are its own).
fn configure_allocator() {
    // SAFETY: sets one option of this library's mimalloc; any value is valid.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
}

/// Hands back to the kernel what mimalloc holds freed. For one-off calls that free far
/// more than they keep (opening an index reads and parses a cache of many megabytes):
/// without it, a dataset's resident memory counts that peak for good.
pub(crate) fn release_freed_memory() {
    // SAFETY: no arguments to check; mimalloc collects under its own locks.
    unsafe { mi_collect(true) }
}

/// Reads a `centers.pt` (zip or legacy torch format) without running pickle code.
///
/// Returns:
///     dict mapping tile id to ((row, col), width).
#[pyfunction]
fn read_centers<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let map = py
        .detach(|| torchfile::read_centers(&path))
        .map_err(|e| to_pyerr(e.into()))?;
    let out = PyDict::new(py);
    for (id, ((r, c), w)) in map {
        let rc = PyTuple::new(py, [r, c])?;
        out.set_item(id, (rc, w))?;
    }
    Ok(out)
}

/// Writes a `centers.pt` that `torch.load(path, weights_only=True)` reads back.
///
/// Args:
///     path: file to write.
///     entries: list of (tile_id, (row, col), width).
#[pyfunction]
fn write_centers(
    py: Python<'_>,
    path: PathBuf,
    entries: Vec<(i64, (i64, i64), i64)>,
) -> PyResult<()> {
    py.detach(|| torchfile::write_centers(&path, &entries))
        .map_err(|e| to_pyerr(e.into()))
}

/// Decodes an image file (JPEG, PNG, WebP, BMP, PPM; grey expanded, alpha dropped)
/// with the GIL released.
///
/// Returns:
///     uint8 array of shape (H, W, 3), RGB.
#[pyfunction]
fn decode_image<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, numpy::PyArray3<u8>>> {
    use numpy::{PyArray1, PyArrayMethods};
    let img = py
        .detach(|| {
            dlas_core::image::decode_file(&path, &dlas_core::image::DecodeOptions::default())
        })
        .map_err(to_pyerr)?;
    let (h, w) = (img.height, img.width);
    PyArray1::from_vec(py, img.data).reshape([h, w, 3])
}

/// Decodes an image file for a resize that brings its shorter side to `min_side / 2`
/// or less: a lossy JPEG is decoded reduced (1/2, 1/4 or 1/8) while its shorter side
/// stays at least `min_side`; anything else at full size. GIL released.
///
/// Returns:
///     (uint8 array (h, W, 3) RGB, (height, width) of the full-size image).
#[pyfunction]
#[allow(clippy::type_complexity)]
fn decode_image_reduced<'py>(
    py: Python<'py>,
    path: PathBuf,
    min_side: usize,
) -> PyResult<(Bound<'py, numpy::PyArray3<u8>>, (usize, usize))> {
    use dlas_core::image::{decode_file_reduced, DecodeOptions, Region};
    use numpy::{PyArray1, PyArrayMethods};
    let (img, size) = py
        .detach(|| {
            let mut size = (0, 0);
            let part = decode_file_reduced(&path, &DecodeOptions::default(), |w, h| {
                size = (h, w);
                let k = [8, 4, 2]
                    .into_iter()
                    .find(|&k| h.min(w) >= min_side.max(1).saturating_mul(k))
                    .unwrap_or(1);
                Some((Region::full(w, h), k))
            })?;
            let part = part.expect("the whole image was asked for");
            Ok::<_, dlas_core::CoreError>((part.img, size))
        })
        .map_err(to_pyerr)?;
    let (h, w) = (img.height, img.width);
    Ok((PyArray1::from_vec(py, img.data).reshape([h, w, 3])?, size))
}

/// Antialiased bilinear resize of a uint8 (H, W, 3) RGB array to (height, width), as
/// torch's `F.interpolate(mode="bilinear", antialias=True)`, each value rounded to a
/// whole 8-bit step. GIL released.
///
/// Returns:
///     float32 array (3, height, width) of 0-255 values.
#[pyfunction]
fn resize_antialias<'py>(
    py: Python<'py>,
    pixels: numpy::PyReadonlyArray3<'py, u8>,
    height: usize,
    width: usize,
) -> PyResult<Bound<'py, numpy::PyArray3<f32>>> {
    use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
    let shape = pixels.shape().to_vec();
    if shape[2] != 3 {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "pixels: expected an (H, W, 3) array, got {shape:?}"
        )));
    }
    let data = pixels.as_slice().map_err(|_| {
        pyo3::exceptions::PyValueError::new_err("pixels: expected a C-contiguous array")
    })?;
    let view = dlas_core::image::Rgb8View {
        data,
        width: shape[1],
        height: shape[0],
        stride: 3 * shape[1],
    };
    let planes = py.detach(|| dlas_core::planes::antialias_bilinear_rgb8(view, height, width));
    PyArray1::from_vec(py, planes.data).reshape([3, height, width])
}

/// Faults in, writable, every page of `len` bytes from address `addr` in one call
/// (Linux's `MADV_POPULATE_WRITE`), with the GIL released: the loaders' fresh
/// shared-memory batches, which would otherwise take a page fault per 4 KiB as they
/// are written. Page contents are unchanged. Returns False where the call is not
/// supported (kernels before 5.14, other systems); nothing else happens then.
#[pyfunction]
fn prefault(py: Python<'_>, addr: usize, len: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        const MADV_POPULATE_WRITE: libc::c_int = 23;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
        let start = addr - addr % page;
        let len = len + (addr - start);
        py.detach(|| {
            // SAFETY: madvise only changes how the range is mapped; populating pages
            // keeps their contents, and a range that is not mapped is an error.
            unsafe { libc::madvise(start as *mut libc::c_void, len, MADV_POPULATE_WRITE) == 0 }
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (py, addr, len);
        false
    }
}

/// Panics, for the test that a Rust panic surfaces in Python as an exception rather
/// than aborting the interpreter.
#[pyfunction]
fn _panic_for_tests(py: Python<'_>) {
    // In a thread of the loaders' pool, as a panic in the loaders would be. (That pool
    // is made again in a forked DataLoader worker; rayon's global pool is not, and a
    // forked copy of it has no threads to run a join.)
    py.detach(|| {
        dlas_core::load::pool::run(2, || {
            rayon::join(|| panic!("deliberate panic (a test)"), || ())
        })
    });
}

/// The JPEG encoder: always "libjpeg-turbo" (kept for code that asks; `build_info()`
/// has its version and more).
#[pyfunction]
fn jpeg_encoder() -> &'static str {
    dlas_core::image::JPEG_ENCODER
}

/// What this build is, as a dict: `version` (the package version), `codec` (the JPEG
/// codec compiled in, e.g. "libjpeg-turbo 3.1.0"), `codec_simd` (the SIMD
/// instructions it uses on this CPU: "AVX2", "SSE2", "NEON" or "none"), `fast_paths`
/// (True when our own AVX2 code runs) and `optimisation` (the cargo profile and
/// opt-level it was compiled with, e.g. "release (opt-level 3)").
#[pyfunction]
fn build_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let info = dlas_core::build_info::build_info();
    let d = PyDict::new(py);
    d.set_item("version", info.version)?;
    d.set_item("codec", info.codec)?;
    d.set_item("codec_simd", info.codec_simd)?;
    d.set_item("fast_paths", info.fast_paths)?;
    d.set_item("optimisation", info.optimisation)?;
    Ok(d)
}

/// The native core of dlas_fast (Rust): decoding, extraction, the chunk index, batch
/// loading and the corruptor. Use it through the `dlas_fast` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    configure_allocator();
    m.add_function(wrap_pyfunction!(extract::extract, m)?)?;
    m.add_function(wrap_pyfunction!(extract::cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(extract::check_destination, m)?)?;
    m.add_function(wrap_pyfunction!(extract::cli_extract_ray_job, m)?)?;
    m.add_function(wrap_pyfunction!(extract::render_summary, m)?)?;
    m.add_function(wrap_pyfunction!(pack::pack, m)?)?;
    m.add_function(wrap_pyfunction!(read_centers, m)?)?;
    m.add_function(wrap_pyfunction!(write_centers, m)?)?;
    m.add_function(wrap_pyfunction!(jpeg_encoder, m)?)?;
    m.add_function(wrap_pyfunction!(build_info, m)?)?;
    m.add_function(wrap_pyfunction!(decode_image, m)?)?;
    m.add_function(wrap_pyfunction!(decode_image_reduced, m)?)?;
    m.add_function(wrap_pyfunction!(resize_antialias, m)?)?;
    m.add_function(wrap_pyfunction!(prefault, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    m.add_class::<index::PyChunkIndex>()?;
    m.add_class::<items::PyTileSet>()?;
    m.add_class::<items::PyFrameSet>()?;
    m.add_function(wrap_pyfunction!(items::frame_runs, m)?)?;
    m.add_class::<folder::PyImageFolderList>()?;
    m.add_class::<loader::PyLoader>()?;
    m.add_class::<loader::PyOutputSpec>()?;
    m.add_class::<corrupt::PyCorruptor>()?;
    m.add_function(wrap_pyfunction!(realesrgan::realesrgan_corruptor, m)?)?;
    m.add_function(wrap_pyfunction!(realesrgan::realesrgan_degrade, m)?)?;
    m.add_function(wrap_pyfunction!(realesrgan::realesrgan_draws, m)?)?;
    m.add_function(wrap_pyfunction!(realesrgan::realesrgan_stages, m)?)?;
    m.add_function(wrap_pyfunction!(realesrgan::realesrgan_kernel, m)?)?;
    m.add_function(wrap_pyfunction!(realesrgan::realesrgan_stage, m)?)?;
    m.add_function(wrap_pyfunction!(realesrgan::realesrgan_poisson_vals, m)?)?;
    errors::register(m)?;
    m.add("LIMITS", limits(m.py())?)?;
    Ok(())
}

/// The bounds the loaders put on sizes and counts taken from options (each refused by
/// name beyond them): `max_side`, `max_batch_items`, `max_weight`, `max_slots`,
/// `max_corruptions`, `max_blur_magnitude`.
fn limits(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("max_side", dlas_core::load::MAX_SIDE)?;
    d.set_item("max_batch_items", dlas_core::load::MAX_BATCH_ITEMS)?;
    d.set_item("max_weight", dlas_core::index::MAX_WEIGHT)?;
    d.set_item("max_slots", dlas_core::index::MAX_SLOTS)?;
    d.set_item("max_corruptions", dlas_core::corrupt::MAX_CORRUPTIONS)?;
    d.set_item(
        "max_blur_magnitude",
        dlas_core::load::full_image::MAX_BLUR_MAGNITUDE,
    )?;
    Ok(d)
}
