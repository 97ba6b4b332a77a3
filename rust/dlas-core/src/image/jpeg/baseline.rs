//! Decoding the JPEGs tiles are made of, with libjpeg-turbo's exact pixels, faster.
//!
//! Chunk tiles (ours and DLAS's) and most photos are baseline, Huffman-coded YCbCr
//! JPEGs, 4:2:0 (tiles) or 4:2:2 and 4:4:4 (many cameras and editors), and decoding
//! them is most of what loading a sample costs. About a
//! third of libjpeg-turbo's time on a tile goes to Huffman decoding, which
//! [`super::huffman_decode`] does faster; the coefficients then go to libjpeg-turbo's
//! own AVX2 routines ([`super::libjpeg_simd`]). The pixels are therefore libjpeg-turbo's
//! by construction once the coefficients are (tested against it on many sizes and
//! qualities and on damaged files), and no per-image setup is paid. Pure-Rust JPEG
//! decoders use other transforms and upsampling, so their pixels differ from OpenCV's
//! (DLAS's).
//!
//! Anything else or unusual returns `None` and the caller decodes the file with
//! libjpeg-turbo, so that its errors and warnings still decide what a damaged file
//! gives: progressive or arithmetic coding, other sampling factors (and chroma two
//! samples wide or less, which libjpeg upsamples without its "fancy" filter), 16-bit tables,
//! restart markers, Adobe or RGB colour, a JFIF version libjpeg warns about, a scan
//! that runs past its data or leaves bytes over, anything but EOI after the scan, a
//! code missing from its table, a run past the 64th coefficient. It needs AVX2 (the
//! routines are the AVX2 ones).

use super::huffman_decode::{block, unstuff, Bits, Huff};
use super::libjpeg_simd::{colour, colour_full, colour_h2v1, samples, Coefs};
use super::markers::{self, Markers};
use crate::image::Rgb8;

/// What the headers say, for the layouts decoded here.
struct Header {
    width: usize,
    height: usize,
    /// Luma's sampling factors `(h, v)`: (2, 2) for 4:2:0, (2, 1) for 4:2:2, (1, 1)
    /// for 4:4:4; chroma's are (1, 1).
    luma: (usize, usize),
    /// Quantisation steps of Y, Cb, Cr in natural order.
    steps: [[i32; 64]; 3],
    /// (DC, AC) table of Y, Cb, Cr.
    tables: [(usize, usize); 3],
    /// Offset of the entropy-coded segment.
    scan: usize,
}

