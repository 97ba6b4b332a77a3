//! Describing a dataset folder: what kind it is, how many chunks and tiles the loaders
//! will see, the pixel sizes of its tiles and refs, its scale levels, its disk use and
//! the state of its cache. Read-only: no cache is written, rebuilt or removed.
//!
//! * Kind: "chunked" when at least one chunk folder (a sub-folder of the root whose
//!   name does not start with `.`) holds a `ref.jpg` or a `centers.pt`; otherwise
//!   "images", a folder of raw images as the `imagefolder` mode reads it.
//! * Chunks and tiles come from the chunk index ([`crate::index`]): the fresh cache when
//!   there is one, else a scan made in memory, so the counts are exactly what the
//!   loaders see. Chunk folders without tiles are dropped by the loaders and counted
//!   apart.
//! * Scale levels: within a chunk, the distinct centre widths of its tiles (from
//!   centers.pt, in ref.jpg pixels), sorted ascending, are levels 0, 1, 2...: level 0
//!   is the smallest crop. Per level: how many chunks have it, its tiles, the range of
//!   its centre widths and its tile sizes. Tiles without a centre (no centers.pt, an
//!   unreadable one, or no entry for the tile) are counted apart. A dataset extracted
//!   with the default two crop sizes has levels 0 and 1 in every chunk whose source was
//!   large enough for both.
//! * Pixel sizes are read from the image headers only, in parallel.

use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::{
    image_header, in_pool, lossy, merge_sizes, not_a_folder, reason_of, size_list, walk, Examples,
    SizeCount, SizeMap,
};
use crate::error::{CoreError, Result};
use crate::index::folder::{self, FolderIndex};
use crate::index::{build, cache, RootIndex, Tile, HAS_CENTERS, HAS_REF, NO_CENTRE};

/// The definition of scale levels, as printed under the table and put in the JSON.
pub const LEVELS_DEFINITION: &str = "scale levels: within a chunk, the distinct centre \
    widths in centers.pt (ref.jpg pixels), sorted ascending, are levels 0, 1, 2...; \
    level 0 is the smallest crop. Tiles without a centre are counted apart.";

/// How to inspect.
#[derive(Clone, Copy, Debug, Default)]
pub struct InspectOptions {
    /// Worker threads for reading headers; `None`: one per core.
    pub threads: Option<usize>,
}

/// What [`inspect`] found; serialised with a `"kind"` field ("chunked" or "images").
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[allow(clippy::large_enum_variant)] // one value per call: boxing would buy nothing
pub enum Inspection {
    Chunked(ChunkedReport),
    Images(ImagesReport),
}

/// The state of a cache file, without touching it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheState {
    /// A cache file that the loaders will use as it is.
    Fresh,
    /// A cache file exists but the loaders will rebuild it (the tree changed since, it
    /// was written racily close to a change, or it is damaged or of another version).
    Stale,
    /// No cache file: the loaders will scan and write one.
    Missing,
}

/// A cache's state and where it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CacheReport {
    pub state: CacheState,
    /// The fresh file, else the first stale one; `None` when missing.
    pub path: Option<String>,
    /// Every place the loaders look for it, in order.
    pub locations: Vec<String>,
}

/// Bytes on disk of a chunked dataset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChunkedDisk {
    /// Every file under the root (ours and hidden ones included).
    pub total: u64,
    pub tiles: u64,
    pub refs: u64,
    pub centers: u64,
    /// Everything else (caches, reports, files that are not part of a chunk).
    pub other: u64,
}

/// One scale level of a chunked dataset (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LevelReport {
    pub level: usize,
    /// Chunks that have this level.
    pub chunks: usize,
    pub tiles: usize,
    /// The smallest and largest centre width of this level, in ref.jpg pixels.
    pub min_width: i32,
    pub max_width: i32,
    /// Pixel sizes of its tiles (headers that could be read).
    pub tile_sizes: Vec<SizeCount>,
}

