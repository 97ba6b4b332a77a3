//! The chunk index and its cache (docs/spec.md §3) on real folders.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dlas_core::index::{cache, CacheMode, RootIndex, TileSet};
use dlas_core::torchfile::write_centers;

/// A fresh empty folder under the system temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "dlas_index_test_{name}_{}_{:?}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Sets the mtime of `path` `secs` seconds into the past (older than the racy window).
fn age(path: &Path, secs: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs);
    fs::File::open(path).unwrap().set_modified(t).unwrap();
}

/// Ages every chunk folder and centers.pt under `root`.
fn age_tree(root: &Path, secs: u64) {
    for e in fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            let c = p.join("centers.pt");
            if c.exists() {
                age(&c, secs);
            }
            age(&p, secs);
        }
    }
}

/// `(tile id, (row, col), width)`, as centers.pt holds them.
type Entry = (i64, (i64, i64), i64);

fn chunk(root: &Path, name: &str, tiles: &[&str], centers: Option<&[Entry]>) {
    let dir = root.join(name);
    fs::create_dir_all(&dir).unwrap();
    for t in tiles {
        let p = dir.join(t);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"jpeg").unwrap();
    }
    fs::write(dir.join("ref.jpg"), b"ref").unwrap();
    if let Some(c) = centers {
        write_centers(&dir.join("centers.pt"), c).unwrap();
    }
}

fn tree() -> PathBuf {
    let root = scratch("tree");
    chunk(
        &root,
        "b_chunk",
        &["00000002.jpg", "00000001.jpg", "00000003.png"],
        Some(&[(1, (10, 20), 64), (2, (30, 40), 128)]),
    );
    chunk(
        &root,
        "a_chunk",
        &["00000007.jpg", "sub/00000009.jpg", "odd name.JPG", "x.txt"],
        None,
    );
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::create_dir_all(root.join(".dlas_fast-tmp-1of1-x")).unwrap();
    fs::write(root.join("cache.pth"), b"DLAS's pickle").unwrap();
    root
}

fn names(index: &RootIndex) -> Vec<String> {
    (0..index.chunks.len())
        .map(|i| String::from_utf8_lossy(index.chunk_name(i)).into_owned())
        .collect()
}

#[test]
fn scan_lists_chunks_tiles_refs_and_centres_in_dlas_order() {
    let root = tree();
    let index = RootIndex::open(&root, CacheMode::Off).unwrap();
    assert_eq!(names(&index), ["a_chunk", "b_chunk", "empty"]);
    let paths = |c: usize| -> Vec<PathBuf> {
        (0..index.chunks[c].tile_count as usize)
            .map(|t| index.tile_path(c, t))
            .collect()
    };
    // Names sorted by bytes: "00000007.jpg" < "odd name.JPG"; then the sub-folder.
    assert_eq!(
        paths(0),
        [
            root.join("a_chunk/00000007.jpg"),
            root.join("a_chunk/odd name.JPG"),
            root.join("a_chunk/sub/00000009.jpg"),
        ]
    );
    assert_eq!(
        paths(1),
        [
            root.join("b_chunk/00000001.jpg"),
            root.join("b_chunk/00000002.jpg"),
            root.join("b_chunk/00000003.png"),
        ]
    );
    assert_eq!(index.chunks[2].tile_count, 0);
    assert_eq!(index.centre(1, 0), Some(((10, 20), 64)));
    assert_eq!(index.centre(1, 1), Some(((30, 40), 128)));
    assert_eq!(index.centre(1, 2), None, "id 3 is not in centers.pt");
    assert_eq!(index.centre(0, 0), None, "no centers.pt");
    assert!(index.chunks[0].flags & dlas_core::index::HAS_REF != 0);
    assert!(index.resident_bytes() < 6 * 16 + 3 * 64 + 200);
    assert_eq!(fs::read(root.join("cache.pth")).unwrap(), b"DLAS's pickle");
}

