//! Unit tests of [`super`]: scale levels, and both kinds of dataset described without
//! writing a cache.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::super::tests::{jpeg, png, temp_dir};
use super::*;
use crate::index::folder::{self, FolderIndex};
use crate::index::{cache, CacheMode, RootIndex, Tile, NO_CENTRE};
use crate::survey::{lossy, SizeCount};
use crate::torchfile::write_centers;

fn tile(width: Option<i32>) -> Tile {
    Tile {
        row: 0,
        col: 0,
        width: width.unwrap_or(NO_CENTRE),
    }
}

#[test]
fn levels_are_the_sorted_distinct_widths_of_a_chunk() {
    let tiles: Vec<Tile> = [Some(128), Some(64), None, Some(64), Some(256), Some(128)]
        .into_iter()
        .map(tile)
        .collect();
    let (widths, levels) = chunk_levels(&tiles);
    assert_eq!(widths, [64, 128, 256]);
    assert_eq!(levels, [Some(1), Some(0), None, Some(0), Some(2), Some(1)]);
    assert_eq!(chunk_levels(&[tile(None)]), (vec![], vec![None]));
    assert_eq!(chunk_levels(&[]), (vec![], vec![]));
}

/// Moves the mtime of `root` and everything under it out of the racy window.
fn age(root: &Path) {
    let past = SystemTime::now() - Duration::from_secs(60);
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
        std::fs::File::open(&p).unwrap().set_modified(past).unwrap();
    }
}

fn chunk(root: &Path, name: &str, tiles: &[(&str, Vec<u8>)], centers: Option<&[(i64, i32)]>) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (t, bytes) in tiles {
        std::fs::write(dir.join(t), bytes).unwrap();
    }
    std::fs::write(dir.join("ref.jpg"), jpeg(32, 32)).unwrap();
    if let Some(c) = centers {
        let entries: Vec<_> = c.iter().map(|&(id, w)| (id, (16, 16), w as i64)).collect();
        write_centers(&dir.join("centers.pt"), &entries).unwrap();
    }
}

fn chunked(ins: Inspection) -> ChunkedReport {
    match ins {
        Inspection::Chunked(r) => r,
        other => panic!("not chunked: {other:?}"),
    }
}

