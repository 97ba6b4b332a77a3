//! Baseline JPEG encoding (4:2:0 chroma, standard tables), as OpenCV's `imencode` does
//! by default, by libjpeg-turbo (the library OpenCV encodes with). Deterministic.

use super::jpeg::turbo_encode;
use super::Rgb8View;
use crate::error::{CoreError, Result};

/// The JPEG encoder (and decoder), as extraction summaries name it; its version and
/// SIMD level are in [`crate::build_info`].
pub const JPEG_ENCODER: &str = "libjpeg-turbo";

/// Encodes `img` as a JPEG of the given quality (1-100), appending to `out`.
pub fn encode_jpeg(img: Rgb8View<'_>, quality: u8, out: &mut Vec<u8>) -> Result<()> {
    if img.width > u16::MAX as usize || img.height > u16::MAX as usize {
        return Err(CoreError::Encode(format!(
            "{}x{} exceeds JPEG's 65535 pixel side",
            img.width, img.height
        )));
    }
    turbo_encode::encode(img, quality.clamp(1, 100), out)
}

/// `img` after a JPEG round trip at `quality` ([`encode_jpeg`], then decoding), row by
/// row through `put(row, [r, g, b])`. Computed without a codec when both sides are
/// multiples of 16 (the same pixels, tested); otherwise encoded and decoded.
pub fn jpeg_round_trip(
    img: Rgb8View<'_>,
    quality: u8,
    mut put: impl FnMut(usize, [&[u8]; 3]),
) -> Result<()> {
    if backend::round_trip(img, quality, &mut put)? {
        return Ok(());
    }
    let mut bytes = Vec::new();
    encode_jpeg(img, quality, &mut bytes)?;
    let back = super::decode_bytes(&bytes, &super::DecodeOptions::default())?;
    let w = back.width;
    let mut rgb = [vec![0u8; w], vec![0u8; w], vec![0u8; w]];
    for y in 0..back.height {
        for (x, px) in back.data[y * 3 * w..][..3 * w].chunks_exact(3).enumerate() {
            (rgb[0][x], rgb[1][x], rgb[2][x]) = (px[0], px[1], px[2]);
        }
        put(y, [&rgb[0], &rgb[1], &rgb[2]]);
    }
    Ok(())
}

/// Encodes many tiles cut from one image, all at one quality.
///
/// [`TileSource::new`] can convert the whole image to YCbCr 4:2:0
/// once, transform and quantise every 8x8 block of those planes once, and Huffman-code
/// each block's AC coefficients once (`jpeg::blocks`). A tile whose offsets and sides
/// are multiples of the 16-pixel MCU is then written from those blocks, so overlapping
/// tiles do not convert, transform or code the same pixels again. Colour conversion
/// and chroma downsampling work pixel by pixel and 2x2 block by 2x2 block, and the
/// block coder reproduces libjpeg-turbo's arithmetic, so such a tile's bytes are
/// identical to encoding its crop alone (tested). Other tiles encode their crop.
pub struct TileSource<'a> {
    img: Rgb8View<'a>,
    quality: u8,
    shared: Option<backend::Shared>,
}

/// Side of a 4:2:0 MCU: shared planes serve tiles aligned to it.
pub const MCU: usize = 16;

impl<'a> TileSource<'a> {
    /// `share`: prepare shared planes (worth it when tiles overlap or cover most of
    /// the image).
    pub fn new(img: Rgb8View<'a>, quality: u8, share: bool) -> Result<Self> {
        let quality = quality.clamp(1, 100);
        let shared = match share && img.width >= MCU && img.height >= MCU {
            true => Some(backend::Shared::new(img, quality)?),
            false => None,
        };
        Ok(TileSource {
            img,
            quality,
            shared,
        })
    }

    /// Encodes the `height x width` tile at `(row, col)`, appending to `out`.
    pub fn encode(
        &self,
        row: usize,
        col: usize,
        height: usize,
        width: usize,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(shared) = &self.shared {
            if [row, col, height, width].iter().all(|v| v % MCU == 0) {
                return shared.encode(row, col, height, width, self.quality, out);
            }
        }
        encode_jpeg(self.img.crop(row, col, height, width), self.quality, out)
    }
}

/// What tiles share (planes, coded blocks), and the codec-free round trip.
mod backend {
    use super::super::jpeg::turbo_encode::Planes;
    use super::super::jpeg::{requantise, ycc420_to_rgb, Blocks, Plane, Tables};
    use super::*;
    use crate::image::Rgb8;