/// A chunked dataset (SPEC §1).
#[derive(Clone, Debug, Serialize)]
pub struct ChunkedReport {
    pub root: String,
    /// Chunk folders with at least one tile (the loaders' chunks).
    pub chunks: usize,
    /// Tiles, as the loaders list them.
    pub tiles: usize,
    /// Chunk folders without any tile (the loaders skip them).
    pub empty_chunks: Examples,
    /// Chunks (with tiles) without a ref.jpg.
    pub without_ref: Examples,
    /// Chunks (with tiles) without a centers.pt.
    pub without_centers: Examples,
    /// Chunks (with tiles) whose centers.pt cannot be read (`name: reason`).
    pub unreadable_centers: Examples,
    /// Tiles that have no centre.
    pub tiles_without_centre: usize,
    /// Pixel sizes of the tiles, the most common first.
    pub tile_sizes: Vec<SizeCount>,
    /// Pixel sizes of the refs.
    pub ref_sizes: Vec<SizeCount>,
    /// Tiles and refs whose header cannot be read (`path: reason`).
    pub unreadable_images: Examples,
    pub levels: Vec<LevelReport>,
    /// [`LEVELS_DEFINITION`].
    pub levels_definition: &'static str,
    pub disk: ChunkedDisk,
    /// The chunk index cache (`.dlas_fast-index.bin`).
    pub cache: CacheReport,
    /// A DLAS `cache.pth` in the root (dlas_fast ignores it).
    pub dlas_cache_pth: bool,
    pub elapsed_secs: f64,
}

/// Bytes on disk of an image folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImagesDisk {
    /// Every file under the root (ours and hidden ones included).
    pub total: u64,
    /// The listed images.
    pub images: u64,
    pub other: u64,
}

/// A folder of raw images, as the `imagefolder` mode lists it.
#[derive(Clone, Debug, Serialize)]
pub struct ImagesReport {
    pub root: String,
    /// Images, as the loader lists them.
    pub images: usize,
    /// Folders holding at least one of them.
    pub folders: usize,
    /// Pixel sizes, the most common first.
    pub sizes: Vec<SizeCount>,
    /// Images whose header cannot be read (`path: reason`).
    pub unreadable_images: Examples,
    pub disk: ImagesDisk,
    /// The listing cache (`.dlas_fast-folder/listing.bin`).
    pub cache: CacheReport,
    /// A DLAS `cache.pth` in the root (dlas_fast ignores it).
    pub dlas_cache_pth: bool,
    pub elapsed_secs: f64,
}

/// Describes the dataset folder `root` (see the module docs). Errors when `root` is not
/// a folder that can be read, or a chunk folder cannot be listed.
pub fn inspect(root: &Path, opts: &InspectOptions) -> Result<Inspection> {
    let started = Instant::now();
    let meta = std::fs::metadata(root).map_err(|e| CoreError::io(root, e))?;
    if !meta.is_dir() {
        return Err(not_a_folder(root));
    }
    in_pool(opts.threads, || {
        if looks_chunked(root)? {
            inspect_chunked(root, started).map(Inspection::Chunked)
        } else {
            inspect_images(root, started).map(Inspection::Images)
        }
    })
}

