//! libjpeg-turbo's own AVX2 routines, called directly on the coefficients our Huffman
//! decoder gives: the accurate integer inverse DCT, the "fancy" chroma upsampling and
//! the YCbCr -> RGB conversion its decoder runs on this CPU. They are internal
//! functions of the static library the `turbojpeg` crate builds, not part of its
//! public API (the vendored version is pinned in Cargo.lock; a release without them
//! fails to link). The pixels are therefore libjpeg-turbo's by construction once the
//! coefficients are. The caller checks AVX2 first.

/// 64 coefficients or quantisation steps (natural order) as libjpeg-turbo's SIMD
/// transform reads them: 16-bit, 16-byte aligned (it loads some with `movdqa`).
#[repr(C, align(32))]
pub(super) struct Coefs(pub(super) [i16; 64]);

extern "C" {
    /// libjpeg-turbo's AVX2 accurate inverse DCT (simd/x86_64/jidctint-avx2.asm),
    /// the transform its decoder runs on this CPU: linked from the same static
    /// library the `turbojpeg` crate builds, not part of its public API (the
    /// vendored version is pinned in Cargo.lock; a release without it fails to link).
    /// Writes 8 samples at `output_col` of each of the 8 rows `output_buf` points to.
    fn jsimd_idct_islow_avx2(
        dct_table: *const i16,
        coef_block: *const i16,
        output_buf: *const *mut u8,
        output_col: u32,
    );
}

extern "C" {
    /// libjpeg-turbo's AVX2 "fancy" 2x2 chroma upsampling (jdsample-avx2.asm): row
    /// `input_data[0]` with its neighbours `input_data[-1]` and `input_data[1]` into
    /// the two rows `(*output_data_ptr)[0..2]`. It reads and writes whole 32-sample
    /// blocks and stores one sample past `downsampled_width` in each input row.
    fn jsimd_h2v2_fancy_upsample_avx2(
        max_v_samp_factor: i32,
        downsampled_width: u32,
        input_data: *const *mut u8,
        output_data_ptr: *const *const *mut u8,
    );
    /// libjpeg-turbo's AVX2 "fancy" 2x1 chroma upsampling (jdsample-avx2.asm): each of
    /// the `max_v_samp_factor` rows `input_data[i]` into the full-width row
    /// `(*output_data_ptr)[i]`, whole 32-sample blocks, one sample stored past
    /// `downsampled_width` in each input row.
    fn jsimd_h2v1_fancy_upsample_avx2(
        max_v_samp_factor: i32,
        downsampled_width: u32,
        input_data: *const *mut u8,
        output_data_ptr: *const *const *mut u8,
    );
    /// libjpeg-turbo's AVX2 YCbCr -> RGB conversion (jdcolext-avx2.asm): row
    /// `input_row` of the three component row arrays into `num_rows` RGB rows. It
    /// reads whole 32-sample blocks and writes exactly `out_width` pixels.
    fn jsimd_ycc_extrgb_convert_avx2(
        out_width: u32,
        input_buf: *const *const *mut u8,
        input_row: u32,
        output_buf: *const *mut u8,
        num_rows: i32,
    );
}

/// One block's samples into `out` (8 rows `stride` apart), by libjpeg-turbo's own
/// transform: the same samples for any coefficients.
#[inline(always)]
fn idct(coef: &Coefs, steps: &Coefs, out: &mut [u8], stride: usize) {
    assert!(out.len() >= 7 * stride + 8, "block outside its plane");
    let base = out.as_mut_ptr();
    // SAFETY: each row pointer is inside `out` with 8 bytes after it (asserted).
    let rows: [*mut u8; 8] = std::array::from_fn(|i| unsafe { base.add(i * stride) });
    // SAFETY: AVX2 was checked before decoding; both tables are 64 aligned i16s; the
    // transform writes 8 bytes at each row pointer (column 0) and nothing else.
    unsafe { jsimd_idct_islow_avx2(steps.0.as_ptr(), coef.0.as_ptr(), rows.as_ptr(), 0) };
}

/// The one sample libjpeg-turbo's AVX2 transform gives a block whose only non-zero
/// coefficient is its DC term, `coef` times `step`: dequantised and scaled in 16-bit
/// arithmetic (wrapping, as its `pmullw` and `psllw` do), descaled, clamped to the
/// signed byte range and centred. Equal to the transform's output for every 16-bit
/// product (tested exhaustively), so such blocks (flat areas: many chroma blocks) are
/// filled without running it.
#[inline(always)]
fn dc_sample(coef: i16, step: i16) -> u8 {
    let scaled = coef.wrapping_mul(step).wrapping_shl(2) as i32;
    (((scaled + 16) >> 5).clamp(-128, 127) + 128) as u8
}