    /// What a sharing [`TileSource`] keeps: coded blocks, or (if libjpeg-turbo's
    /// output at this quality is not the baseline 4:2:0 layout the block coder
    /// writes) the planes for libjpeg-turbo to encode from.
    pub(super) enum Shared {
        Blocks(Blocks),
        Planes(Planes),
    }

    impl Shared {
        pub(super) fn new(img: Rgb8View<'_>, quality: u8) -> Result<Self> {
            let planes = Planes::new(img)?;
            Ok(match Tables::at(quality, probe) {
                Some(tables) => Shared::Blocks(Blocks::new(
                    tables,
                    [
                        Plane {
                            data: &planes.y,
                            stride: planes.y_stride,
                        },
                        Plane {
                            data: &planes.cb,
                            stride: planes.c_stride,
                        },
                        Plane {
                            data: &planes.cr,
                            stride: planes.c_stride,
                        },
                    ],
                    img.width,
                    img.height,
                )),
                None => Shared::Planes(planes),
            })
        }

        /// Encodes an MCU-aligned tile.
        pub(super) fn encode(
            &self,
            row: usize,
            col: usize,
            height: usize,
            width: usize,
            quality: u8,
            out: &mut Vec<u8>,
        ) -> Result<()> {
            match self {
                Shared::Blocks(b) => {
                    b.encode(row, col, height, width, out);
                    Ok(())
                }
                Shared::Planes(p) => p.encode(row, col, height, width, quality, out),
            }
        }
    }

    /// `img` after a JPEG round trip at `quality`, computed without a codec: from
    /// libjpeg-turbo's 4:2:0 planes, each block quantised in the DCT domain and
    /// inverse-transformed (`jpeg::requantise`), then libjpeg's upsampling and colour
    /// conversion (`jpeg::colour`). Pixel for pixel what encoding and decoding gives
    /// (tested).
    /// `None` for sides that are not multiples of 16 (libjpeg's edge padding is not
    /// reproduced) or tables the block coder does not handle.
    pub(crate) fn round_trip(
        img: Rgb8View<'_>,
        quality: u8,
        put: impl FnMut(usize, [&[u8]; 3]),
    ) -> Result<bool> {
        let (w, h) = (img.width, img.height);
        if w == 0 || h == 0 || w % MCU != 0 || h % MCU != 0 {
            return Ok(false);
        }
        let Some(tables) = Tables::at(quality.clamp(1, 100), probe) else {
            return Ok(false);
        };
        let mut p = Planes::new(img)?;
        let (ys, cs) = (p.y_stride, p.c_stride);
        requantise(
            &tables,
            [
                (&mut p.y, ys, w, h),
                (&mut p.cb, cs, w / 2, h / 2),
                (&mut p.cr, cs, w / 2, h / 2),
            ],
        );
        ycc420_to_rgb([(&p.y, ys), (&p.cb, cs), (&p.cr, cs)], w, h, put);
        Ok(true)
    }

    /// A 16x16 tile encoded by libjpeg-turbo's tile path: its headers and tables.
    fn probe(quality: u8) -> Option<Vec<u8>> {
        let img = Rgb8::new(16, 16, (0..16 * 16 * 3).map(|i| (i * 7) as u8).collect());
        let mut out = Vec::new();
        Planes::new(img.view())
            .ok()?
            .encode(0, 0, 16, 16, quality, &mut out)
            .ok()?;
        Some(out)
    }
}

#[cfg(test)]
pub(super) mod tests {
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

    #[test]
    fn shared_tiles_are_byte_identical_to_encoding_each_crop() {
        // Odd sides: the planes are padded; tiles touching the last full MCU still fit.
        let img = crate::image::decode::tests::busy(16 * 9 + 5, 16 * 7 + 3);
        let shared = TileSource::new(img.view(), 93, true).unwrap();
        let plain = TileSource::new(img.view(), 93, false).unwrap();
        for (r, c, h, w) in [
            (0, 0, 64, 64),
            (16, 48, 32, 96),
            (96, 128, 16, 16),
            (5, 7, 32, 32),
            (3, 0, 64, 61),
        ] {
            let (mut a, mut b, mut direct) = (Vec::new(), Vec::new(), Vec::new());
            shared.encode(r, c, h, w, &mut a).unwrap();
            plain.encode(r, c, h, w, &mut b).unwrap();
            encode_jpeg(img.crop(r, c, h, w), 93, &mut direct).unwrap();
            assert_eq!(a, direct, "shared ({r},{c}) {h}x{w}");
            assert_eq!(b, direct, "plain ({r},{c}) {h}x{w}");
        }
    }

