//! Decoding any supported image file (JPEG, PNG, WebP, BMP, PPM) into RGB8.
//!
//! JPEG goes through libjpeg-turbo, the library OpenCV decodes with, hence DLAS's
//! pixels: baseline 4:2:0 frames are Huffman-decoded by our own `jpeg::decode_420` on
//! x86-64 with AVX2 (the same pixels, faster), everything else (progressive and
//! arithmetic coding, other subsampling, CMYK/YCCK, lossless) by libjpeg-turbo itself,
//! converted to RGB as OpenCV's `imdecode` does. JPEGs of more than 8 bits per sample
//! are refused, as OpenCV refuses them. The other formats go through the `image`
//! crate. The format is sniffed from the content, not the file name. Alpha is dropped,
//! grey is expanded to three channels, 16-bit samples are rounded to 8 bits. EXIF
//! orientation is ignored, as DLAS does.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

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
    #[cfg(target_arch = "x86_64")]
    let want = {
        let mut want = Some(want);
        let mut asked: Option<Option<Region>> = None;
        let mut refused = None;
        let fast = super::jpeg::decode_420::decode(bytes, |w, h| {
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
    turbo_jpeg::decode(bytes, opts, want)
}

/// The whole frame through libjpeg-turbo alone (never [`super::jpeg::decode_420`]): what
/// that decoder is tested against.
#[cfg(all(test, target_arch = "x86_64"))]
pub(super) fn libjpeg_turbo_only(bytes: &[u8]) -> Result<Rgb8> {
    let full = |w, h| Some(Region::full(w, h));
    Ok(turbo_jpeg::decode(bytes, &DecodeOptions::default(), full)?
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

mod turbo_jpeg {
    use turbojpeg::raw;

    use super::super::jpeg::turbo::{with_decompressor, Handle};
    use super::*;

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

    pub(super) fn decode(
        bytes: &[u8],
        opts: &DecodeOptions,
        want: impl FnOnce(usize, usize) -> Option<Region>,
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
        want: impl FnOnce(usize, usize) -> Option<Region>,
    ) -> Result<Option<Partial>> {
        let (w, ht) = (layout.width, layout.height);
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
        if layout.croppable && (cropped.2, cropped.3) != (w, ht) {
            // Should cropping ever be refused for a layout we did not foresee, the whole
            // frame is decoded instead; a damaged file fails both, with the second error.
            attempts.insert(0, cropped);
        }
        let mut last_err = None;
        for (left, top, cw, ch) in attempts {
            match decode_rect(h, bytes, (w, ht), (left, top, cw, ch), layout.output) {
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
        h: &Handle,
        bytes: &[u8],
        (w, ht): (usize, usize),
        (left, top, cw, ch): (usize, usize, usize, usize),
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

    /// A JPEG of `img` (RGB, or CMYK when `cmyk` holds its 4-sample pixels) made by
    /// libjpeg-turbo with `set` applied to the compressor.
    fn tj_jpeg(
        w: usize,
        h: usize,
        pixels: &[u8],
        format: turbojpeg::PixelFormat,
        set: impl FnOnce(&mut turbojpeg::Compressor),
    ) -> Vec<u8> {
        let mut c = turbojpeg::Compressor::new().unwrap();
        c.set_quality(90).unwrap();
        set(&mut c);
        c.compress_to_vec(turbojpeg::Image {
            pixels,
            width: w,
            pitch: w * format.size(),
            height: h,
            format,
        })
        .unwrap()
    }

    /// Busy CMYK pixels: `busy`'s RGB plus a K channel that varies too.
    fn busy_cmyk(w: usize, h: usize) -> Vec<u8> {
        let rgb = busy(w, h);
        rgb.data
            .chunks_exact(3)
            .enumerate()
            .flat_map(|(i, p)| [p[0], p[1], p[2], (i * 37 % 256) as u8])
            .collect()
    }

    #[test]
    fn cmyk_converts_to_rgb_as_opencv_does() {
        // OpenCV: each channel `k - ((255 - c) * k >> 8)` of libjpeg's CMYK samples.
        let mut rgb = Vec::new();
        cmyk_to_rgb(
            &[255, 0, 128, 255, 10, 20, 30, 0, 200, 255, 0, 100],
            &mut rgb,
        );
        assert_eq!(rgb, [255, 1, 129, 0, 0, 0, 79, 100, 1]);
    }

    /// CMYK and YCCK JPEGs (Adobe's, as Photoshop writes) decode to libjpeg-turbo's
    /// CMYK samples converted as OpenCV converts them, and a region of one is the same
    /// rectangle of the whole decode.
    #[test]
    fn cmyk_and_ycck_jpegs_decode_as_opencv_decodes_them() {
        use turbojpeg::{Colorspace, PixelFormat, Subsamp};
        let (w, h) = (131, 77);
        let cmyk = busy_cmyk(w, h);
        for (colorspace, subsamp) in [
            (Colorspace::CMYK, Subsamp::None),
            (Colorspace::YCCK, Subsamp::None),
            (Colorspace::YCCK, Subsamp::Sub2x2),
        ] {
            let jpeg = tj_jpeg(w, h, &cmyk, PixelFormat::CMYK, |c| {
                c.set_colorspace(colorspace).unwrap();
                c.set_subsamp(subsamp).unwrap();
            });
            let samples = turbojpeg::decompress(&jpeg, PixelFormat::CMYK).unwrap();
            let mut want = Vec::new();
            for px in samples.pixels.chunks_exact(4) {
                let k = px[3] as i32;
                for &c in &px[..3] {
                    want.push((k - (((255 - c as i32) * k) >> 8)) as u8);
                }
            }
            let got = decode_bytes(&jpeg, &DecodeOptions::default()).unwrap();
            assert_eq!((got.width, got.height), (w, h));
            assert!(got.data == want, "{colorspace:?} {subsamp:?}");
            let r = Region {
                top: 40,
                left: 70,
                height: 30,
                width: 50,
            };
            let part = decode_bytes_region(&jpeg, &DecodeOptions::default(), |_, _| Some(r))
                .unwrap()
                .unwrap();
            assert!(part.img.width < w, "{colorspace:?}: nothing was cropped");
            assert_eq!(part.view(r).to_owned(), got.crop(40, 70, 30, 50).to_owned());
        }
    }

    /// A JPEG of `precision`-bit samples (lossless or not) of a `w x h` RGB image, made
    /// with the TurboJPEG API directly (the crate wraps only 8-bit samples).
    fn deep_jpeg(w: usize, h: usize, precision: i32, lossless: bool) -> Vec<u8> {
        use turbojpeg::raw;
        // SAFETY: a fresh handle, used and destroyed here; the sample buffer holds
        // `w * h * 3` samples of the width the precision needs; the output buffer
        // libjpeg-turbo allocates is copied and freed with tj3Free.
        unsafe {
            let t = raw::tj3Init(raw::TJINIT_TJINIT_COMPRESS as _);
            assert!(!t.is_null());
            let set = |p: raw::TJPARAM, v: i32| assert_eq!(raw::tj3Set(t, p as _, v), 0);
            set(raw::TJPARAM_TJPARAM_QUALITY, 90);
            set(raw::TJPARAM_TJPARAM_SUBSAMP, raw::TJSAMP_TJSAMP_420 as _);
            set(raw::TJPARAM_TJPARAM_PRECISION, precision);
            if lossless {
                set(raw::TJPARAM_TJPARAM_LOSSLESS, 1);
            }
            let rgb = busy(w, h);
            let max = (1u32 << precision) - 1;
            let samples: Vec<u16> = rgb
                .data
                .iter()
                .map(|&v| (v as u32 * max / 255) as u16)
                .collect();
            let mut out: *mut u8 = std::ptr::null_mut();
            let mut size: raw::size_t = 0;
            let (pf, (w, h)) = (raw::TJPF_TJPF_RGB as _, (w as _, h as _));
            let rc = match precision {
                2..=8 => {
                    let bytes: Vec<u8> = samples.iter().map(|&v| v as u8).collect();
                    raw::tj3Compress8(t, bytes.as_ptr(), w, 0, h, pf, &mut out, &mut size)
                }
                9..=12 => raw::tj3Compress12(
                    t,
                    samples.as_ptr() as *const i16,
                    w,
                    0,
                    h,
                    pf,
                    &mut out,
                    &mut size,
                ),
                _ => raw::tj3Compress16(t, samples.as_ptr(), w, 0, h, pf, &mut out, &mut size),
            };
            assert_eq!(rc, 0, "precision {precision}");
            let jpeg = std::slice::from_raw_parts(out, size as usize).to_vec();
            raw::tj3Free(out as _);
            raw::tj3Destroy(t);
            jpeg
        }
    }

    /// Lossless JPEGs of up to 8 bits per sample decode (whole: libjpeg-turbo cannot
    /// crop them); deeper samples, lossless or not, are refused with a reason, as
    /// OpenCV cannot decode them either (it reads JPEGs through libjpeg's 8-bit API).
    #[test]
    fn lossless_jpegs_decode_and_deeper_samples_are_refused() {
        let (w, h) = (67, 45);
        let opts = DecodeOptions::default();
        for precision in [8, 6] {
            let jpeg = deep_jpeg(w, h, precision, true);
            let got = decode_bytes(&jpeg, &opts).unwrap();
            let want = turbojpeg::decompress(&jpeg, turbojpeg::PixelFormat::RGB).unwrap();
            assert!(got.data == want.pixels, "lossless {precision}-bit");
            if precision == 8 {
                // Lossless: the pixels themselves.
                assert!(got == busy(w, h));
            }
            assert_region_decodes_as_crop(&jpeg, &got, (10, 40, 20, 20));
        }
        for (precision, lossless) in [(12, false), (12, true), (16, true)] {
            let jpeg = deep_jpeg(w, h, precision, lossless);
            let err = decode_bytes(&jpeg, &opts).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{precision}-bit samples")) && err.contains("OpenCV"),
                "{precision}-bit: {err}"
            );
        }
    }

    /// Decoding only the region (top, left, height, width) of `jpeg` gives the same
    /// pixels as cropping `whole`, its full decode.
    fn assert_region_decodes_as_crop(jpeg: &[u8], whole: &Rgb8, r: (usize, usize, usize, usize)) {
        let (top, left, height, width) = r;
        let region = Region {
            top,
            left,
            height,
            width,
        };
        let part = decode_bytes_region(jpeg, &DecodeOptions::default(), |_, _| Some(region))
            .unwrap()
            .unwrap();
        assert_eq!(
            part.view(region).to_owned(),
            whole.crop(top, left, height, width).to_owned()
        );
    }

    /// A progressive JPEG of busy pixels, 4:4:4: decoding it holds the coefficients
    /// of three full planes (1.8 MB).
    fn progressive_jpeg() -> Vec<u8> {
        use turbojpeg::{PixelFormat, Subsamp};
        let (w, h) = (640, 480);
        tj_jpeg(w, h, &busy(w, h).data, PixelFormat::RGB, |c| {
            c.set_subsamp(Subsamp::None).unwrap();
            c.set_progressive(true).unwrap();
        })
    }

    /// libjpeg-turbo's pools come from the Rust allocator (`csrc/jmem_rust.c`): the
    /// whole-image coefficients of a progressive file are obtained there.
    #[test]
    fn libjpeg_memory_comes_from_the_rust_allocator() {
        use super::super::jpeg::memory::OBTAINED;
        let before = OBTAINED.with(|n| n.get());
        decode_bytes(&progressive_jpeg(), &DecodeOptions::default()).unwrap();
        let obtained = OBTAINED.with(|n| n.get()) - before;
        assert!(obtained >= 640 * 480 * 3 * 2, "{obtained} bytes from Rust");
    }

    /// A memory limit set on the handle (TurboJPEG's `TJPARAM_MAXMEMORY`) still holds
    /// with the replaced memory functions, which report what is left under it: past
    /// it libjpeg would need a backing store, which it has not, and the file is an
    /// error. Without the limit the same file decodes.
    #[test]
    fn libjpeg_memory_limit_still_holds() {
        use super::super::jpeg::turbo::with_decompressor;
        let jpeg = progressive_jpeg();
        let opts = DecodeOptions::default();
        let limit = |mib: i32| {
            with_decompressor(|d| d.set(turbojpeg::raw::TJPARAM_TJPARAM_MAXMEMORY, mib)).unwrap()
        };
        limit(1);
        let refused = decode_bytes(&jpeg, &opts).map(|_| ());
        limit(0);
        // libjpeg-turbo's message for JERR_NO_BACKING_STORE.
        let err = refused.unwrap_err().to_string();
        assert!(err.contains("Memory limit exceeded"), "{err}");
        assert!(decode_bytes(&jpeg, &opts).is_ok());
    }

    /// Arithmetic-coded JPEGs (sequential and progressive) decode to the pixels of the
    /// Huffman-coded file of the same image (entropy coding is lossless), in regions
    /// too; cut short, they are errors, not grey filler.
    #[test]
    fn arithmetic_coded_jpegs_decode_and_truncated_ones_fail() {
        use turbojpeg::{PixelFormat, Subsamp};
        let (w, h) = (150, 98);
        let img = busy(w, h);
        let opts = DecodeOptions::default();
        for subsamp in [Subsamp::Sub2x2, Subsamp::None] {
            for progressive in [false, true] {
                let make = |arithmetic: bool| {
                    tj_jpeg(w, h, &img.data, PixelFormat::RGB, |c| {
                        c.set_subsamp(subsamp).unwrap();
                        c.set_progressive(progressive).unwrap();
                        c.set_arithmetic(arithmetic).unwrap();
                    })
                };
                let (arith, huff) = (make(true), make(false));
                let what = format!("{subsamp:?}, progressive {progressive}");
                let got = decode_bytes(&arith, &opts).unwrap();
                assert!(got == decode_bytes(&huff, &opts).unwrap(), "{what}");
                assert_region_decodes_as_crop(&arith, &got, (33, 65, 40, 50));
                let cut = &arith[..arith.len() * 2 / 3];
                let err = decode_bytes(cut, &opts).unwrap_err().to_string();
                assert!(err.contains("JPEG"), "{what}: {err}");
            }
        }
    }
}