/// Reads the markers up to the first scan; `None` for anything but a baseline (or
/// extended sequential Huffman) 8-bit YCbCr 4:2:0, 4:2:2 or 4:4:4 frame with one
/// interleaved scan of all three components, no restart interval, no Adobe marker.
fn headers(bytes: &[u8], huff: &mut [[Option<Huff>; 4]; 2]) -> Option<Header> {
    let mut quant: [Option<[i32; 64]>; 4] = [None; 4];
    // (id, quantisation table) of each frame component.
    let mut comps: Option<[(u8, usize); 3]> = None;
    let (mut width, mut height) = (0, 0);
    let mut luma = (0, 0);
    let mut segments = Markers::new(bytes).ok()?;
    loop {
        let (marker, seg) = segments.next_segment()?;
        match marker {
            // SOF0 / SOF1: 8-bit, three components: Y 2x2, 2x1 or 1x1, Cb 1x1, Cr 1x1.
            markers::SOF0 | markers::SOF1 => {
                let frame = markers::Frame::parse(seg)?;
                let c = frame.components::<3>()?;
                if comps.is_some() || frame.precision != 8 {
                    return None;
                }
                height = frame.height as usize;
                width = frame.width as usize;
                let sampling = c.map(|c| c.sampling);
                // Component ids R, G, B make libjpeg read the frame as RGB.
                let ids = c.map(|c| c.id);
                // libjpeg refuses sides above 65500 (JPEG_MAX_DIMENSION).
                let sides = (1..=65500).contains(&height) && (1..=65500).contains(&width);
                luma = match sampling {
                    [0x22, 0x11, 0x11] => (2, 2),
                    [0x21, 0x11, 0x11] => (2, 1),
                    [0x11, 0x11, 0x11] => (1, 1),
                    _ => return None,
                };
                // Chroma of 1 or 2 samples a row: libjpeg upsamples it plainly.
                let narrow = luma.0 == 2 && width.div_ceil(2) <= 2;
                if ids == [b'R', b'G', b'B'] || !sides || narrow {
                    return None;
                }
                let mut cs = [(0u8, 0usize); 3];
                for (i, slot) in cs.iter_mut().enumerate() {
                    let t = c[i].table as usize;
                    if t > 3 || ids[..i].contains(&ids[i]) {
                        return None;
                    }
                    *slot = (ids[i], t);
                }
                comps = Some(cs);
            }
            markers::DHT => {
                for table in markers::huffman_tables(seg) {
                    let t = table?;
                    let (class, id) = (t.class as usize, t.id as usize);
                    if class > 1 || id > 3 {
                        return None;
                    }
                    huff[class][id] = Some(Huff::new(&t.counts, t.symbols, class == 0)?);
                }
            }
            markers::DQT => {
                for table in markers::quant_tables(seg) {
                    let t = table?;
                    // 16-bit tables are left to libjpeg-turbo.
                    if t.wide || t.id > 3 {
                        return None;
                    }
                    quant[t.id as usize] = Some(t.steps.map(i32::from));
                }
            }
            // DRI: a zero interval is no restart interval.
            markers::DRI => {
                if seg != [0, 0] {
                    return None;
                }
            }
            // APP14 "Adobe" can make libjpeg read the frame as RGB.
            markers::APP14 if markers::is_adobe(seg) => return None,
            // A JFIF version other than 1.x is a libjpeg warning.
            markers::APP0 if markers::jfif_version(seg).is_some_and(|(major, _)| major != 1) => {
                return None
            }
            _ if markers::is_app_or_comment(marker) => {}
            markers::SOS => {
                let cs = comps?;
                let scan = markers::Scan::parse(seg)?;
                let selectors = scan.components::<3>()?;
                if !scan.is_sequential() {
                    return None;
                }
                let mut steps = [[0i32; 64]; 3];
                let mut tables = [(0, 0); 3];
                for (i, sel) in selectors.into_iter().enumerate() {
                    let (d, a) = (sel.dc as usize, sel.ac as usize);
                    if sel.id != cs[i].0 || d > 3 || a > 3 {
                        return None;
                    }
                    huff[0][d].as_ref()?;
                    huff[1][a].as_ref()?;
                    steps[i] = quant[cs[i].1]?;
                    tables[i] = (d, a);
                }
                return Some(Header {
                    width,
                    height,
                    luma,
                    steps,
                    tables,
                    scan: segments.offset(),
                });
            }
            _ => return None,
        }
    }
}

/// `bytes` decoded to RGB as libjpeg-turbo would with its default (accurate) settings,
/// or `None` when this decoder leaves the file to libjpeg-turbo (see the module
/// documentation). Once the headers are read and taken, `go(width, height)` is asked
/// whether to decode at all (it checks the pixel limit and the region wanted); it is
/// not called when the headers are left to libjpeg-turbo.
pub(crate) fn decode(bytes: &[u8], go: impl FnOnce(usize, usize) -> bool) -> Option<Rgb8> {
    if !crate::cpu::features().avx2 {
        return None;
    }
    decode_frame(bytes, go)
}

/// The most pixels a frame decoded here has. This decoder holds the whole frame's
/// planes before converting them, where libjpeg-turbo works a few rows at a time in
/// cache: on photos of about 4 MP the two take the same time, and above that
/// libjpeg-turbo pulls ahead (a 14.7 MP photo: 22 ms against 41 ms), so larger frames
/// are left to it.
const MAX_PIXELS: usize = 1 << 22;

