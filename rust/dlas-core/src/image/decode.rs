//! Decoding any supported image file (JPEG, PNG, WebP, BMP, PPM) into RGB8.
//!
//! JPEG goes through libjpeg-turbo in the `turbojpeg` build (OpenCV's decoder, hence
//! DLAS's pixels), with baseline 4:2:0 frames Huffman-decoded by our own
//! `jpeg_decode` on x86-64 (the same pixels, faster), and through zune-jpeg (the
//! decoder the `image` crate itself uses) otherwise, with RGB output and strict error
//! handling; the other formats go through `image`. The format is sniffed from the content, not the file name.
//! Alpha is dropped, grey is expanded to three channels, 16-bit samples are rounded to
//! 8 bits. EXIF orientation is ignored, as DLAS does.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::{Rgb8, Rgb8View};
use crate::error::{CoreError, Result};
use crate::input::{image_max_bytes, read_regular};

/// Default pixel limit: 200 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 200_000_000;

/// The largest pixel limit that may be set: 2^32 pixels (a 65536 x 65536 image, about
/// the largest JPEG), 12 GiB of RGB pixels once decoded.
pub const MAX_MAX_PIXELS: u64 = 1 << 32;

/// Checks a pixel limit given as the option `option`: 1..=[`MAX_MAX_PIXELS`].
pub fn check_max_pixels(option: &str, max_pixels: u64) -> Result<()> {
    if (1..=MAX_MAX_PIXELS).contains(&max_pixels) {
        Ok(())
    } else {
        Err(CoreError::option(
            option,
            format!("must be in 1..={MAX_MAX_PIXELS}, got {max_pixels}"),
        ))
    }
}

/// How to decode.
#[derive(Clone, Copy, Debug)]
pub struct DecodeOptions {
    /// Images declaring more pixels than this are refused before any pixel is decoded.
    pub max_pixels: u64,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

/// A rectangle of an image's full frame, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

impl Region {
    /// The whole `width x height` frame.
    pub fn full(width: usize, height: usize) -> Region {
        Region {
            top: 0,
            left: 0,
            height,
            width,
        }
    }
}

/// Decoded pixels that cover at least the region asked for: `img`'s top-left pixel is
/// pixel `(top, left)` of the file's full frame.
#[derive(Debug)]
pub struct Partial {
    pub img: Rgb8,
    pub top: usize,
    pub left: usize,
}

impl Partial {
    /// The pixels of `region` (full-frame coordinates, inside what was asked for).
    pub fn view(&self, region: Region) -> Rgb8View<'_> {
        self.img.crop(
            region.top - self.top,
            region.left - self.left,
            region.height,
            region.width,
        )
    }
}

/// Reads and decodes the image file at `path` into RGB8.
pub fn decode_file(path: &Path, opts: &DecodeOptions) -> Result<Rgb8> {
    let bytes = read_image_file(path, opts)?;
    decode_bytes(&bytes, opts).map_err(|e| with_path(e, path))
}

/// Decodes an encoded image held in memory into RGB8. Errors carry an empty path.
pub fn decode_bytes(bytes: &[u8], opts: &DecodeOptions) -> Result<Rgb8> {
    let part = decode_bytes_region(bytes, opts, |w, h| Some(Region::full(w, h)))?;
    Ok(part.expect("the whole frame was asked for").img)
}

/// Reads the image file at `path`, hands its full size `(width, height)` to `want`,
/// and decodes at least the region `want` returns; `None` decodes no pixels at all
/// (the header was still read and checked against the pixel limit).
///
/// With libjpeg-turbo, a JPEG is decoded only over that region plus a margin of one
/// MCU, so that chroma upsampling at the region's edges sees the same neighbours as
/// in a whole-frame decode: the region's pixels are identical either way (tested).
/// Other decoders decode the whole frame.
pub fn decode_file_region(
    path: &Path,
    opts: &DecodeOptions,
    want: impl FnOnce(usize, usize) -> Option<Region>,
) -> Result<Option<Partial>> {
    let bytes = read_image_file(path, opts)?;
    decode_bytes_region(&bytes, opts, want).map_err(|e| with_path(e, path))
}

/// The bytes of the image file at `path`: a regular file (see [`crate::input`]) of at
/// most [`image_max_bytes`] for the pixel limit.
fn read_image_file(path: &Path, opts: &DecodeOptions) -> Result<Vec<u8>> {
    read_regular(
        path,
        image_max_bytes(opts.max_pixels),
        IMAGE_FILE,
        "raise --max-pixels to accept it",
    )
    .map_err(|e| CoreError::io(path, e))
}