/// One block of `dc_sample` into `out` (8 rows `stride` apart).
#[inline(always)]
fn fill_block(v: u8, out: &mut [u8], stride: usize) {
    for row in out.chunks_mut(stride).take(8) {
        row[..8].fill(v);
    }
}

/// One block's samples: the transform's, or its flat block when no AC coefficient
/// was stored (`ac` false).
#[inline(always)]
pub(super) fn samples(ac: bool, coef: &Coefs, steps: &Coefs, out: &mut [u8], stride: usize) {
    if ac {
        idct(coef, steps, out, stride);
    } else {
        assert!(out.len() >= 7 * stride + 8, "block outside its plane");
        fill_block(dc_sample(coef.0[0], steps.0[0]), out, stride);
    }
}

/// libjpeg-turbo's output stage on the decoded planes, with its own AVX2 routines:
/// each chroma row upsampled into two full-width rows (its neighbours above and
/// below repeated at the top and bottom edges, as libjpeg's context rows do), then
/// converted with its luma rows to packed RGB.
pub(super) fn colour(
    y: &mut [u8],
    ys: usize,
    chroma: [&mut Vec<u8>; 2],
    cs: usize,
    (w, h): (usize, usize),
    (cw, ch): (usize, usize),
) -> Vec<u8> {
    let up_len = 2 * cs + 64;
    // Two upsampled rows per chroma component.
    let mut up = vec![0u8; 4 * up_len];
    let mut rgb: Vec<u8> = Vec::with_capacity(w * h * 3 + 64);
    let [cb, cr] = chroma;
    let (cb, cr) = (cb.as_mut_ptr(), cr.as_mut_ptr());
    let upp = up.as_mut_ptr();
    let out = rgb.as_mut_ptr();
    for r in 0..ch {
        let near = [r.saturating_sub(1), r, (r + 1).min(ch - 1)];
        // SAFETY: all pointers are rows inside their buffers: chroma rows `cs` bytes
        // apart with at least 32 bytes past the 32-rounded chroma width (the
        // upsampler's blocks and its extra sample); upsampled rows `up_len` apart,
        // room for 2 x that width plus a block; luma rows `ys` apart with 32 bytes
        // past the MCUs; RGB rows `3 w` apart in a buffer of `3 w h` bytes (plus a
        // block), each written whole by the conversion before `set_len`.
        unsafe {
            for (k, plane) in [cb, cr].into_iter().enumerate() {
                let rows = near.map(|i| plane.add(i * cs));
                let outs = [upp.add(2 * k * up_len), upp.add((2 * k + 1) * up_len)];
                jsimd_h2v2_fancy_upsample_avx2(2, cw as u32, rows.as_ptr().add(1), &outs.as_ptr());
            }
            let lines = (h - 2 * r).min(2);
            let luma = [
                y.as_mut_ptr().add(2 * r * ys),
                y.as_mut_ptr().add((2 * r + 1).min(h - 1) * ys),
            ];
            let cbs = [upp, upp.add(up_len)];
            let crs = [upp.add(2 * up_len), upp.add(3 * up_len)];
            let image = [luma.as_ptr(), cbs.as_ptr(), crs.as_ptr()];
            let rows = [
                out.add(2 * r * w * 3),
                out.add((2 * r + 1).min(h - 1) * w * 3),
            ];
            jsimd_ycc_extrgb_convert_avx2(w as u32, image.as_ptr(), 0, rows.as_ptr(), lines as i32);
        }
    }
    // SAFETY: the conversion wrote all `w` pixels of every one of the `h` rows.
    unsafe { rgb.set_len(w * h * 3) };
    rgb
}

/// A packed RGB buffer of `h` rows of `w` pixels, every byte written by `fill` (given
/// its start; the buffer has a block of room past its end for whole-block writes).
///
/// # Safety
/// `fill` must write all `3 w h` bytes.
unsafe fn rgb_image(w: usize, h: usize, fill: impl FnOnce(*mut u8)) -> Vec<u8> {
    let mut rgb: Vec<u8> = Vec::with_capacity(w * h * 3 + 64);
    fill(rgb.as_mut_ptr());
    // SAFETY: the caller's `fill` wrote all `3 w h` bytes.
    unsafe { rgb.set_len(w * h * 3) };
    rgb
}