/// True when a chunk folder of `root` holds a ref.jpg or a centers.pt.
fn looks_chunked(root: &Path) -> Result<bool> {
    for entry in std::fs::read_dir(root).map_err(|e| CoreError::io(root, e))? {
        let entry = entry.map_err(|e| CoreError::io(root, e))?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let dir = entry.path();
        if dir.is_dir() && (dir.join("ref.jpg").exists() || dir.join("centers.pt").exists()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The scale levels of one chunk's tiles: the chunk's distinct centre widths sorted
/// ascending (level `i` has width `widths[i]`), and each tile's level (`None`: the tile
/// has no centre).
pub fn chunk_levels(tiles: &[Tile]) -> (Vec<i32>, Vec<Option<usize>>) {
    let mut widths: Vec<i32> = tiles
        .iter()
        .map(|t| t.width)
        .filter(|&w| w != NO_CENTRE)
        .collect();
    widths.sort_unstable();
    widths.dedup();
    let levels = tiles
        .iter()
        .map(|t| (t.width != NO_CENTRE).then(|| widths.binary_search(&t.width).expect("listed")))
        .collect();
    (widths, levels)
}

/// One level of one chunk.
#[derive(Default)]
struct LevelFacts {
    width: i32,
    tiles: usize,
    sizes: SizeMap,
}

/// What one chunk holds, gathered in a worker.
#[derive(Default)]
struct ChunkFacts {
    tile_sizes: SizeMap,
    tile_bytes: u64,
    ref_size: Option<(u32, u32)>,
    ref_bytes: u64,
    unreadable: Examples,
    levels: Vec<LevelFacts>,
    without_centre: usize,
}

fn chunk_facts(index: &RootIndex, c: usize) -> ChunkFacts {
    let tiles = index.chunk_tiles(c);
    let (widths, levels) = chunk_levels(tiles);
    let headers: Vec<_> = (0..tiles.len())
        .into_par_iter()
        .map(|t| {
            let path = index.tile_path(c, t);
            let (bytes, size) = image_header(&path);
            let size = size.map_err(|e| format!("{}: {}", path.display(), reason_of(&e, &path)));
            (bytes, size)
        })
        .collect();
    let mut facts = ChunkFacts {
        levels: widths
            .iter()
            .map(|&width| LevelFacts {
                width,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    for ((bytes, header), level) in headers.into_iter().zip(levels) {
        facts.tile_bytes += bytes;
        let size = match header {
            Ok((w, h)) => {
                *facts.tile_sizes.entry((w, h)).or_default() += 1;
                Some((w, h))
            }
            Err(reason) => {
                facts.unreadable.add(|| reason);
                None
            }
        };
        match level {
            Some(l) => {
                let lf = &mut facts.levels[l];
                lf.tiles += 1;
                if let Some(s) = size {
                    *lf.sizes.entry(s).or_default() += 1;
                }
            }
            None => facts.without_centre += 1,
        }
    }
    if index.chunks[c].flags & HAS_REF != 0 {
        let path = index.chunk_dir(c).join("ref.jpg");
        let (bytes, size) = image_header(&path);
        facts.ref_bytes = bytes;
        match size {
            Ok(size) => facts.ref_size = Some(size),
            Err(e) => facts
                .unreadable
                .add(|| format!("{}: {}", path.display(), reason_of(&e, &path))),
        }
    }
    facts
}

fn inspect_chunked(root: &Path, started: Instant) -> Result<ChunkedReport> {
    let locations = cache::locations(root);
    let (index, cache_report) = match cache::load_fresh(root)? {
        Some(index) => {
            let report = CacheReport {
                state: CacheState::Fresh,
                path: index.cache_path.as_deref().map(lossy),
                locations: locations.iter().map(|p| lossy(p)).collect(),
            };
            (index, report)
        }
        None => (build(root)?, absent_cache_report(&locations)),
    };
    let mut report = ChunkedReport {
        root: lossy(root),
        chunks: 0,
        tiles: index.tiles.len(),
        empty_chunks: Examples::default(),
        without_ref: Examples::default(),
        without_centers: Examples::default(),
        unreadable_centers: Examples::default(),
        tiles_without_centre: 0,
        tile_sizes: Vec::new(),
        ref_sizes: Vec::new(),
        unreadable_images: Examples::default(),
        levels: Vec::new(),
        levels_definition: LEVELS_DEFINITION,
        disk: ChunkedDisk::default(),
        cache: cache_report,
        dlas_cache_pth: root.join("cache.pth").is_file(),
        elapsed_secs: 0.0,
    };
    let facts: Vec<ChunkFacts> = (0..index.chunks.len())
        .into_par_iter()
        .map(|c| chunk_facts(&index, c))
        .collect();
    let mut tile_sizes = SizeMap::new();
    let mut ref_sizes = SizeMap::new();
    let mut level_sizes: Vec<SizeMap> = Vec::new();
    for (c, f) in facts.into_iter().enumerate() {
        let chunk = &index.chunks[c];
        let name = || String::from_utf8_lossy(index.chunk_name(c)).into_owned();
        report.disk.centers += chunk.centers_size;
        if chunk.tile_count == 0 {
            report.empty_chunks.add(name);
        } else {
            report.chunks += 1;
            if chunk.flags & HAS_REF == 0 {
                report.without_ref.add(name);
            }
            if chunk.flags & HAS_CENTERS == 0 {
                report.without_centers.add(name);
            } else if let Some(reason) = index.centers_error(c) {
                let centers = index.chunk_dir(c).join("centers.pt");
                report
                    .unreadable_centers
                    .add(|| format!("{}: {}", name(), reason_of(&reason, &centers)));
            }
        }
        merge_sizes(&mut tile_sizes, f.tile_sizes);
        if let Some(s) = f.ref_size {
            *ref_sizes.entry(s).or_default() += 1;
        }
        report.disk.tiles += f.tile_bytes;
        report.disk.refs += f.ref_bytes;
        report.unreadable_images.merge(f.unreadable);
        report.tiles_without_centre += f.without_centre;
        for (l, lf) in f.levels.into_iter().enumerate() {
            if report.levels.len() <= l {
                report.levels.push(LevelReport {
                    level: l,
                    chunks: 0,
                    tiles: 0,
                    min_width: lf.width,
                    max_width: lf.width,
                    tile_sizes: Vec::new(),
                });
                level_sizes.push(SizeMap::new());
            }
            let level = &mut report.levels[l];
            level.chunks += 1;
            level.tiles += lf.tiles;
            level.min_width = level.min_width.min(lf.width);
            level.max_width = level.max_width.max(lf.width);
            merge_sizes(&mut level_sizes[l], lf.sizes);
        }
    }
    for (level, sizes) in report.levels.iter_mut().zip(level_sizes) {
        level.tile_sizes = size_list(sizes);
    }
    report.tile_sizes = size_list(tile_sizes);
    report.ref_sizes = size_list(ref_sizes);
    report.disk.total = disk_total(root)?;
    report.disk.other = report
        .disk
        .total
        .saturating_sub(report.disk.tiles + report.disk.refs + report.disk.centers);
    report.elapsed_secs = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The report of a cache that is not fresh: stale when a file exists in one of its
/// `locations`, missing otherwise.
fn absent_cache_report(locations: &[std::path::PathBuf]) -> CacheReport {
    let existing = locations.iter().find(|p| p.is_file());
    CacheReport {
        state: if existing.is_some() {
            CacheState::Stale
        } else {
            CacheState::Missing
        },
        path: existing.map(|p| lossy(p)),
        locations: locations.iter().map(|p| lossy(p)).collect(),
    }
}

/// Bytes of every file under `root`, hidden ones and ours included.
fn disk_total(root: &Path) -> Result<u64> {
    Ok(walk(root, true, |_| true)?
        .files
        .iter()
        .map(|f| f.bytes)
        .sum())
}

/// Images per parallel task when reading an image folder's headers.
const IMAGES_PER_TASK: usize = 256;

fn inspect_images(root: &Path, started: Instant) -> Result<ImagesReport> {
    let locations = folder::cache_locations(root);
    let (listing, cache_report) = match folder::load_fresh(root)? {
        Some(listing) => {
            let report = CacheReport {
                state: CacheState::Fresh,
                path: listing.cache_path.as_deref().map(lossy),
                locations: locations.iter().map(|p| lossy(p)).collect(),
            };
            (listing, report)
        }
        None => (FolderIndex::build(root)?, absent_cache_report(&locations)),
    };
    let n = listing.len();
    let parts: Vec<(SizeMap, u64, Examples)> = (0..n.div_ceil(IMAGES_PER_TASK))
        .into_par_iter()
        .map(|task| {
            let mut sizes = SizeMap::new();
            let mut bytes = 0;
            let mut bad = Examples::default();
            for i in task * IMAGES_PER_TASK..((task + 1) * IMAGES_PER_TASK).min(n) {
                let path = listing.path(i);
                let (b, size) = image_header(&path);
                bytes += b;
                match size {
                    Ok(s) => *sizes.entry(s).or_default() += 1,
                    Err(e) => bad.add(|| format!("{}: {}", path.display(), reason_of(&e, &path))),
                }
            }
            (sizes, bytes, bad)
        })
        .collect();
    let mut sizes = SizeMap::new();
    let mut disk = ImagesDisk::default();
    let mut unreadable = Examples::default();
    for (s, b, bad) in parts {
        merge_sizes(&mut sizes, s);
        disk.images += b;
        unreadable.merge(bad);
    }
    let mut folders = 0;
    let mut i = 0;
    while i < n {
        folders += 1;
        i = listing.siblings(i).end;
    }
    disk.total = disk_total(root)?;
    disk.other = disk.total.saturating_sub(disk.images);
    Ok(ImagesReport {
        root: lossy(root),
        images: n,
        folders,
        sizes: size_list(sizes),
        unreadable_images: unreadable,
        disk,
        cache: cache_report,
        dlas_cache_pth: root.join("cache.pth").is_file(),
        elapsed_secs: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use super::super::tests::{jpeg, png, temp_dir};
    use super::*;
    use crate::index::CacheMode;
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
        let l = |level, chunks, tiles, min_width, max_width| {
            (level, chunks, tiles, min_width, max_width)
        };
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
}
