//! Fuzzing with proptest: the entry points that read files we did not
//! write get random bytes and mutated valid files, and must return a value or an
//! error, never panic. `PROPTEST_CASES` sets the number of cases per target (CI runs
//! many more than the default of a `cargo test`); a failure is shrunk to a minimal
//! input, to be turned into a regression test.

use std::path::Path;

use dlas_core::image::{
    decode_bytes, decode_bytes_reduced, encode_jpeg, DecodeOptions, Region, Rgb8,
};
use dlas_core::index::folder::FolderIndex;
use dlas_core::index::{cache, CacheMode, RootIndex};
use dlas_core::torchfile::read_centers_bytes;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn gradient(w: usize, h: usize) -> Rgb8 {
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            data.extend_from_slice(&[
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x + y) % 256) as u8,
            ]);
        }
    }
    Rgb8::new(w, h, data)
}

fn jpeg_seed() -> Vec<u8> {
    let mut out = Vec::new();
    encode_jpeg(gradient(40, 24).view(), 80, &mut out).unwrap();
    out
}

fn png_seed() -> Vec<u8> {
    let img = gradient(20, 12);
    let buf = image::RgbImage::from_raw(20, 12, img.data).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    buf.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// `gradient(w, h)` encoded as `format` by the `image` crate's encoders.
fn encoded(format: image::ImageFormat, w: usize, h: usize) -> Vec<u8> {
    let buf = image::RgbImage::from_raw(w as u32, h as u32, gradient(w, h).data).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    buf.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A PNG chunk: length, type, data, CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out
}

/// `png` with `extra` inserted right after its IHDR chunk (before the pixels).
fn with_chunk(png: &[u8], extra: &[u8]) -> Vec<u8> {
    let at = 8 + 12 + 13;
    [&png[..at], extra, &png[at..]].concat()
}

/// A zlib stream of `1 + 258 * copies` zero bytes, a few bytes per kilobyte: one
/// fixed-Huffman block holding a literal zero, then `copies` copies of 258 bytes from
/// distance 1. (Made by hand: no test input is stored, and no compressor is needed.)
fn zeros_zlib(copies: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        /// `len` bits of `value`, least significant first (headers, extra bits).
        fn put(&mut self, value: u64, len: u32) {
            self.acc |= value << self.n;
            self.n += len;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// A Huffman code of `len` bits, most significant first.
        fn code(&mut self, code: u64, len: u32) {
            self.put(code.reverse_bits() >> (64 - len), len);
        }
    }
    let mut b = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        n: 0,
    };
    b.put(1, 1); // last block
    b.put(1, 2); // fixed Huffman codes
    b.code(0x30, 8); // literal 0
    for _ in 0..copies {
        b.code(0xC5, 8); // length 258 (symbol 285)
        b.code(0, 5); // distance 1
    }
    b.code(0, 7); // end of block
    if b.n > 0 {
        b.out.push(b.acc as u8);
    }
    // Adler-32 of n zeros: a = 1, b = n (mod 65521).
    let n = (1 + 258 * copies as u64) % 65521;
    b.out.extend_from_slice(&((n << 16) | 1).to_be_bytes()[4..]);
    b.out
}

/// The bytes before a metadata chunk's compressed payload: keyword (or profile name),
/// NUL, then the compression fields of its kind.
fn metadata_head(kind: &[u8; 4]) -> &'static [u8] {
    match kind {
        b"iCCP" => b"profile\0\0",
        b"zTXt" => b"Comment\0\0",
        b"iTXt" => b"Comment\0\x01\0en\0\0",
        _ => b"Comment\0",
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/torchfile")
            .join(name),
    )
    .unwrap()
}

/// A seed with up to 16 bytes replaced and, maybe, cut short.
fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = seed.len();
    (
        prop::collection::vec((0..n, any::<u8>()), 0..16),
        prop::option::of(0..n),
    )
        .prop_map(move |(edits, cut)| {
            let mut b = seed.clone();
            for (i, v) in edits {
                b[i] = v;
            }
            if let Some(c) = cut {
                b.truncate(c);
            }
            b
        })
}

fn tree_caches() -> (Vec<u8>, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("dlas-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for chunk in ["a", "b_000000000001", "c"] {
        std::fs::create_dir_all(dir.join(chunk)).unwrap();
        for t in 1..4 {
            std::fs::write(dir.join(chunk).join(format!("{t:08}.jpg")), b"x").unwrap();
        }
    }
    std::fs::write(dir.join("c").join("other name.jpg"), b"x").unwrap();
    let chunks = cache::encode(&RootIndex::open(&dir, CacheMode::Off).unwrap());
    let folder = FolderIndex::open(&dir, CacheMode::Off).unwrap().encode();
    std::fs::remove_dir_all(&dir).unwrap();
    (chunks, folder)
}

#[test]
fn zeros_zlib_inflates_to_zeros() {
    for copies in [0, 1, 7, 1000] {
        let out = fdeflate::decompress_to_vec(&zeros_zlib(copies)).unwrap();
        assert_eq!(out, vec![0; 1 + 258 * copies]);
    }
}