fn decode_frame(bytes: &[u8], go: impl FnOnce(usize, usize) -> bool) -> Option<Rgb8> {
    let mut huff: [[Option<Huff>; 4]; 2] = Default::default();
    let f = headers(bytes, &mut huff)?;
    if f.width * f.height > MAX_PIXELS || !go(f.width, f.height) {
        return None;
    }
    let (data, real) = unstuff(&bytes[f.scan..])?;
    let mut bits = Bits::new(&data);
    let (hs, vs) = f.luma;
    let (mx, my) = (f.width.div_ceil(8 * hs), f.height.div_ceil(8 * vs));
    let (w, h) = (f.width, f.height);
    let (cw, ch) = (w.div_ceil(hs), h.div_ceil(vs));
    // Rows with room for libjpeg-turbo's whole 32-sample blocks (and the upsampler's
    // extra sample) past the MCUs, zeroed: those routines read that padding too.
    let ys = (8 * hs * mx).next_multiple_of(32) + 32;
    let cs = (8 * mx).next_multiple_of(32) + 32;
    let mut y = vec![0u8; ys * 8 * vs * my];
    let mut cb = vec![0u8; cs * 8 * my];
    let mut cr = vec![0u8; cs * 8 * my];
    // The luma blocks of an MCU, in the order they are coded.
    let luma_blocks: Vec<(usize, usize)> = (0..vs)
        .flat_map(|dy| (0..hs).map(move |dx| (8 * dx, 8 * dy)))
        .collect();
    let tab = |i: usize| {
        let (d, a) = f.tables[i];
        (huff[0][d].as_ref().unwrap(), huff[1][a].as_ref().unwrap())
    };
    let t = [tab(0), tab(1), tab(2)];
    let mut pred = [0i32; 3];
    let steps = f.steps.map(|q| Coefs(q.map(|v| v as i16)));
    let mut coef = Coefs([0; 64]);
    for r in 0..my {
        for c in 0..mx {
            if bits.pos > real + 8 {
                // Decoding zeros past the end: libjpeg-turbo warns of that.
                return None;
            }
            for &(dx, dy) in &luma_blocks {
                coef.0 = [0; 64];
                let ac = block(&mut bits, t[0].0, t[0].1, &mut pred[0], &mut coef.0)?;
                let out = &mut y[(8 * vs * r + dy) * ys + 8 * hs * c + dx..];
                samples(ac, &coef, &steps[0], out, ys);
            }
            for (k, plane) in [&mut cb, &mut cr].into_iter().enumerate() {
                coef.0 = [0; 64];
                let (dc, ac) = t[k + 1];
                let ac = block(&mut bits, dc, ac, &mut pred[k + 1], &mut coef.0)?;
                samples(
                    ac,
                    &coef,
                    &steps[k + 1],
                    &mut plane[8 * r * cs + 8 * c..],
                    cs,
                );
            }
        }
    }
    // Every bit of the scan used, and none past it: libjpeg-turbo reads no more and
    // no less without a warning (its encoder pads the last byte with ones).
    if bits.consumed() > 8 * real || bits.consumed().div_ceil(8) != real {
        return None;
    }
    let rgb = match f.luma {
        (2, 2) => colour(&mut y, ys, [&mut cb, &mut cr], cs, (w, h), (cw, ch)),
        (2, 1) => colour_h2v1(&mut y, ys, [&mut cb, &mut cr], cs, (w, h), cw),
        _ => colour_full(&mut y, ys, [&mut cb, &mut cr], cs, (w, h)),
    };
    Some(Rgb8::new(w, h, rgb))
}

#[cfg(test)]
mod tests {
    use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

    use super::*;
    use crate::image::jpeg::turbo_decode::libjpeg_turbo_only;
    use crate::image::{decode_bytes, DecodeOptions};

    /// Gradients, a 0/255 checkerboard, flat areas and noise (the encoder's test
    /// image): every coefficient magnitude, long zero runs, bytes to unstuff.
    fn picture(w: usize, h: usize, seed: u32) -> Rgb8 {
        crate::image::encode::tests::hard_image(w, h, seed as u64)
    }