/// What an image file is, in the message for one too large.
pub(crate) const IMAGE_FILE: &str = "an image within the pixel limit";

/// [`decode_file_region`] on bytes held in memory. Errors carry an empty path.
pub fn decode_bytes_region(
    bytes: &[u8],
    opts: &DecodeOptions,
    want: impl FnOnce(usize, usize) -> Option<Region>,
) -> Result<Option<Partial>> {
    if bytes.is_empty() {
        return Err(decode_err("empty file"));
    }
    let format = image::guess_format(bytes)
        .map_err(|_| decode_err("not a recognised image format (JPEG, PNG, WebP, BMP, PPM)"))?;
    match format {
        ImageFormat::Jpeg => decode_jpeg(bytes, opts, want),
        ImageFormat::Png | ImageFormat::WebP | ImageFormat::Bmp | ImageFormat::Pnm => {
            decode_other(bytes, format, opts, want)
        }
        other => Err(decode_err(format!("unsupported image format {other:?}"))),
    }
}

fn whole(img: Rgb8) -> Partial {
    Partial {
        img,
        top: 0,
        left: 0,
    }
}

fn decode_err(reason: impl Into<String>) -> CoreError {
    CoreError::Decode {
        path: Default::default(),
        reason: reason.into(),
    }
}

fn with_path(err: CoreError, path: &Path) -> CoreError {
    match err {
        CoreError::Decode { reason, .. } => CoreError::Decode {
            path: path.to_path_buf(),
            reason,
        },
        CoreError::TooManyPixels {
            width,
            height,
            limit,
            ..
        } => CoreError::TooManyPixels {
            path: path.to_path_buf(),
            width,
            height,
            limit,
        },
        other => other,
    }
}

fn check_pixels(width: u64, height: u64, opts: &DecodeOptions) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(decode_err(format!(
            "image has no pixels ({width}x{height})"
        )));
    }
    if width.saturating_mul(height) > opts.max_pixels {
        return Err(CoreError::TooManyPixels {
            path: Default::default(),
            width,
            height,
            limit: opts.max_pixels,
        });
    }
    Ok(())
}

fn decode_jpeg(
    bytes: &[u8],
    opts: &DecodeOptions,
    want: impl FnOnce(usize, usize) -> Option<Region>,
) -> Result<Option<Partial>> {
    // A whole frame of the layout tiles use goes through our own decoder (the same
    // pixels as libjpeg-turbo, faster); anything else it hands on, with the region
    // already chosen if the frame's size had to be read for that.
    #[cfg(all(feature = "turbojpeg", target_arch = "x86_64"))]
    let want = {
        let mut want = Some(want);
        let mut asked: Option<Option<Region>> = None;
        let mut refused = None;
        let fast = super::jpeg_decode::decode(bytes, |w, h| {
            if let Err(e) = check_pixels(w as u64, h as u64, opts) {
                refused = Some(e);
                return false;
            }
            let r = (want.take().expect("asked once"))(w, h);
            asked = Some(r);
            r == Some(Region::full(w, h))
        });
        if let Some(e) = refused {
            return Err(e);
        }
        if let Some(img) = fast {
            return Ok(Some(whole(img)));
        }
        let rest: Box<dyn FnOnce(usize, usize) -> Option<Region>> = match asked {
            None => Box::new(want.take().expect("not asked")),
            Some(None) => return Ok(None),
            Some(Some(r)) => Box::new(move |_, _| Some(r)),
        };
        rest
    };
    #[cfg(feature = "turbojpeg")]
    let want = match turbo_jpeg::decode(bytes, opts, want) {
        turbo_jpeg::Outcome::Done(result) => return result,
        turbo_jpeg::Outcome::Unsupported(want) => want,
    };
    zune_jpeg_decode(bytes, opts, want)
}

/// The whole frame through libjpeg-turbo alone (never [`super::jpeg_decode`]): what
/// that decoder is tested against.
#[cfg(all(test, feature = "turbojpeg", target_arch = "x86_64"))]
pub(super) fn libjpeg_turbo_only(bytes: &[u8]) -> Result<Rgb8> {
    let full = |w, h| Some(Region::full(w, h));
    match turbo_jpeg::decode(bytes, &DecodeOptions::default(), full) {
        turbo_jpeg::Outcome::Done(r) => Ok(r?.expect("whole frame").img),
        turbo_jpeg::Outcome::Unsupported(_) => Err(decode_err("not for libjpeg-turbo")),
    }
}

