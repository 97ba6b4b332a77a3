//! Decoding any JPEG with libjpeg-turbo, as OpenCV decodes it: the whole frame or a
//! region of it (plus margins that keep chroma upsampling at its edges exact), to RGB;
//! CMYK and YCCK samples converted as OpenCV converts them; more than 8 bits per
//! sample refused.

use turbojpeg::raw;

use super::turbo::{with_decompressor, Handle};
use crate::error::Result;
use crate::image::decode::{check_pixels, decode_err};
use crate::image::{DecodeOptions, Partial, Region, Rgb8};

/// Alignment of the cropped region's left edge, and its margins. libjpeg-turbo
/// needs the left edge on an iMCU boundary (8 x the largest horizontal sampling
/// factor, at most 4), and reports some non-standard layouts (e.g. luma 2x2 with
/// chroma 2x1) under a standard name whose table MCU is narrower than the real one,
/// so the largest possible iMCU is used whatever the file says.
const ALIGN: usize = 32;

/// What libjpeg-turbo is asked to write: RGB, or CMYK (the only output it gives
/// for a CMYK or YCCK file) converted to RGB afterwards as OpenCV converts it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Output {
    Rgb,
    Cmyk,
}

impl Output {
    fn format(self) -> raw::TJPF {
        match self {
            Output::Rgb => raw::TJPF_TJPF_RGB,
            Output::Cmyk => raw::TJPF_TJPF_CMYK,
        }
    }

    fn bytes_per_pixel(self) -> usize {
        match self {
            Output::Rgb => 3,
            Output::Cmyk => 4,
        }
    }
}

/// How to decode the frame libjpeg-turbo's header says this is, or why not.
struct Layout {
    width: usize,
    height: usize,
    output: Output,
    /// libjpeg-turbo cannot crop a lossless frame: it is decoded whole.
    croppable: bool,
}

fn layout(h: &Handle) -> std::result::Result<Layout, String> {
    let get = |p| h.get(p);
    let precision = get(raw::TJPARAM_TJPARAM_PRECISION);
    if precision > 8 {
        // OpenCV reads JPEGs with libjpeg's 8-bit interface, which refuses these:
        // `cv2.imread` returns None.
        return Err(format!(
            "{precision}-bit samples are not decoded (OpenCV cannot read them either)"
        ));
    }
    let output = match get(raw::TJPARAM_TJPARAM_COLORSPACE) as raw::TJCS {
        raw::TJCS_TJCS_CMYK | raw::TJCS_TJCS_YCCK => Output::Cmyk,
        _ => Output::Rgb,
    };
    Ok(Layout {
        width: get(raw::TJPARAM_TJPARAM_JPEGWIDTH) as usize,
        height: get(raw::TJPARAM_TJPARAM_JPEGHEIGHT) as usize,
        output,
        croppable: get(raw::TJPARAM_TJPARAM_LOSSLESS) == 0,
    })
}

pub(crate) fn decode(
    bytes: &[u8],
    opts: &DecodeOptions,
    want: impl FnOnce(usize, usize) -> Option<Region>,
) -> Result<Option<Partial>> {
    decode_reduced(bytes, opts, |w, h| want(w, h).map(|r| (r, 1)))
}

/// [`decode`] where `want` also gives the largest reduction (1, 2, 4 or 8) the caller
/// accepts: a lossy frame is then decoded at 1/reduction of its size by
/// libjpeg-turbo's scaled IDCT (each output pixel is the mean of a `reduction`-sided
/// block, near enough), over the region only. A lossless frame cannot be scaled and
/// comes back whole at full size.
pub(crate) fn decode_reduced(
    bytes: &[u8],
    opts: &DecodeOptions,
    want: impl FnOnce(usize, usize) -> Option<(Region, usize)>,
) -> Result<Option<Partial>> {
    let result = with_decompressor(|h| {
        // SAFETY: the handle is live; the buffer is `bytes.len()` bytes.
        let rc = unsafe { raw::tj3DecompressHeader(h.ptr(), bytes.as_ptr(), bytes.len() as _) };
        if rc != 0 && !h.only_benign_warning() {
            return Err(h.error());
        }
        let layout = layout(h)?;
        Ok(decode_region(h, bytes, opts, &layout, want))
    });
    match result {
        Ok(done) => done,
        Err(e) => Err(decode_err(format!("JPEG: {e}"))),
    }
}