    /// Images whose blocks reach every coefficient magnitude: gradients, a 0/255
    /// checkerboard (largest AC values, many 0xFF bytes to stuff), flat areas (long
    /// zero runs, ZRL codes) and noise.
    pub(in crate::image) fn hard_image(w: usize, h: usize, seed: u64) -> Rgb8 {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut data = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let px = match ((x / 24) + (y / 24)) % 4 {
                    0 => [(x * 5) as u8, (y * 3) as u8, 255 - (x + y) as u8],
                    1 if (x + y) % 2 == 0 => [255, 255, 255],
                    1 => [0, 0, 0],
                    2 => [200, 30, 90],
                    _ => [s as u8, (s >> 8) as u8, (s >> 16) as u8],
                };
                data.extend_from_slice(&px);
            }
        }
        Rgb8::new(w, h, data)
    }

    #[test]
    fn block_coded_tiles_match_libjpeg_turbo_at_every_quality() {
        for (i, quality) in [1u8, 5, 10, 25, 50, 75, 85, 90, 95, 98, 100]
            .into_iter()
            .enumerate()
        {
            let img = hard_image(16 * 11 + 9, 16 * 8 + 6, i as u64);
            let shared = TileSource::new(img.view(), quality, true).unwrap();
            assert!(
                matches!(shared.shared, Some(backend::Shared::Blocks(_))),
                "quality {quality}: the block coder was not used"
            );
            for (r, c, h, w) in [
                (0, 0, 128, 176),
                (16, 32, 64, 64),
                (112, 160, 16, 16),
                (48, 0, 32, 128),
            ] {
                let (mut a, mut direct) = (Vec::new(), Vec::new());
                shared.encode(r, c, h, w, &mut a).unwrap();
                encode_jpeg(img.crop(r, c, h, w), quality, &mut direct).unwrap();
                assert!(a == direct, "quality {quality}, tile ({r},{c}) {h}x{w}");
            }
        }
    }

    #[test]
    fn block_coded_photo_like_tiles_match_libjpeg_turbo() {
        let img = crate::image::decode::tests::busy(512, 384);
        for quality in [60u8, 95] {
            let shared = TileSource::new(img.view(), quality, true).unwrap();
            for r in (0..=128).step_by(128) {
                for c in (0..=256).step_by(128) {
                    let (mut a, mut direct) = (Vec::new(), Vec::new());
                    shared.encode(r, c, 256, 256, &mut a).unwrap();
                    encode_jpeg(img.crop(r, c, 256, 256), quality, &mut direct).unwrap();
                    assert!(a == direct, "quality {quality}, tile ({r},{c})");
                }
            }
        }
    }

    #[test]
    fn round_trip_is_encoding_then_decoding() {
        let opts = DecodeOptions::default();
        for (i, (w, h)) in [
            (16, 16),
            (48, 32),
            (128, 128),
            (256, 112),
            (40, 24),
            (32, 16),
        ]
        .into_iter()
        .enumerate()
        {
            for (j, quality) in [1u8, 10, 15, 40, 75, 95, 100].into_iter().enumerate() {
                let img = if (i + j) % 2 == 0 {
                    hard_image(w, h, (i * 7 + j) as u64)
                } else {
                    crate::image::decode::tests::busy(w, h)
                };
                let mut fast = vec![0u8; 3 * w * h];
                jpeg_round_trip(img.view(), quality, |y, [r, g, b]| {
                    for x in 0..w {
                        fast[3 * (w * y + x)..][..3].copy_from_slice(&[r[x], g[x], b[x]]);
                    }
                })
                .unwrap();
                let mut bytes = Vec::new();
                encode_jpeg(img.view(), quality, &mut bytes).unwrap();
                let slow = decode_bytes(&bytes, &opts).unwrap();
                let differ = fast.iter().zip(&slow.data).filter(|(a, b)| a != b).count();
                assert!(
                    differ == 0,
                    "{w}x{h} at quality {quality}: {differ} values differ"
                );
                let aligned = w % 16 == 0 && h % 16 == 0;
                let used = backend::round_trip(img.view(), quality, |_, _| {}).unwrap();
                assert_eq!(used, aligned, "{w}x{h}: codec-free path");
            }
        }
    }
}
