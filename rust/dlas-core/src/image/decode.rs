//! Decoding any supported image file (JPEG, PNG, WebP, BMP, PPM) into RGB8.
//!
//! JPEG goes straight through zune-jpeg (the decoder the `image` crate itself uses) so
//! that we can ask for RGB output and strict error handling; the other formats go
//! through `image`. The format is sniffed from the content, not the file name.
//! Alpha is dropped, grey is expanded to three channels, 16-bit samples are rounded to
//! 8 bits. EXIF orientation is ignored, as DLAS does.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::Rgb8;
use crate::error::{CoreError, Result};

/// Default pixel limit: 200 megapixels.
pub const DEFAULT_MAX_PIXELS: u64 = 200_000_000;

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

/// Reads and decodes the image file at `path` into RGB8.
pub fn decode_file(path: &Path, opts: &DecodeOptions) -> Result<Rgb8> {
    let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
    decode_bytes(&bytes, opts).map_err(|e| with_path(e, path))
}

/// Decodes an encoded image held in memory into RGB8. Errors carry an empty path.
pub fn decode_bytes(bytes: &[u8], opts: &DecodeOptions) -> Result<Rgb8> {
    if bytes.is_empty() {
        return Err(decode_err("empty file"));
    }
    let format = image::guess_format(bytes)
        .map_err(|_| decode_err("not a recognised image format (JPEG, PNG, WebP, BMP, PPM)"))?;
    match format {
        ImageFormat::Jpeg => decode_jpeg(bytes, opts),
        ImageFormat::Png | ImageFormat::WebP | ImageFormat::Bmp | ImageFormat::Pnm => {
            decode_other(bytes, format, opts)
        }
        other => Err(decode_err(format!("unsupported image format {other:?}"))),
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

fn decode_jpeg(bytes: &[u8], opts: &DecodeOptions) -> Result<Rgb8> {
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
    let pixels = decoder
        .decode()
        .map_err(|e| decode_err(format!("JPEG: {e}")))?;
    if pixels.len() != w * h * 3 {
        return Err(decode_err(format!(
            "JPEG: decoder returned {} bytes for {w}x{h} RGB",
            pixels.len()
        )));
    }
    Ok(Rgb8::new(w, h, pixels))
}

fn decode_other(bytes: &[u8], format: ImageFormat, opts: &DecodeOptions) -> Result<Rgb8> {
    let name = format!("{format:?}").to_uppercase();
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.no_limits();
    let decoder = reader
        .into_decoder()
        .map_err(|e| decode_err(format!("{name}: {e}")))?;
    let (w, h) = decoder.dimensions();
    check_pixels(w as u64, h as u64, opts)?;
    let img =
        DynamicImage::from_decoder(decoder).map_err(|e| decode_err(format!("{name}: {e}")))?;
    let rgb = match img {
        DynamicImage::ImageRgb8(buf) => buf,
        other => other.to_rgb8(),
    };
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    Ok(Rgb8::new(w, h, rgb.into_raw()))
}
