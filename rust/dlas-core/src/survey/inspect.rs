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

#[path = "inspect_chunked.rs"]
mod chunked;
#[path = "inspect_images.rs"]
mod images;

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::{in_pool, lossy, not_a_folder, walk};
use crate::error::{CoreError, Result};

use chunked::inspect_chunked;
use images::inspect_images;

pub use chunked::{chunk_levels, ChunkedDisk, ChunkedReport, LevelReport, LEVELS_DEFINITION};
pub use images::{ImagesDisk, ImagesReport};

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

#[cfg(test)]
#[path = "inspect_tests.rs"]
mod tests;