fn decode_region(
    h: &Handle,
    bytes: &[u8],
    opts: &DecodeOptions,
    layout: &Layout,
    want: impl FnOnce(usize, usize) -> Option<(Region, usize)>,
) -> Result<Option<Partial>> {
    let (fw, fh) = (layout.width, layout.height);
    check_pixels(fw as u64, fh as u64, opts)?;
    let Some((r, reduction)) = want(fw, fh) else {
        return Ok(None);
    };
    assert!(
        r.top + r.height <= fh && r.left + r.width <= fw,
        "region outside the frame"
    );
    assert!(
        matches!(reduction, 1 | 2 | 4 | 8),
        "a reduction of 1, 2, 4 or 8"
    );
    // A lossless frame has no IDCT to scale: it comes back whole, at full size.
    let reduction = if layout.croppable { reduction } else { 1 };
    // The frame and the region in the reduced frame's pixels (libjpeg-turbo rounds
    // the reduced size up).
    let (w, ht) = (fw.div_ceil(reduction), fh.div_ceil(reduction));
    let r = Region {
        top: r.top / reduction,
        left: r.left / reduction,
        height: (r.top + r.height).div_ceil(reduction) - r.top / reduction,
        width: (r.left + r.width).div_ceil(reduction) - r.left / reduction,
    };
    // The iMCU and the margins shrink with the frame.
    let align = ALIGN / reduction;
    // One pixel of margin to the left (the left edge must sit on an iMCU boundary),
    // an iMCU's worth to the right, above and below: chroma upsampling at the
    // region's edges then sees the same neighbours as in a whole-frame decode.
    let left = r.left.saturating_sub(1) / align * align;
    let right = (r.left + r.width + align).min(w);
    let top = r.top.saturating_sub(align);
    let bottom = (r.top + r.height + align).min(ht);
    let cropped = (left, top, right - left, bottom - top);
    let whole = (0, 0, w, ht);
    let mut attempts = vec![whole];
    if layout.croppable && (cropped.2, cropped.3) != (w, ht) {
        // Should cropping ever be refused for a layout we did not foresee, the whole
        // frame is decoded instead; a damaged file fails both, with the second error.
        attempts.insert(0, cropped);
    }
    let mut last_err = None;
    for (left, top, cw, ch) in attempts {
        let rect = (left, top, cw, ch);
        match decode_rect(h, bytes, (w, ht), rect, reduction, layout.output) {
            Ok(pixels) => {
                return Ok(Some(Partial {
                    img: Rgb8::new(cw, ch, pixels),
                    top,
                    left,
                    reduction,
                }))
            }
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.expect("at least one attempt"))
}

/// Decodes the `cw x ch` rectangle at `(left, top)` of the frame reduced by
/// `reduction` (`w x ht`; the whole of it when the rectangle is) into packed RGB.
fn decode_rect(
    h: &Handle,
    bytes: &[u8],
    (w, ht): (usize, usize),
    (left, top, cw, ch): (usize, usize, usize, usize),
    reduction: usize,
    output: Output,
) -> Result<Vec<u8>> {
    let fail = |what: &str| decode_err(format!("JPEG: {what}{}", h.error()));
    // SAFETY: the handle is live; the buffer is `bytes.len()` bytes. Reading the
    // header again resets what a failed attempt left in the handle.
    if unsafe { raw::tj3DecompressHeader(h.ptr(), bytes.as_ptr(), bytes.len() as _) } != 0
        && !h.only_benign_warning()
    {
        return Err(fail(""));
    }
    // Set on every call: the handle is reused from one file to the next.
    let factor = raw::tjscalingfactor {
        num: 1,
        denom: reduction as i32,
    };
    // SAFETY: the handle is live; 1/1, 1/2, 1/4 and 1/8 are factors it supports.
    if unsafe { raw::tj3SetScalingFactor(h.ptr(), factor) } != 0 {
        return Err(fail("scaling: "));
    }
    let region = if (cw, ch) == (w, ht) {
        raw::tjregion {
            x: 0,
            y: 0,
            w: 0,
            h: 0,
        }
    } else {
        raw::tjregion {
            x: left as i32,
            y: top as i32,
            w: cw as i32,
            h: ch as i32,
        }
    };
    // SAFETY: the handle is live and has read this image's header.
    if unsafe { raw::tj3SetCroppingRegion(h.ptr(), region) } != 0 {
        return Err(fail("cropping: "));
    }
    let len = cw * ch * output.bytes_per_pixel();
    // Not zeroed first: a successful decode writes every byte.
    let mut pixels: Vec<u8> = Vec::with_capacity(len);
    // SAFETY: `pixels` has room for the `cw x ch` destination in the output's
    // pixel format (pitch 0 = packed); the source buffer is `bytes.len()` bytes.
    let rc = unsafe {
        raw::tj3Decompress8(
            h.ptr(),
            bytes.as_ptr(),
            bytes.len() as _,
            pixels.as_mut_ptr(),
            0,
            output.format() as _,
        )
    };
    // Warnings count too (a truncated file decodes with grey filler and a warning),
    // but those about markers alone, after which every row is decoded.
    if rc != 0 && !h.only_benign_warning() {
        return Err(fail(""));
    }
    // SAFETY: tj3Decompress8 finished (success, or a warning it decoded on after),
    // having written all `len` bytes of the region (libjpeg-turbo fills every
    // output row).
    unsafe { pixels.set_len(len) };
    Ok(match output {
        Output::Rgb => pixels,
        Output::Cmyk => {
            let mut rgb = Vec::new();
            cmyk_to_rgb(&pixels, &mut rgb);
            rgb
        }
    })
}

/// The whole frame through libjpeg-turbo alone (never [`super::baseline`]): what
/// that decoder is tested against.
#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) fn libjpeg_turbo_only(bytes: &[u8]) -> Result<Rgb8> {
    let full = |w, h| Some(Region::full(w, h));
    Ok(decode(bytes, &DecodeOptions::default(), full)?
        .expect("whole frame")
        .img)
}

/// CMYK samples as libjpeg gives them (YCCK already converted, Adobe's inverted
/// convention kept as stored) to RGB the way OpenCV's JPEG decoder does it: each
/// colour channel scaled by the K sample, `k - ((255 - c) * k >> 8)`.
pub(crate) fn cmyk_to_rgb(cmyk: &[u8], rgb: &mut Vec<u8>) {
    rgb.reserve(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let k = px[3] as u32;
        for &c in &px[..3] {
            rgb.push((k - (((255 - c as u32) * k) >> 8)) as u8);
        }
    }
}