#[test]
fn describes_a_chunked_dataset_without_writing() {
    let root = temp_dir("inspect-chunked");
    let ts = |n: usize, w: usize| -> Vec<(String, Vec<u8>)> {
        (1..=n)
            .map(|i| (format!("{i:08}.jpg"), jpeg(w, w)))
            .collect()
    };
    let a = ts(5, 24);
    let a: Vec<(&str, Vec<u8>)> = a.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    // a: widths 64, 64, 128, 64 and tile 5 without an entry.
    chunk(&root, "a", &a, Some(&[(1, 64), (2, 64), (3, 128), (4, 64)]));
    // b: widths 100 and 50 (levels 1 and 0), one PNG tile of another size.
    chunk(
        &root,
        "b",
        &[
            ("00000001.jpg", jpeg(24, 24)),
            ("00000002.png", png(12, 10)),
        ],
        Some(&[(1, 100), (2, 50)]),
    );
    // c: no centers.pt; its second tile is damaged.
    chunk(
        &root,
        "c",
        &[
            ("00000001.jpg", jpeg(24, 24)),
            ("00000002.jpg", b"junk".to_vec()),
        ],
        None,
    );
    // d: an empty folder; e: an unreadable centers.pt.
    std::fs::create_dir_all(root.join("d")).unwrap();
    chunk(&root, "e", &[("00000001.jpg", jpeg(24, 24))], None);
    std::fs::write(root.join("e/centers.pt"), b"not a torch file").unwrap();
    std::fs::remove_file(root.join("e/ref.jpg")).unwrap();
    std::fs::write(root.join("cache.pth"), b"DLAS").unwrap();
    std::fs::create_dir_all(root.join(".dlas_fast-tmp/x")).unwrap();
    std::fs::write(root.join(".dlas_fast-tmp/x/ref.jpg"), b"ignored").unwrap();
    age(&root);
    let cache_file = root.join(cache::FILE_NAME);

    let opts = InspectOptions { threads: Some(2) };
    let r = chunked(inspect(&root, &opts).unwrap());
    assert!(!cache_file.exists(), "inspect wrote a cache");
    assert_eq!(r.cache.state, CacheState::Missing);
    assert_eq!((r.chunks, r.tiles), (4, 10));
    assert_eq!(r.empty_chunks.examples, ["d"]);
    assert_eq!(r.without_ref.examples, ["e"]);
    assert_eq!(r.without_centers.examples, ["c"]);
    assert_eq!(r.unreadable_centers.count, 1);
    assert!(r.unreadable_centers.examples[0].starts_with("e: "));
    assert_eq!(r.tiles_without_centre, 1 + 2 + 1);
    let size = |w, h, count| SizeCount {
        width: w,
        height: h,
        count,
    };
    assert_eq!(r.tile_sizes, [size(24, 24, 8), size(12, 10, 1)]);
    assert_eq!(r.ref_sizes, [size(32, 32, 3)]);
    assert_eq!(r.unreadable_images.count, 1);
    assert!(r.unreadable_images.examples[0].contains("c/00000002.jpg"));
    let l =
        |level, chunks, tiles, min_width, max_width| (level, chunks, tiles, min_width, max_width);
    let got: Vec<_> = r
        .levels
        .iter()
        .map(|v| l(v.level, v.chunks, v.tiles, v.min_width, v.max_width))
        .collect();
    assert_eq!(got, [l(0, 2, 4, 50, 64), l(1, 2, 2, 100, 128)]);
    assert_eq!(r.levels[0].tile_sizes, [size(24, 24, 3), size(12, 10, 1)]);
    assert!(r.dlas_cache_pth);
    let file_len = |p: &str| std::fs::metadata(root.join(p)).unwrap().len();
    assert_eq!(r.disk.refs, file_len("a/ref.jpg") * 3);
    assert_eq!(
        r.disk.centers,
        file_len("a/centers.pt") + file_len("b/centers.pt") + file_len("e/centers.pt")
    );
    assert_eq!(
        r.disk.tiles,
        (1..=5)
            .map(|i| file_len(&format!("a/{i:08}.jpg")))
            .sum::<u64>()
            + file_len("b/00000001.jpg")
            + file_len("b/00000002.png")
            + file_len("c/00000001.jpg")
            + file_len("c/00000002.jpg")
            + file_len("e/00000001.jpg")
    );
    assert_eq!(r.disk.other, 4 + 7);
    let json = serde_json::to_value(Inspection::Chunked(r)).unwrap();
    assert_eq!(json["kind"], "chunked");
    assert_eq!(json["cache"]["state"], "missing");

    // The loaders write the cache: fresh. A new chunk: stale (and left alone).
    let index = RootIndex::open(&root, CacheMode::Use).unwrap();
    assert_eq!(index.cache_path.as_deref(), Some(cache_file.as_path()));
    let r = chunked(inspect(&root, &opts).unwrap());
    assert_eq!(r.cache.state, CacheState::Fresh);
    assert_eq!(r.cache.path.as_deref(), Some(lossy(&cache_file).as_str()));
    assert_eq!(r.tiles, 10);
    let before = std::fs::read(&cache_file).unwrap();
    chunk(
        &root,
        "f",
        &[("00000001.jpg", jpeg(24, 24))],
        Some(&[(1, 64)]),
    );
    let r = chunked(inspect(&root, &opts).unwrap());
    assert_eq!(r.cache.state, CacheState::Stale);
    assert_eq!((r.chunks, r.tiles), (5, 11));
    assert_eq!(std::fs::read(&cache_file).unwrap(), before);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn describes_an_image_folder_without_writing() {
    let root = temp_dir("inspect-images");
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("a.jpg"), jpeg(40, 30)).unwrap();
    std::fs::write(root.join("sub/b.png"), png(40, 30)).unwrap();
    std::fs::write(root.join("sub/deeper/c.png"), png(7, 9)).unwrap();
    std::fs::write(root.join("sub/deeper/bad.jpg"), b"junk").unwrap();
    std::fs::write(root.join("notes.txt"), b"12345").unwrap();
    age(&root);
    let opts = InspectOptions::default();
    let Inspection::Images(r) = inspect(&root, &opts).unwrap() else {
        panic!("not an image folder")
    };
    assert_eq!((r.images, r.folders), (4, 3));
    assert_eq!(r.sizes[0].count, 2);
    assert_eq!((r.sizes[0].width, r.sizes[0].height), (40, 30));
    assert_eq!(r.unreadable_images.count, 1);
    assert_eq!(r.disk.other, 5);
    assert_eq!(r.cache.state, CacheState::Missing);
    assert!(
        !root.join(folder::CACHE_DIR).exists(),
        "inspect wrote a cache"
    );

    FolderIndex::open(&root, CacheMode::Use).unwrap();
    let Inspection::Images(r) = inspect(&root, &opts).unwrap() else {
        panic!("not an image folder")
    };
    assert_eq!(r.cache.state, CacheState::Fresh);
    std::fs::write(root.join("sub/new.jpg"), jpeg(8, 8)).unwrap();
    let Inspection::Images(r) = inspect(&root, &opts).unwrap() else {
        panic!("not an image folder")
    };
    assert_eq!((r.cache.state, r.images), (CacheState::Stale, 5));
    let listing: PathBuf = root.join(folder::CACHE_DIR).join(folder::FILE_NAME);
    assert!(listing.is_file());

    assert!(inspect(&root.join("nope"), &opts).is_err());
    assert!(inspect(&root.join("a.jpg"), &opts).is_err());
    std::fs::remove_dir_all(&root).unwrap();
}
