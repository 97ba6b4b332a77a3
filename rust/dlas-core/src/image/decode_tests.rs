//! Tests of [`super`]: regions, limits, and every kind of JPEG libjpeg-turbo decodes.

use super::*;
use crate::image::jpeg::turbo_decode::cmyk_to_rgb;

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

/// A JPEG of `img` (quality 92) in each chroma layout libjpeg-turbo writes.
fn every_layout(img: &Rgb8) -> Vec<(turbojpeg::Subsamp, Vec<u8>)> {
    use turbojpeg::{Image, PixelFormat, Subsamp};
    let layouts = [
        Subsamp::None,
        Subsamp::Sub2x1,
        Subsamp::Sub2x2,
        Subsamp::Sub1x2,
        Subsamp::Sub4x1,
        Subsamp::Gray,
    ];
    layouts
        .into_iter()
        .map(|subsamp| {
            let image = Image {
                pixels: &img.data[..],
                width: img.width,
                pitch: img.width * 3,
                height: img.height,
                format: PixelFormat::RGB,
            };
            (
                subsamp,
                turbojpeg::compress(image, 92, subsamp).unwrap().to_vec(),
            )
        })
        .collect()
}

/// libjpeg-turbo decodes only the region (plus margins); its pixels must equal the
/// same rectangle of a whole-frame decode for every chroma subsampling, at offsets
/// on, just after and between MCU boundaries.
#[test]
fn cropped_jpeg_decode_equals_the_whole_decode() {
    for (subsamp, jpeg) in every_layout(&busy(331, 269)) {
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

/// libjpeg-turbo's whole frame scaled by 1/`k`, through the turbojpeg crate.
fn scaled_whole(jpeg: &[u8], k: usize) -> Rgb8 {
    let mut d = turbojpeg::Decompressor::new().unwrap();
    let header = d.read_header(jpeg).unwrap();
    d.set_scaling_factor(turbojpeg::ScalingFactor::new(1, k))
        .unwrap();
    let scaled = header.scaled(turbojpeg::ScalingFactor::new(1, k));
    let mut image = turbojpeg::Image {
        pixels: vec![0u8; scaled.width * scaled.height * 3],
        width: scaled.width,
        pitch: scaled.width * 3,
        height: scaled.height,
        format: turbojpeg::PixelFormat::RGB,
    };
    d.decompress(jpeg, image.as_deref_mut()).unwrap();
    Rgb8::new(scaled.width, scaled.height, image.pixels)
}

/// A reduced decode of a region is libjpeg-turbo's scaled whole frame over that
/// region (in reduced pixels), for every chroma layout, every reduction and regions
/// on and off iMCU boundaries; the reduced frame's size is rounded up.
#[test]
fn reduced_region_decode_equals_the_scaled_whole_frame() {
    for (subsamp, jpeg) in every_layout(&busy(331, 269)) {
        for k in [2, 4, 8] {
            let whole = scaled_whole(&jpeg, k);
            assert_eq!(
                (whole.width, whole.height),
                (331usize.div_ceil(k), 269usize.div_ceil(k))
            );
            for (top, left, height, width) in [
                (0, 0, 331 - 62, 331),
                (17, 33, 201, 197),
                (100, 160, 120, 170),
                (64, 0, 64, 64),
            ] {
                let height = height.min(269 - top);
                let r = Region {
                    top,
                    left,
                    height,
                    width,
                };
                let part = decode_bytes_reduced(&jpeg, &DecodeOptions::default(), |w, h| {
                    assert_eq!((w, h), (331, 269));
                    Some((r, k))
                })
                .unwrap()
                .unwrap();
                assert_eq!(part.reduction, k);
                // The region in reduced pixels, which the part must cover.
                let (t, l) = (top / k, left / k);
                let (b, rt) = ((top + height).div_ceil(k), (left + width).div_ceil(k));
                assert!(part.top <= t && part.left <= l);
                assert!(part.top + part.img.height >= b && part.left + part.img.width >= rt);
                let got = part
                    .img
                    .crop(t - part.top, l - part.left, b - t, rt - l)
                    .to_owned();
                assert_eq!(
                    got,
                    whole.crop(t, l, b - t, rt - l).to_owned(),
                    "{subsamp:?} 1/{k} {r:?}"
                );
            }
        }
    }
}

/// What cannot be decoded reduced comes back whole at full size: other formats, a
/// lossless JPEG; a reduction of 1 is the usual decode.
#[test]
fn reduced_decode_falls_back_to_the_full_frame() {
    let img = busy(67, 45);
    let r = Region {
        top: 10,
        left: 20,
        height: 30,
        width: 40,
    };
    let opts = DecodeOptions::default();
    let png = decode_bytes_reduced(&png_bytes(&img), &opts, |_, _| Some((r, 4)))
        .unwrap()
        .unwrap();
    assert_eq!((png.reduction, png.top, png.left), (1, 0, 0));
    assert_eq!(png.img, img);
    let lossless = deep_jpeg(67, 45, 8, true);
    let got = decode_bytes_reduced(&lossless, &opts, |_, _| Some((r, 2)))
        .unwrap()
        .unwrap();
    assert_eq!((got.reduction, got.img.width, got.img.height), (1, 67, 45));
    assert_eq!(got.img, img);
    let jpeg = tj_jpeg(67, 45, &img.data, turbojpeg::PixelFormat::RGB, |_| {});
    let full = decode_bytes_reduced(&jpeg, &opts, |_, _| Some((Region::full(67, 45), 1)))
        .unwrap()
        .unwrap();
    assert_eq!(full.reduction, 1);
    assert_eq!(full.img, decode_bytes(&jpeg, &opts).unwrap());
    // Nothing asked for: nothing decoded, no error.
    assert!(decode_bytes_reduced(&jpeg, &opts, |_, _| None)
        .unwrap()
        .is_none());
    // A damaged header still fails by name.
    let err = decode_bytes_reduced(&jpeg[..40], &opts, |_, _| Some((r, 2))).unwrap_err();
    assert!(err.to_string().contains("JPEG"), "{err}");
}

/// A JPEG with a stray byte between two markers: our marker reader stops there,
/// libjpeg-turbo decodes past it with a warning. Asked for a reduced region, it comes
/// back whole at full size, as what is not reduced must (not as a full-size crop).
#[test]
fn a_header_only_libjpeg_reads_comes_back_whole_when_reduction_was_allowed() {
    let img = busy(300, 260);
    let mut jpeg = tj_jpeg(300, 260, &img.data, turbojpeg::PixelFormat::RGB, |_| {});
    let dqt = jpeg.windows(2).position(|w| w == [0xFF, 0xDB]).unwrap();
    jpeg.insert(dqt, 0x00);
    let opts = DecodeOptions::default();
    let whole = decode_bytes(&jpeg, &opts).unwrap();
    // Far enough inside that a cropped decode would start past (0, 0).
    let r = Region {
        top: 100,
        left: 120,
        height: 60,
        width: 80,
    };
    let part = decode_bytes_reduced(&jpeg, &opts, |w, h| {
        assert_eq!((w, h), (300, 260));
        Some((r, 2))
    })
    .unwrap()
    .unwrap();
    assert_eq!((part.reduction, part.top, part.left), (1, 0, 0));
    assert_eq!(part.img, whole);
}
