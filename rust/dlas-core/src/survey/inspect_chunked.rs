//! Inspecting a chunked dataset: its chunks and tiles as the loaders list them, the
//! pixel sizes of its tiles and refs, its scale levels (defined in the docs of
//! [`super`]), its disk use and the state of its chunk index cache.

use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::{absent_cache_report, disk_total, CacheReport, CacheState};
use crate::error::Result;
use crate::index::{build, cache, RootIndex, Tile, HAS_CENTERS, HAS_REF, NO_CENTRE};
use crate::survey::{
    image_header, lossy, merge_sizes, reason_of, size_list, Examples, SizeCount, SizeMap,
};

/// The definition of scale levels, as printed under the table and put in the JSON.
pub const LEVELS_DEFINITION: &str = "scale levels: within a chunk, the distinct centre \
    widths in centers.pt (ref.jpg pixels), sorted ascending, are levels 0, 1, 2...; \
    level 0 is the smallest crop. Tiles without a centre are counted apart.";

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

/// One scale level of a chunked dataset (see the docs of [`super`]).
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

/// A chunked dataset (docs/spec.md §1).
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

pub(super) fn inspect_chunked(root: &Path, started: Instant) -> Result<ChunkedReport> {
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
