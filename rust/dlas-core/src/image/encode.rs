//! Baseline JPEG encoding (4:2:0 chroma, standard tables), as OpenCV's `imencode` does
//! by default.
//!
//! Two back ends: the pure-Rust `jpeg-encoder` crate (default, needs nothing but
//! cargo) and libjpeg-turbo through the `turbojpeg` crate (cargo feature `turbojpeg`,
//! about twice as fast; see the README's codec section). Both are deterministic.

use super::Rgb8View;
use crate::error::{CoreError, Result};

/// Which encoder this build uses ("libjpeg-turbo" or "jpeg-encoder").
pub const JPEG_ENCODER: &str = if cfg!(feature = "turbojpeg") {
    "libjpeg-turbo"
} else {
    "jpeg-encoder"
};

/// Encodes `img` as a JPEG of the given quality (1-100), appending to `out`.
pub fn encode_jpeg(img: Rgb8View<'_>, quality: u8, out: &mut Vec<u8>) -> Result<()> {
    if img.width > u16::MAX as usize || img.height > u16::MAX as usize {
        return Err(CoreError::Encode(format!(
            "{}x{} exceeds JPEG's 65535 pixel side",
            img.width, img.height
        )));
    }
    backend::encode(img, quality.clamp(1, 100), out)
}

#[cfg(not(feature = "turbojpeg"))]
mod backend {
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    use super::*;

    pub(super) fn encode(img: Rgb8View<'_>, quality: u8, out: &mut Vec<u8>) -> Result<()> {
        let packed;
        let data: &[u8] = if img.is_packed() {
            &img.data[..img.width * img.height * 3]
        } else {
            packed = img.to_owned();
            &packed.data
        };
        let mut encoder = Encoder::new(out, quality);
        encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
        encoder
            .encode(data, img.width as u16, img.height as u16, ColorType::Rgb)
            .map_err(|e| CoreError::Encode(e.to_string()))
    }
}

#[cfg(feature = "turbojpeg")]
mod backend {
    use std::cell::RefCell;

    use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

    use super::*;

    thread_local! {
        static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
    }

    pub(super) fn encode(img: Rgb8View<'_>, quality: u8, out: &mut Vec<u8>) -> Result<()> {
        let err = |e: turbojpeg::Error| CoreError::Encode(e.to_string());
        COMPRESSOR.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                let mut c = Compressor::new().map_err(err)?;
                c.set_subsamp(Subsamp::Sub2x2).map_err(err)?;
                *slot = Some(c);
            }
            let c = slot.as_mut().expect("compressor just created");
            c.set_quality(quality as i32).map_err(err)?;
            let image = Image {
                pixels: img.data,
                width: img.width,
                pitch: img.stride,
                height: img.height,
                format: PixelFormat::RGB,
            };
            let bytes = c.compress_to_vec(image).map_err(err)?;
            out.extend_from_slice(&bytes);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{decode_bytes, DecodeOptions, Rgb8};

    #[test]
    fn round_trip_is_close_and_deterministic() {
        let (w, h) = (64, 48);
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[(x * 4) as u8, (y * 5) as u8, 128]);
            }
        }
        let img = Rgb8::new(w, h, data);
        let mut a = Vec::new();
        encode_jpeg(img.view(), 95, &mut a).unwrap();
        let mut b = Vec::new();
        encode_jpeg(img.view(), 95, &mut b).unwrap();
        assert_eq!(a, b);
        let back = decode_bytes(&a, &DecodeOptions::default()).unwrap();
        assert_eq!((back.width, back.height), (w, h));
        let err: f64 = back
            .data
            .iter()
            .zip(&img.data)
            .map(|(p, q)| (*p as f64 - *q as f64).abs())
            .sum::<f64>()
            / img.data.len() as f64;
        assert!(err < 2.0, "mean abs error {err}");
    }

    #[test]
    fn strided_view_encodes_like_its_copy() {
        let img = Rgb8::new(32, 32, (0..32 * 32 * 3).map(|i| (i % 251) as u8).collect());
        let view = img.crop(8, 8, 16, 16);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode_jpeg(view, 90, &mut a).unwrap();
        encode_jpeg(view.to_owned().view(), 90, &mut b).unwrap();
        assert_eq!(a, b);
    }
}