#[test]
fn tile_names_round_trip_with_and_without_runs() {
    let root = scratch("runs");
    chunk(
        &root,
        "run",
        &["00000005.jpg", "00000006.jpg", "00000007.jpg"],
        None,
    );
    chunk(&root, "gap", &["00000001.jpg", "00000003.jpg"], None);
    chunk(&root, "long", &["123456789.jpg", "123456790.jpg"], None);
    age_tree(&root, 60);
    RootIndex::open(&root, CacheMode::Use).unwrap();
    let index = RootIndex::open(&root, CacheMode::Use).unwrap();
    assert!(index.from_cache);
    let listed = |c: usize| -> Vec<PathBuf> {
        (0..index.chunks[c].tile_count as usize)
            .map(|t| index.tile_path(c, t))
            .collect()
    };
    assert_eq!(names(&index), ["gap", "long", "run"]);
    assert_eq!(
        listed(0),
        [root.join("gap/00000001.jpg"), root.join("gap/00000003.jpg")]
    );
    assert_eq!(
        listed(1),
        [
            root.join("long/123456789.jpg"),
            root.join("long/123456790.jpg")
        ]
    );
    assert_eq!(
        listed(2),
        [
            root.join("run/00000005.jpg"),
            root.join("run/00000006.jpg"),
            root.join("run/00000007.jpg")
        ]
    );
    // Runs need no per-tile names: only the gap chunk stores them.
    assert_eq!(index.tile_names.len(), 2);
}

#[test]
fn cache_is_written_reused_and_rebuilt_when_the_tree_changes() {
    let root = tree();
    age_tree(&root, 60);
    let first = RootIndex::open(&root, CacheMode::Use).unwrap();
    assert!(!first.from_cache);
    assert_eq!(
        first.cache_path.as_deref(),
        Some(&*root.join(cache::FILE_NAME))
    );
    let again = RootIndex::open(&root, CacheMode::Use).unwrap();
    assert!(again.from_cache);
    assert_eq!(again.tiles, first.tiles);
    assert_eq!(again.chunks, first.chunks);

    // A new tile: the chunk folder's mtime moves.
    fs::write(root.join("b_chunk/00000004.jpg"), b"x").unwrap();
    age(&root.join("b_chunk"), 30);
    let grown = RootIndex::open(&root, CacheMode::Use).unwrap();
    assert!(!grown.from_cache);
    assert_eq!(grown.chunks[1].tile_count, 4);
    assert!(RootIndex::open(&root, CacheMode::Use).unwrap().from_cache);

    // A rewritten centers.pt.
    write_centers(&root.join("b_chunk/centers.pt"), &[(1, (1, 2), 3)]).unwrap();
    age(&root.join("b_chunk/centers.pt"), 20);
    let recentred = RootIndex::open(&root, CacheMode::Use).unwrap();
    assert!(!recentred.from_cache);
    assert_eq!(recentred.centre(1, 0), Some(((1, 2), 3)));

    // A new chunk, then a removed one.
    chunk(&root, "c_chunk", &["00000001.jpg"], None);
    age(&root.join("c_chunk"), 10);
    let more = RootIndex::open(&root, CacheMode::Use).unwrap();
    assert!(!more.from_cache);
    assert_eq!(names(&more), ["a_chunk", "b_chunk", "c_chunk", "empty"]);
    fs::remove_dir_all(root.join("a_chunk")).unwrap();
    let fewer = RootIndex::open(&root, CacheMode::Use).unwrap();
    assert!(!fewer.from_cache);
    assert_eq!(names(&fewer), ["b_chunk", "c_chunk", "empty"]);
}

#[test]
fn a_moved_dataset_keeps_its_cache() {
    let root = tree();
    age_tree(&root, 60);
    RootIndex::open(&root, CacheMode::Use).unwrap();
    let moved = root.with_extension("moved");
    fs::rename(&root, &moved).unwrap();
    let index = RootIndex::open(&moved, CacheMode::Use).unwrap();
    assert!(index.from_cache);
    assert_eq!(index.tile_path(1, 0), moved.join("b_chunk/00000001.jpg"));
}

#[test]
fn recently_modified_folders_are_not_trusted() {
    let root = tree(); // mtimes are "now": within the racy window
    assert!(!RootIndex::open(&root, CacheMode::Use).unwrap().from_cache);
    assert!(!RootIndex::open(&root, CacheMode::Use).unwrap().from_cache);
    age_tree(&root, 60);
    assert!(!RootIndex::open(&root, CacheMode::Use).unwrap().from_cache);
    assert!(RootIndex::open(&root, CacheMode::Use).unwrap().from_cache);
}