/// JPEG through zune-jpeg: the pure-Rust build's decoder, and the fallback for what
/// libjpeg-turbo cannot turn into RGB (CMYK/YCCK, 12-bit, lossless).
fn zune_jpeg_decode(
    bytes: &[u8],
    opts: &DecodeOptions,
    want: impl FnOnce(usize, usize) -> Option<Region>,
) -> Result<Option<Partial>> {
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX)
        .jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder
        .decode_headers()
        .map_err(|e| decode_err(format!("JPEG: {e}")))?;
    let (w, h) = decoder
        .dimensions()
        .ok_or_else(|| decode_err("JPEG: no frame header"))?;
    check_pixels(w as u64, h as u64, opts)?;
    if want(w, h).is_none() {
        return Ok(None);
    }
    let pixels = decoder
        .decode()
        .map_err(|e| decode_err(format!("JPEG: {e}")))?;
    if pixels.len() != w * h * 3 {
        return Err(decode_err(format!(
            "JPEG: decoder returned {} bytes for {w}x{h} RGB",
            pixels.len()
        )));
    }
    Ok(Some(whole(Rgb8::new(w, h, pixels))))
}

#[cfg(feature = "turbojpeg")]
mod turbo_jpeg {
    use turbojpeg::raw;

    use super::super::turbo::with_decompressor;
    use super::*;

    pub(super) enum Outcome<F> {
        Done(Result<Option<Partial>>),
        /// Not for libjpeg-turbo's RGB output: the caller decodes it another way.
        Unsupported(F),
    }

    /// Alignment of the cropped region's left edge, and its margins. libjpeg-turbo
    /// needs the left edge on an iMCU boundary (8 x the largest horizontal sampling
    /// factor, at most 4), and reports some non-standard layouts (e.g. luma 2x2 with
    /// chroma 2x1) under a standard name whose table MCU is narrower than the real one,
    /// so the largest possible iMCU is used whatever the file says.
    const ALIGN: usize = 32;

    pub(super) fn decode<F>(bytes: &[u8], opts: &DecodeOptions, want: F) -> Outcome<F>
    where
        F: FnOnce(usize, usize) -> Option<Region>,
    {
        let mut want = Some(want);
        let result = with_decompressor(|h| {
            // SAFETY: the handle is live; the buffer is `bytes.len()` bytes.
            let rc = unsafe { raw::tj3DecompressHeader(h.ptr(), bytes.as_ptr(), bytes.len() as _) };
            let get = |p| h.get(p);
            let supported = rc == 0
                && get(raw::TJPARAM_TJPARAM_PRECISION) == 8
                && get(raw::TJPARAM_TJPARAM_LOSSLESS) == 0
                && [
                    raw::TJCS_TJCS_YCbCr,
                    raw::TJCS_TJCS_RGB,
                    raw::TJCS_TJCS_GRAY,
                ]
                .contains(&(get(raw::TJPARAM_TJPARAM_COLORSPACE) as raw::TJCS));
            if !supported {
                return Ok(None);
            }
            let w = get(raw::TJPARAM_TJPARAM_JPEGWIDTH) as usize;
            let ht = get(raw::TJPARAM_TJPARAM_JPEGHEIGHT) as usize;
            Ok(Some(decode_region(
                h,
                bytes,
                opts,
                w,
                ht,
                want.take().unwrap(),
            )))
        });
        match result {
            Ok(Some(done)) => Outcome::Done(done),
            Ok(None) => Outcome::Unsupported(want.take().expect("want not used")),
            Err(e) => Outcome::Done(Err(decode_err(format!("JPEG: {e}")))),
        }
    }