    fn jpeg(
        img: &Rgb8,
        quality: i32,
        subsamp: Subsamp,
        tweak: impl Fn(&mut Compressor),
    ) -> Vec<u8> {
        let mut c = Compressor::new().unwrap();
        c.set_quality(quality).unwrap();
        c.set_subsamp(subsamp).unwrap();
        tweak(&mut c);
        c.compress_to_vec(Image {
            pixels: &img.data[..],
            width: img.width,
            pitch: img.width * 3,
            height: img.height,
            format: PixelFormat::RGB,
        })
        .unwrap()
    }

    fn ours(bytes: &[u8]) -> Option<Rgb8> {
        decode(bytes, |_, _| true)
    }

    fn avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// Every 4:2:0, 4:2:2 and 4:4:4 file libjpeg-turbo writes, at any size (odd ones
    /// included: the edge chroma is replicated as libjpeg does) and quality, with
    /// optimised Huffman tables too, decodes here to exactly libjpeg-turbo's pixels;
    /// chroma two samples wide or less (which libjpeg upsamples plainly) is left to it.
    #[test]
    fn baseline_420_422_444_decode_to_libjpeg_turbos_pixels() {
        if !avx2() {
            return assert!(
                ours(&jpeg(&picture(16, 16, 1), 90, Subsamp::Sub2x2, |_| ())).is_none()
            );
        }
        let sizes = [
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 9),
            (5, 4),
            (7, 5),
            (8, 8),
            (16, 16),
            (17, 33),
            (31, 2),
            (129, 255),
            (256, 256),
            (300, 201),
        ];
        for (i, &(w, h)) in sizes.iter().enumerate() {
            let img = picture(w, h, i as u32);
            for subsamp in [Subsamp::Sub2x2, Subsamp::Sub2x1, Subsamp::None] {
                for quality in [1, 10, 50, 75, 90, 95, 100] {
                    for optimize in [false, true] {
                        let bytes = jpeg(&img, quality, subsamp, |c| {
                            c.set_optimize(optimize).unwrap()
                        });
                        let want = libjpeg_turbo_only(&bytes).unwrap();
                        let what = format!("{w}x{h} {subsamp:?} q{quality} (optimised {optimize})");
                        if subsamp != Subsamp::None && w <= 4 {
                            assert!(ours(&bytes).is_none(), "{what} decoded here");
                            let via = decode_bytes(&bytes, &DecodeOptions::default()).unwrap();
                            assert!(via == want, "{what} differs");
                            continue;
                        }
                        let got =
                            ours(&bytes).unwrap_or_else(|| panic!("{what} left to libjpeg-turbo"));
                        assert!(got == want, "{what} differs");
                    }
                }
            }
        }
    }

    /// Frames over `MAX_PIXELS` are left to libjpeg-turbo; at the limit they are not.
    #[test]
    fn large_frames_are_left_to_libjpeg_turbo() {
        if !avx2() {
            return;
        }
        let at = jpeg(&picture(2048, 2048, 5), 75, Subsamp::Sub2x2, |_| ());
        assert!(ours(&at).is_some());
        let over = jpeg(&picture(2048, 2049, 5), 75, Subsamp::Sub2x2, |_| ());
        assert!(ours(&over).is_none());
        let via = decode_bytes(&over, &DecodeOptions::default()).unwrap();
        assert!(via == libjpeg_turbo_only(&over).unwrap());
    }

    /// Other layouts and codings are left to libjpeg-turbo.
    #[test]
    fn other_layouts_are_left_to_libjpeg_turbo() {
        let img = picture(40, 24, 3);
        for subsamp in [Subsamp::Sub1x2, Subsamp::Sub4x1, Subsamp::Gray] {
            assert!(
                ours(&jpeg(&img, 90, subsamp, |_| ())).is_none(),
                "{subsamp:?}"
            );
        }
        assert!(ours(&jpeg(&img, 90, Subsamp::Sub2x2, |c| c
            .set_progressive(true)
            .unwrap()))
        .is_none());
        // Arithmetic coding, sequential (SOF9) and progressive (SOF10): the same 4:2:0
        // layout, decodable only by libjpeg-turbo.
        for progressive in [false, true] {
            let bytes = jpeg(&img, 90, Subsamp::Sub2x2, |c| {
                c.set_arithmetic(true).unwrap();
                c.set_progressive(progressive).unwrap();
            });
            let sof = if progressive { 0xCA } else { 0xC9 };
            assert!(
                bytes.windows(2).any(|w| w == [0xFF, sof]),
                "no SOF{sof:02X}"
            );
            assert!(
                ours(&bytes).is_none(),
                "arithmetic, progressive {progressive}"
            );
            let ours_or_turbo = decode_bytes(&bytes, &DecodeOptions::default()).unwrap();
            let plain = decode_bytes(
                &jpeg(&img, 90, Subsamp::Sub2x2, |c| {
                    c.set_progressive(progressive).unwrap()
                }),
                &DecodeOptions::default(),
            )
            .unwrap();
            // Entropy coding is lossless: the same coefficients, the same pixels.
            assert!(
                ours_or_turbo == plain,
                "arithmetic, progressive {progressive}"
            );
        }
        // Restart markers every MCU.
        let mut rst = jpeg(&img, 90, Subsamp::Sub2x2, |_| ());
        let sos = rst.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        rst.splice(sos..sos, [0xFF, 0xDD, 0, 4, 0, 1]);
        assert!(ours(&rst).is_none());
    }

    /// Whatever happens to the bytes of a file, a decode here is only ever one that
    /// libjpeg-turbo makes without error or warning, with the same pixels; every
    /// other case is left to it.
    #[test]
    fn damaged_files_decode_here_only_as_libjpeg_turbo_decodes_them() {
        if !avx2() {
            return;
        }
        for subsamp in [Subsamp::Sub2x2, Subsamp::Sub2x1, Subsamp::None] {
            damaged_files_of(&jpeg(&picture(48, 40, 9), 85, subsamp, |_| ()));
        }
    }

    fn damaged_files_of(good: &[u8]) {
        let good = good.to_vec();
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for cut in (0..good.len()).step_by(7) {
            cases.push(good[..cut].to_vec());
        }
        let mut state = 12345u32;
        for _ in 0..20000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let mut bad = good.clone();
            let at = state as usize % bad.len();
            bad[at] = match state >> 28 {
                0 => 0xFF,
                1 => 0x00,
                _ => bad[at] ^ (1 << ((state >> 8) % 8)),
            };
            cases.push(bad);
        }
        // Bytes past EOI are never read, by either.
        let mut tail = good.clone();
        tail.extend_from_slice(b"trailing junk");
        cases.push(tail.clone());
        let (mut taken, mut left) = (0, 0);
        for bytes in &cases {
            match ours(bytes) {
                Some(img) => {
                    let want =
                        libjpeg_turbo_only(bytes).expect("decoded here, refused by libjpeg-turbo");
                    assert!(
                        img == want,
                        "decoded here with other pixels than libjpeg-turbo's"
                    );
                    taken += 1;
                }
                None => left += 1,
            }
        }
        assert!(ours(&tail).is_some());
        // Many flips only change pixels (both decode them); many others are damage.
        assert!(taken > 100 && left > 100, "{taken} taken, {left} left");
    }

    /// Coefficients far past what 8-bit pixels give (a crafted file) still decode to
    /// libjpeg-turbo's samples: the transform is its own, 16-bit wrapping included.
    #[test]
    fn coefficients_out_of_pixel_range_decode_as_libjpeg_turbo_does() {
        if !avx2() {
            return;
        }
        // Quality 100 (all steps 1), then every luma step raised to 255: the same
        // coefficients now dequantise far past the range of real pixels.
        let mut bytes = jpeg(&picture(32, 32, 4), 100, Subsamp::Sub2x2, |_| ());
        let dqt = bytes.windows(2).position(|w| w == [0xFF, 0xDB]).unwrap();
        for b in &mut bytes[dqt + 5..dqt + 5 + 64] {
            *b = 255;
        }
        assert!(ours(&bytes).unwrap() == libjpeg_turbo_only(&bytes).unwrap());
    }
}