#[test]
fn mtimes_in_the_future_do_not_force_rebuilds() {
    let root = tree();
    age_tree(&root, 60);
    let t = SystemTime::now() + Duration::from_secs(3600);
    fs::File::open(root.join("b_chunk"))
        .unwrap()
        .set_modified(t)
        .unwrap();
    assert!(!RootIndex::open(&root, CacheMode::Use).unwrap().from_cache);
    assert!(RootIndex::open(&root, CacheMode::Use).unwrap().from_cache);
    // and a change there is still seen
    fs::write(root.join("b_chunk/00000009.jpg"), b"x").unwrap();
    fs::File::open(root.join("b_chunk"))
        .unwrap()
        .set_modified(t + Duration::from_secs(60))
        .unwrap();
    let changed = RootIndex::open(&root, CacheMode::Use).unwrap();
    assert!(!changed.from_cache);
    assert_eq!(changed.chunks[1].tile_count, 4);
}

#[test]
fn a_damaged_cache_is_rebuilt_and_replaced() {
    let root = tree();
    age_tree(&root, 60);
    RootIndex::open(&root, CacheMode::Use).unwrap();
    let file = root.join(cache::FILE_NAME);
    let mut bytes = fs::read(&file).unwrap();
    for cut in [0, 7, bytes.len() / 2, bytes.len() - 1] {
        assert!(cache::decode(&bytes[..cut]).is_none(), "truncated at {cut}");
    }
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    assert!(cache::decode(&bytes).is_none(), "flipped bit");
    fs::write(&file, &bytes).unwrap();
    let index = RootIndex::open(&root, CacheMode::Use).unwrap();
    assert!(!index.from_cache);
    assert!(cache::decode(&fs::read(&file).unwrap()).is_some());
}

#[test]
fn an_unwritable_root_keeps_its_cache_in_the_user_cache() {
    let root = tree();
    age_tree(&root, 60);
    // Running as root ignores permissions; a folder where the cache file would go
    // makes the root location unwritable for this test.
    fs::create_dir(root.join(cache::FILE_NAME)).unwrap();
    let user = scratch("usercache");
    // SAFETY: this test binary's other tests do not read this variable.
    unsafe { std::env::set_var("DLAS_FAST_CACHE", &user) };
    let first = RootIndex::open(&root, CacheMode::Use).unwrap();
    let path = first.cache_path.clone().unwrap();
    assert!(path.starts_with(user.join("index")), "{}", path.display());
    let again = RootIndex::open(&root, CacheMode::Use).unwrap();
    assert!(again.from_cache);
    assert_eq!(again.cache_path, Some(path));
}

#[test]
fn a_malicious_centers_file_is_refused_and_recorded_not_run() {
    let root = scratch("evil");
    chunk(&root, "c", &["00000001.jpg"], None);
    // torch.save files whose pickle calls os.system (see tests/data/torchfile).
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/torchfile/malicious_zip.pt");
    fs::copy(fixture, root.join("c/centers.pt")).unwrap();
    let index = RootIndex::open(&root, CacheMode::Off).unwrap();
    let reason = index.centers_error(0).expect("recorded");
    assert!(
        reason.contains("GLOBAL") && reason.contains("centers.pt"),
        "{reason}"
    );
    assert_eq!(index.centre(0, 0), None);
}

#[test]
fn tileset_repeats_by_weight_and_drops_the_first_tiles() {
    let root = tree();
    let index = Arc::new(RootIndex::open(&root, CacheMode::Off).unwrap());
    let set = TileSet::new(vec![index.clone(), index.clone()], &[2, 1], 0).unwrap();
    assert_eq!(set.len(), 3 * 6);
    assert_eq!(set.tile_path(0).unwrap(), root.join("a_chunk/00000007.jpg"));
    assert_eq!(set.tile_path(6).unwrap(), root.join("a_chunk/00000007.jpg"));
    assert_eq!(
        set.tile_path(17).unwrap(),
        root.join("b_chunk/00000003.png")
    );
    assert!(set.locate(18).is_none());
    let skipped = TileSet::new(vec![index.clone()], &[1], 2).unwrap();
    assert_eq!(skipped.len(), 2);
    assert_eq!(
        skipped.tile_path(0).unwrap(),
        root.join("a_chunk/sub/00000009.jpg")
    );
    assert_eq!(
        skipped.tile_path(1).unwrap(),
        root.join("b_chunk/00000003.png")
    );
    assert!(TileSet::new(vec![index], &[1, 1], 0).is_err());
}
