//! Fuzzing (issue 5, item 6) with proptest: the entry points that read files we did not
//! write get random bytes and mutated valid files, and must return a value or an
//! error, never panic. `PROPTEST_CASES` sets the number of cases per target (CI runs
//! many more than the default of a `cargo test`); a failure is shrunk to a minimal
//! input, to be turned into a regression test.

use std::path::Path;

use dlas_core::image::{decode_bytes, encode_jpeg, DecodeOptions, Rgb8};
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
    fn decode_never_panics_on_mutated_png(bytes in mutated(png_seed())) {
        if let Ok(img) = decode_bytes(&bytes, &DecodeOptions::default()) {
            prop_assert_eq!(img.data.len(), img.width * img.height * 3);
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