/// One row of full-width luma and chroma samples converted into `w` RGB pixels at
/// `out`.
///
/// # Safety
/// Each sample row must hold the width rounded up to 32 (the conversion reads whole
/// blocks); `out` must have room for `3 w` bytes.
unsafe fn convert_row(w: usize, luma: *mut u8, cb: *mut u8, cr: *mut u8, out: *mut u8) {
    let (luma, cbs, crs) = ([luma], [cb], [cr]);
    let image = [luma.as_ptr(), cbs.as_ptr(), crs.as_ptr()];
    let rows = [out];
    // SAFETY: as the caller promises; AVX2 was checked before decoding.
    unsafe { jsimd_ycc_extrgb_convert_avx2(w as u32, image.as_ptr(), 0, rows.as_ptr(), 1) };
}

/// [`colour`] for 4:2:2: each chroma row upsampled 2x1 into one full-width row (no
/// neighbouring rows involved), then converted with its luma row.
pub(super) fn colour_h2v1(
    y: &mut [u8],
    ys: usize,
    chroma: [&mut Vec<u8>; 2],
    cs: usize,
    (w, h): (usize, usize),
    cw: usize,
) -> Vec<u8> {
    let up_len = 2 * cs + 64;
    let mut up = vec![0u8; 2 * up_len];
    let [cb, cr] = chroma;
    let (cb, cr) = (cb.as_mut_ptr(), cr.as_mut_ptr());
    let upp = up.as_mut_ptr();
    // SAFETY: every row is converted whole. Chroma rows are `cs` bytes apart with 32
    // bytes past the 32-rounded chroma width (the upsampler's blocks and its extra
    // sample), upsampled rows `up_len` apart with room for twice that width plus a
    // block, luma rows `ys` apart with 32 bytes past the MCUs, RGB rows `3 w` apart.
    unsafe {
        rgb_image(w, h, |out| {
            for r in 0..h {
                for (k, plane) in [cb, cr].into_iter().enumerate() {
                    let rows = [plane.add(r * cs)];
                    let outs = [upp.add(k * up_len)];
                    jsimd_h2v1_fancy_upsample_avx2(1, cw as u32, rows.as_ptr(), &outs.as_ptr());
                }
                let luma = y.as_mut_ptr().add(r * ys);
                convert_row(w, luma, upp, upp.add(up_len), out.add(r * w * 3));
            }
        })
    }
}

/// [`colour`] for 4:4:4: the planes are full size, converted row by row.
pub(super) fn colour_full(
    y: &mut [u8],
    ys: usize,
    chroma: [&mut Vec<u8>; 2],
    cs: usize,
    (w, h): (usize, usize),
) -> Vec<u8> {
    let [cb, cr] = chroma;
    let (cb, cr) = (cb.as_mut_ptr(), cr.as_mut_ptr());
    // SAFETY: every row is converted whole; luma rows `ys` and chroma rows `cs` bytes
    // apart, each with 32 bytes past the 32-rounded MCU width; RGB rows `3 w` apart.
    unsafe {
        rgb_image(w, h, |out| {
            for r in 0..h {
                let luma = y.as_mut_ptr().add(r * ys);
                convert_row(w, luma, cb.add(r * cs), cr.add(r * cs), out.add(r * w * 3));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// A block with only a DC term gives `dc_sample` everywhere, for every 16-bit
    /// product of coefficient and step, and the product is all that counts.
    #[test]
    fn dc_only_blocks_are_the_transforms_own_samples() {
        if !avx2() {
            return;
        }
        let transform = |coef: i16, step: i16| {
            let mut c = Coefs([0; 64]);
            c.0[0] = coef;
            let mut q = Coefs([1; 64]);
            q.0[0] = step;
            let mut out = [0u8; 64];
            idct(&c, &q, &mut out, 8);
            out
        };
        for v in i16::MIN..=i16::MAX {
            let want = transform(v, 1);
            assert!(want.iter().all(|&s| s == want[0]), "{v}: not flat");
            assert_eq!(dc_sample(v, 1), want[0], "product {v}");
        }
        let mut state = 99u32;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let (coef, step) = (state as i16, (state >> 16) as u8 as i16);
            assert_eq!(
                dc_sample(coef, step),
                transform(coef, step)[0],
                "{coef} x {step}"
            );
        }
    }
}
