//! Decoding any supported image file (JPEG, PNG, WebP, BMP, PPM) into RGB8.
//!
//! JPEG goes through libjpeg-turbo, the library OpenCV decodes with, hence DLAS's
//! pixels: baseline 4:2:0, 4:2:2 and 4:4:4 frames are Huffman-decoded by our own
//! `jpeg::baseline` on x86-64 with AVX2 (the same pixels, faster), everything else (progressive and
//! arithmetic coding, other subsampling, CMYK/YCCK, lossless) by libjpeg-turbo itself,
//! converted to RGB as OpenCV's `imdecode` does. JPEGs of more than 8 bits per sample
//! are refused, as OpenCV refuses them. The other formats go through the `image`
//! crate. The format is sniffed from the content, not the file name. Alpha is dropped,
//! grey is expanded to three channels, 16-bit samples are rounded to 8 bits. EXIF
//! orientation is ignored, as DLAS does.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use super::{jpeg, Rgb8, Rgb8View};
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
/// pixel `(top, left)` of the file's frame reduced by `reduction` (1: the full frame;
/// 2, 4, 8: each pixel stands for a block of that side, the frame's size rounded up).
#[derive(Debug)]
pub struct Partial {
    pub img: Rgb8,
    pub top: usize,
    pub left: usize,
    pub reduction: usize,
}

impl Partial {
    /// The pixels of `region` (full-frame coordinates, inside what was asked for, at
    /// full size).
    pub fn view(&self, region: Region) -> Rgb8View<'_> {
        assert_eq!(self.reduction, 1, "a view of full-size pixels");
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
/// A lossy JPEG is decoded only over that region plus a margin of one MCU, so that
/// chroma upsampling at the region's edges sees the same neighbours as in a
/// whole-frame decode: the region's pixels are identical either way (tested). Other
/// files (lossless JPEGs, the other formats) are decoded whole.
pub fn decode_file_region(
    path: &Path,
    opts: &DecodeOptions,
    want: impl FnOnce(usize, usize) -> Option<Region>,
) -> Result<Option<Partial>> {
    let bytes = read_image_file(path, opts)?;
    decode_bytes_region(&bytes, opts, want).map_err(|e| with_path(e, path))
}

/// Reads the image file at `path`, hands its full size `(width, height)` to `want`,
/// and decodes at least the region it returns, reduced by at most the reduction it
/// returns (1, 2, 4 or 8): a lossy JPEG is decoded by libjpeg-turbo's scaled IDCT
/// over that region (plus margins) at 1/reduction of its size, reading no more of
/// the file than a full decode does but doing a fraction of the inverse transforms,
/// colour conversion and upsampling. Every other file (PNG, WebP..., lossless JPEG)
/// comes back whole at full size; `Partial::reduction` says which it is.
pub fn decode_file_reduced(
    path: &Path,
    opts: &DecodeOptions,
    want: impl FnOnce(usize, usize) -> Option<(Region, usize)>,
) -> Result<Option<Partial>> {
    let bytes = read_image_file(path, opts)?;
    decode_bytes_reduced(&bytes, opts, want).map_err(|e| with_path(e, path))
}

/// [`decode_file_reduced`] on bytes held in memory. Errors carry an empty path.
pub fn decode_bytes_reduced(
    bytes: &[u8],
    opts: &DecodeOptions,
    want: impl FnOnce(usize, usize) -> Option<(Region, usize)>,
) -> Result<Option<Partial>> {
    if image::guess_format(bytes).ok() != Some(ImageFormat::Jpeg) {
        return decode_bytes_region(bytes, opts, |w, h| want(w, h).map(|(r, _)| r));
    }
    // The frame's size from its header, to ask `want` before choosing the decoder: a
    // full-size request takes the usual path (our own decoder for whole baseline
    // frames). A header our reader cannot read (stray bytes between markers, which
    // libjpeg-turbo decodes past with a warning) goes there too, at full size and
    // whole whatever reduction was allowed, as promised for what is not reduced; a
    // damaged one fails there, named.
    let size = match jpeg::markers::frame_size(bytes) {
        Ok(Some((w, h))) if check_pixels(w as u64, h as u64, opts).is_ok() => {
            (w as usize, h as usize)
        }
        _ => {
            return decode_jpeg(bytes, opts, |w, h| {
                want(w, h).map(|(r, k)| if k == 1 { r } else { Region::full(w, h) })
            })
        }
    };
    let Some((region, reduction)) = want(size.0, size.1) else {
        return Ok(None);
    };
    if reduction == 1 {
        return decode_jpeg(bytes, opts, |w, h| (size == (w, h)).then_some(region))
            .and_then(|p| p.ok_or_else(|| frame_mismatch(size)).map(Some));
    }
    jpeg::turbo_decode::decode_reduced(bytes, opts, |w, h| {
        (size == (w, h)).then_some((region, reduction))
    })
    .and_then(|p| p.ok_or_else(|| frame_mismatch(size)).map(Some))
}

/// libjpeg-turbo read another frame size than the header's first frame declares
/// (never seen: both read the same marker).
fn frame_mismatch((w, h): (usize, usize)) -> CoreError {
    decode_err(format!(
        "JPEG: the decoder reads another frame size than the header's {w}x{h}"
    ))
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
        reduction: 1,
    }
}

pub(super) fn decode_err(reason: impl Into<String>) -> CoreError {
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

pub(super) fn check_pixels(width: u64, height: u64, opts: &DecodeOptions) -> Result<()> {
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
    #[cfg(target_arch = "x86_64")]
    let want = {
        let mut want = Some(want);
        let mut asked: Option<Option<Region>> = None;
        let mut refused = None;
        let fast = jpeg::baseline::decode(bytes, |w, h| {
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
    jpeg::turbo_decode::decode(bytes, opts, want)
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
#[path = "decode_tests.rs"]
pub(crate) mod tests;