    fn decode_region(
        h: &super::super::turbo::Handle,
        bytes: &[u8],
        opts: &DecodeOptions,
        w: usize,
        ht: usize,
        want: impl FnOnce(usize, usize) -> Option<Region>,
    ) -> Result<Option<Partial>> {
        check_pixels(w as u64, ht as u64, opts)?;
        let Some(r) = want(w, ht) else {
            return Ok(None);
        };
        assert!(
            r.top + r.height <= ht && r.left + r.width <= w,
            "region outside the frame"
        );
        // One pixel of margin to the left (the left edge must sit on an iMCU boundary),
        // an iMCU's worth to the right, above and below: chroma upsampling at the
        // region's edges then sees the same neighbours as in a whole-frame decode.
        let left = r.left.saturating_sub(1) / ALIGN * ALIGN;
        let right = (r.left + r.width + ALIGN).min(w);
        let top = r.top.saturating_sub(ALIGN);
        let bottom = (r.top + r.height + ALIGN).min(ht);
        let cropped = (left, top, right - left, bottom - top);
        let whole = (0, 0, w, ht);
        let mut attempts = vec![whole];
        if (cropped.2, cropped.3) != (w, ht) {
            // Should cropping ever be refused for a layout we did not foresee, the whole
            // frame is decoded instead; a damaged file fails both, with the second error.
            attempts.insert(0, cropped);
        }
        let mut last_err = None;
        for (left, top, cw, ch) in attempts {
            match decode_rect(h, bytes, (w, ht), (left, top, cw, ch)) {
                Ok(pixels) => {
                    return Ok(Some(Partial {
                        img: Rgb8::new(cw, ch, pixels),
                        top,
                        left,
                    }))
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.expect("at least one attempt"))
    }

    /// Decodes the `cw x ch` rectangle at `(left, top)` (the whole frame when it is
    /// the whole frame) into packed RGB.
    fn decode_rect(
        h: &super::super::turbo::Handle,
        bytes: &[u8],
        (w, ht): (usize, usize),
        (left, top, cw, ch): (usize, usize, usize, usize),
    ) -> Result<Vec<u8>> {
        let fail = |what: &str| decode_err(format!("JPEG: {what}{}", h.error()));
        // SAFETY: the handle is live; the buffer is `bytes.len()` bytes. Reading the
        // header again resets what a failed attempt left in the handle.
        if unsafe { raw::tj3DecompressHeader(h.ptr(), bytes.as_ptr(), bytes.len() as _) } != 0 {
            return Err(fail(""));
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
        // Not zeroed first: a successful decode writes every byte.
        let mut pixels: Vec<u8> = Vec::with_capacity(cw * ch * 3);
        // SAFETY: `pixels` has room for the `cw x ch` RGB destination (pitch 0 =
        // packed); the source buffer is `bytes.len()` bytes.
        let rc = unsafe {
            raw::tj3Decompress8(
                h.ptr(),
                bytes.as_ptr(),
                bytes.len() as _,
                pixels.as_mut_ptr(),
                0,
                raw::TJPF_TJPF_RGB as _,
            )
        };
        // Warnings count too: a truncated file decodes with grey filler and a warning.
        if rc != 0 {
            return Err(fail(""));
        }
        // SAFETY: tj3Decompress8 returned success, having written all `cw * ch * 3`
        // bytes of the region (libjpeg-turbo fills every output row).
        unsafe { pixels.set_len(cw * ch * 3) };
        Ok(pixels)
    }
}

/// Bytes a decoder may allocate for an image's metadata (ICC profile, text and EXIF
/// chunks, inflated or not) besides the pixels: far more than any real profile holds.
pub const METADATA_MAX_BYTES: u64 = 64 << 20;

/// The width and height a PNG declares in its IHDR (always its first chunk), if `head`
/// (the file's first bytes) holds one.
fn png_size(head: &[u8]) -> Option<(u64, u64)> {
    if head.get(12..16)? != b"IHDR" {
        return None;
    }
    let be = |at: usize| {
        head.get(at..at + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
    };
    Some((be(16)? as u64, be(20)? as u64))
}

/// The `image` crate's limits for decoding a file of `format` that starts with `head`.
///
/// The PNG decoder reads every chunk before the pixels at once, inflating an iCCP
/// profile and keeping text and EXIF chunks, and counts those allocations and its row
/// buffer against `max_alloc` (the pixels themselves are not counted): so `max_alloc`
/// is [`METADATA_MAX_BYTES`] plus one row of the widest pixels (8 bytes), and an
/// image declaring more pixels than the limit is refused from its IHDR before any
/// other chunk is read. The other formats' decoders keep no metadata beyond what the
/// file holds and allocate only the pixel buffers, which [`check_pixels`] bounds before
/// any pixel is decoded.
pub(crate) fn decoder_limits(
    head: &[u8],
    format: ImageFormat,
    opts: &DecodeOptions,
) -> Result<image::Limits> {
    let mut limits = image::Limits::no_limits();
    if format == ImageFormat::Png {
        if let Some((w, h)) = png_size(head) {
            check_pixels(w, h, opts)?;
            limits.max_alloc = Some(METADATA_MAX_BYTES + 8 * w);
        } else {
            limits.max_alloc = Some(METADATA_MAX_BYTES);
        }
    }
    Ok(limits)
}

/// Refuses a PNG whose ICC profile inflates to more than [`METADATA_MAX_BYTES`].
///
/// The PNG decoder inflates the iCCP chunk as it reads the header, within its memory
/// limit (see [`decoder_limits`]), and drops a profile that does not fit, silently: so
/// the chunks before the pixels are walked here (no other chunk is inflated before
/// them) and a profile that would not fit is a named failure, the file a decompression
/// bomb. A damaged chunk or stream is left to the decoder, as before.
fn check_png_metadata(bytes: &[u8]) -> Result<()> {
    let mut at = 8usize;
    while let Some(head) = bytes.get(at..at.saturating_add(8)) {
        let len = u32::from_be_bytes(head[..4].try_into().unwrap()) as usize;
        let kind = &head[4..8];
        if kind == b"IDAT" {
            break;
        }
        let Some(data) = bytes.get(at + 8..(at + 8).saturating_add(len)) else {
            break;
        };
        if kind == b"iCCP" {
            // Profile name (1-79 bytes), NUL, compression method, zlib stream.
            let stream = data
                .iter()
                .position(|&b| b == 0)
                .and_then(|nul| data.get(nul + 2..));
            if let Some(stream) = stream {
                let limit = METADATA_MAX_BYTES as usize;
                if let Err(fdeflate::BoundedDecompressionError::OutputTooLarge { .. }) =
                    fdeflate::decompress_to_vec_bounded(stream, limit)
                {
                    return Err(decode_err(format!(
                        "PNG: its ICC profile (iCCP chunk) inflates to more than the memory \
                         limit of {} MiB for metadata (a decompression bomb?)",
                        METADATA_MAX_BYTES >> 20
                    )));
                }
            }
        }
        at = at.saturating_add(12).saturating_add(len);
    }
    Ok(())
}

/// The reason for an `image` crate error: a limit reached is named as such.
/// (`name`, the format, starts it unless empty.)
pub(crate) fn image_error(name: &str, err: image::ImageError) -> String {
    let name = if name.is_empty() {
        String::new()
    } else {
        format!("{name}: ")
    };
    match err {
        image::ImageError::Limits(_) => format!(
            "{name}its metadata (ICC profile, text or EXIF chunks) needs more than the \
             decoder's memory limit of {} MiB for it (a decompression bomb?)",
            METADATA_MAX_BYTES >> 20
        ),
        other => format!("{name}{other}"),
    }
}

fn decode_other(
    bytes: &[u8],
    format: ImageFormat,
    opts: &DecodeOptions,
    want: impl FnOnce(usize, usize) -> Option<Region>,
) -> Result<Option<Partial>> {
    let name = format!("{format:?}").to_uppercase();
    let limits = decoder_limits(bytes, format, opts)?;
    if format == ImageFormat::Png {
        check_png_metadata(bytes)?;
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    let decoder = reader
        .into_decoder()
        .map_err(|e| decode_err(image_error(&name, e)))?;
    let (w, h) = decoder.dimensions();
    check_pixels(w as u64, h as u64, opts)?;
    // At most 16-bit RGBA: anything more is not an image we know.
    if decoder.total_bytes() > 8 * w as u64 * h as u64 {
        return Err(decode_err(format!(
            "{name}: {} bytes of pixels for {w}x{h}",
            decoder.total_bytes()
        )));
    }
    if want(w as usize, h as usize).is_none() {
        return Ok(None);
    }
    let img = DynamicImage::from_decoder(decoder).map_err(|e| decode_err(image_error(&name, e)))?;
    let rgb = match img {
        DynamicImage::ImageRgb8(buf) => buf,
        other => other.to_rgb8(),
    };
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    Ok(Some(whole(Rgb8::new(w, h, rgb.into_raw()))))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A busy colour image: gradients plus a hash pattern, so chroma varies between
    /// neighbouring pixels and upsampling at region edges matters.
    pub(crate) fn busy(w: usize, h: usize) -> Rgb8 {
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let n = (x * 7919 + y * 104_729) % 251;
                data.extend_from_slice(&[
                    ((x * 3 + n) % 256) as u8,
                    ((y * 5 + 2 * n) % 256) as u8,
                    ((x + y + 3 * n) % 256) as u8,
                ]);
            }
        }
        Rgb8::new(w, h, data)
    }

    fn png_bytes(img: &Rgb8) -> Vec<u8> {
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(
                &img.data,
                img.width as u32,
                img.height as u32,
                image::ExtendedColorType::Rgb8,
            )
            .unwrap();
        out
    }

    use image::ImageEncoder;

    #[test]
    fn a_region_is_covered_and_matches_the_whole_decode() {
        let img = busy(203, 157);
        let bytes = png_bytes(&img);
        let region = Region {
            top: 31,
            left: 45,
            height: 100,
            width: 77,
        };
        let part = decode_bytes_region(&bytes, &DecodeOptions::default(), |w, h| {
            assert_eq!((w, h), (203, 157));
            Some(region)
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            part.view(region).to_owned(),
            img.crop(31, 45, 100, 77).to_owned()
        );
    }

    #[test]
    fn asking_for_nothing_decodes_nothing_but_checks_the_limit() {
        let bytes = png_bytes(&busy(40, 30));
        let none = decode_bytes_region(&bytes, &DecodeOptions::default(), |_, _| None).unwrap();
        assert!(none.is_none());
        let tight = DecodeOptions { max_pixels: 1000 };
        let err = decode_bytes_region(&bytes, &tight, |_, _| None).unwrap_err();
        assert!(matches!(err, CoreError::TooManyPixels { .. }), "{err}");
    }

    /// A PNG declaring more pixels than the limit is refused from its IHDR, before any
    /// other chunk (an ICC profile, say) is read; the limit itself has a range.
    #[test]
    fn png_dimensions_are_checked_before_any_metadata_is_read() {
        let mut png = png_bytes(&busy(40, 30));
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let limits = decoder_limits(&png, ImageFormat::Png, &DecodeOptions::default());
        assert!(matches!(limits, Err(CoreError::TooManyPixels { .. })));
        let err = decode_bytes(&png, &DecodeOptions::default()).unwrap_err();
        assert!(matches!(err, CoreError::TooManyPixels { .. }), "{err}");
        let ok = decoder_limits(
            &png_bytes(&busy(40, 30)),
            ImageFormat::Png,
            &Default::default(),
        );
        assert_eq!(ok.unwrap().max_alloc, Some(METADATA_MAX_BYTES + 8 * 40));
        assert!(check_max_pixels("max_pixels", 1).is_ok());
        assert!(check_max_pixels("max_pixels", MAX_MAX_PIXELS).is_ok());
        for bad in [0, MAX_MAX_PIXELS + 1, u64::MAX] {
            let err = check_max_pixels("max_pixels", bad).unwrap_err().to_string();
            assert!(
                err.contains("`max_pixels`") && err.contains("1..=4294967296"),
                "{err}"
            );
        }
    }

    /// libjpeg-turbo decodes only the region (plus margins); its pixels must equal the
    /// same rectangle of a whole-frame decode for every chroma subsampling, at offsets
    /// on, just after and between MCU boundaries.
    #[cfg(feature = "turbojpeg")]
    #[test]
    fn cropped_jpeg_decode_equals_the_whole_decode() {
        use turbojpeg::{Image, PixelFormat, Subsamp};
        let img = busy(331, 269);
        for subsamp in [
            Subsamp::None,
            Subsamp::Sub2x1,
            Subsamp::Sub2x2,
            Subsamp::Sub1x2,
            Subsamp::Sub4x1,
            Subsamp::Gray,
        ] {
            let jpeg = turbojpeg::compress(
                Image {
                    pixels: &img.data[..],
                    width: img.width,
                    pitch: img.width * 3,
                    height: img.height,
                    format: PixelFormat::RGB,
                },
                92,
                subsamp,
            )
            .unwrap();
            let whole = decode_bytes(&jpeg, &DecodeOptions::default()).unwrap();
            for (top, left, height, width) in [
                (0, 0, 100, 100),
                (16, 32, 120, 96),
                (17, 33, 101, 97),
                (40, 120, 229, 211),
                (100, 1, 50, 330),
                (268, 330, 1, 1),
            ] {
                let r = Region {
                    top,
                    left,
                    height,
                    width,
                };
                let part = decode_bytes_region(&jpeg, &DecodeOptions::default(), |_, _| Some(r))
                    .unwrap()
                    .unwrap();
                assert!(
                    part.img.width * part.img.height < whole.width * whole.height
                        || (width, height) == (330, 50),
                    "{subsamp:?} {r:?}: nothing was cropped"
                );
                assert_eq!(
                    part.view(r).to_owned(),
                    whole.crop(top, left, height, width).to_owned(),
                    "{subsamp:?} {r:?}"
                );
            }
        }
    }
}