/// An ICC profile inflating past the metadata limit is refused by name, without
/// inflating more than the limit; text chunks are never inflated, so the same payload
/// there decodes; a profile within the limit decodes.
#[test]
fn png_metadata_bombs_are_refused_or_left_compressed() {
    let limit = dlas_core::image::METADATA_MAX_BYTES as usize;
    let bomb = zeros_zlib(limit / 258 + 1);
    let png = png_seed();
    let opts = DecodeOptions::default();
    for kind in [b"iCCP", b"zTXt", b"iTXt"] {
        let file = with_chunk(&png, &chunk(kind, &[metadata_head(kind), &bomb].concat()));
        let got = decode_bytes(&file, &opts);
        if kind == b"iCCP" {
            let err = got.unwrap_err().to_string();
            assert!(
                err.contains("ICC profile") && err.contains("memory limit"),
                "{err}"
            );
        } else {
            let img = got.unwrap();
            assert_eq!((img.width, img.height), (20, 12));
        }
    }
    let small = chunk(
        b"iCCP",
        &[metadata_head(b"iCCP"), &zeros_zlib(1000)].concat(),
    );
    let img = decode_bytes(&with_chunk(&png, &small), &opts).unwrap();
    assert_eq!(img.data, decode_bytes(&png, &opts).unwrap().data);
    // Raw metadata past the limit (a 70 MB EXIF chunk) is refused by name too.
    let exif = chunk(b"eXIf", &vec![0; limit + (6 << 20)]);
    let err = decode_bytes(&with_chunk(&png, &exif), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("metadata") && err.contains("memory limit"),
        "{err}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn decode_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode_bytes(&bytes, &DecodeOptions::default());
    }

    #[test]
    fn decode_never_panics_on_mutated_jpeg(bytes in mutated(jpeg_seed())) {
        if let Ok(img) = decode_bytes(&bytes, &DecodeOptions::default()) {
            prop_assert_eq!(img.data.len(), img.width * img.height * 3);
        }
    }

    #[test]
    fn reduced_decode_never_panics_on_mutated_jpeg(
        bytes in mutated(jpeg_seed()),
        k in prop::sample::select(vec![1usize, 2, 4, 8]),
        corner in (0.0f64..1.0, 0.0f64..1.0),
    ) {
        // A region from whatever size the header declares, as the loaders ask.
        let got = decode_bytes_reduced(&bytes, &DecodeOptions::default(), |w, h| {
            let (top, left) = ((corner.0 * h as f64) as usize, (corner.1 * w as f64) as usize);
            let region = Region { top, left, height: h - top, width: w - left };
            Some((region, k))
        });
        if let Ok(Some(part)) = got {
            prop_assert_eq!(part.img.data.len(), part.img.width * part.img.height * 3);
            prop_assert!(part.reduction == 1 || part.reduction == k);
        }
    }

    #[test]
    fn decode_never_panics_on_mutated_png(bytes in mutated(png_seed())) {
        if let Ok(img) = decode_bytes(&bytes, &DecodeOptions::default()) {
            prop_assert_eq!(img.data.len(), img.width * img.height * 3);
        }
    }

    /// A PNG with a metadata chunk before its pixels: iCCP, zTXt, iTXt, tEXt, eXIf or an
    /// unknown ancillary one, holding random bytes, a compressed random payload or a
    /// compressed run of zeros, with its declared length right or anything (up to 2^32
    /// - 1: far past the end of the file), its CRC right or not.
    #[test]
    fn decode_never_panics_on_png_metadata(
        kind in prop::sample::select(vec![*b"iCCP", *b"zTXt", *b"iTXt", *b"tEXt", *b"eXIf", *b"zzZz"]),
        payload in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| fdeflate::compress_to_vec(&b)),
            (0usize..200).prop_map(zeros_zlib),
        ],
        with_head in any::<bool>(),
        declared in prop::option::of(any::<u32>()),
        bad_crc in any::<bool>(),
        png in Just(png_seed()),
    ) {
        let data = if with_head { [metadata_head(&kind), &payload].concat() } else { payload };
        let mut extra = chunk(&kind, &data);
        if let Some(len) = declared {
            extra[..4].copy_from_slice(&len.to_be_bytes());
        }
        if bad_crc {
            let n = extra.len();
            extra[n - 1] ^= 0x5a;
        }
        if let Ok(img) = decode_bytes(&with_chunk(&png, &extra), &DecodeOptions::default()) {
            prop_assert_eq!((img.width, img.height), (20, 12));
            prop_assert_eq!(img.data.len(), 20 * 12 * 3);
        }
    }

    #[test]
    fn decode_never_panics_on_mutated_webp_bmp_ppm(
        webp in mutated(encoded(image::ImageFormat::WebP, 20, 12)),
        bmp in mutated(encoded(image::ImageFormat::Bmp, 20, 12)),
        ppm in mutated(encoded(image::ImageFormat::Pnm, 20, 12)),
    ) {
        for bytes in [webp, bmp, ppm] {
            if let Ok(img) = decode_bytes(&bytes, &DecodeOptions::default()) {
                prop_assert_eq!(img.data.len(), img.width * img.height * 3);
            }
        }
    }

    #[test]
    fn centers_reader_never_panics(zip in mutated(fixture("centers_zip.pt")),
                                   legacy in mutated(fixture("centers_legacy.pt"))) {
        let _ = read_centers_bytes(&zip);
        let _ = read_centers_bytes(&legacy);
    }

    #[test]
    fn index_caches_are_rejected_or_consistent((chunks, folder) in Just(tree_caches())
        .prop_flat_map(|(c, f)| (mutated(c), mutated(f)))) {
        if let Some(index) = cache::decode(&chunks) {
            // A cache that parses is used: every accessor must stay in range.
            for c in 0..index.chunks.len() {
                for t in 0..index.chunks[c].tile_count as usize {
                    let _ = index.tile_path(c, t);
                    let _ = index.centre(c, t);
                }
            }
        }
        if let Some(listing) = FolderIndex::decode(&folder) {
            for i in 0..listing.len() {
                let _ = listing.path(i);
                let _ = listing.siblings(i);
            }
        }
    }
}
