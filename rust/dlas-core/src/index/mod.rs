//! The chunk index of a chunked dataset root (docs/spec.md §3): every chunk folder, its tiles in
//! DLAS order, whether it has a `ref.jpg`, and each tile's centre from `centers.pt`.
//!
//! It lives in a few flat vectors, never in Python objects, so forked DataLoader
//! workers share it without copying: 12 bytes per tile (its centre), plus 4 per tile
//! only in chunks whose tiles are not a run of consecutive `%08d.jpg` names (the
//! extractor's and DLAS's tiles always are), plus a little per chunk. [`RootIndex::open`] reuses a cache file (see [`cache`]) when the
//! tree's fingerprint still matches, and rebuilds it otherwise.

mod build;
pub mod cache;
mod fingerprint;
pub mod folder;
pub mod folder_list;
pub mod frames;
pub mod tileset;

use std::path::{Path, PathBuf};

pub use build::build;
pub use fingerprint::chunk_dirs;
pub use tileset::TileSet;

use crate::error::{CoreError, Result};

/// The largest `weights` entry (how many times a root's chunks or images are
/// repeated).
pub const MAX_WEIGHT: usize = 1_000_000;

/// The most entries the weights may make in a list held in memory: chunk slots of a
/// chunked dataset (16 bytes each), windows of a MultiFrameDataset, or the images of a
/// sorted folder listing.
pub const MAX_SLOTS: usize = 1 << 26;

/// An error naming `option` when a weight is over [`MAX_WEIGHT`], or when the weights
/// repeat `counts[k]` entries of root `k` into more than [`MAX_SLOTS`] entries
/// (checked before anything is allocated).
pub fn check_weights(option: &str, weights: &[usize], counts: &[usize]) -> Result<()> {
    if let Some(w) = weights.iter().find(|&&w| w > MAX_WEIGHT) {
        return Err(CoreError::option(
            option,
            format!("each weight must be an integer from 0 to {MAX_WEIGHT}, got {w}"),
        ));
    }
    let total: u128 = weights
        .iter()
        .zip(counts)
        .map(|(&w, &c)| w as u128 * c as u128)
        .sum();
    if total > MAX_SLOTS as u128 {
        return Err(CoreError::option(
            option,
            format!(
                "the weights repeat the entries into {total} entries, over the limit of \
                 {MAX_SLOTS}; lower the weights"
            ),
        ));
    }
    Ok(())
}

/// One tile's centre in ref.jpg pixels. 12 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Tile {
    pub row: i32,
    pub col: i32,
    /// [`NO_CENTRE`] when centers.pt has no entry for this tile (or no centers.pt).
    pub width: i32,
}

/// `Tile::width` of a tile without a centre.
pub const NO_CENTRE: i32 = i32::MIN;
/// A name code with this bit indexes [`RootIndex::other_names`]; without it, the name
/// is `{code:08}.jpg`.
const OTHER_NAME: u32 = 1 << 31;

/// Chunk flags.
pub const HAS_REF: u32 = 1;
pub const HAS_CENTERS: u32 = 2;
/// centers.pt exists but could not be read; the reason is in `centers_errors`.
pub const CENTERS_INVALID: u32 = 4;
/// Tile `j` is named `{names + j:08}.jpg`; otherwise its name code is
/// `tile_names[names + j]`.
pub const NAME_RUN: u32 = 8;

/// One chunk folder (empty ones included: they are part of the fingerprint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Byte span of the folder name in [`RootIndex::text`].
    pub name: (u32, u32),
    pub tile_start: u32,
    pub tile_count: u32,
    pub flags: u32,
    /// See [`NAME_RUN`].
    pub names: u32,
    /// Fingerprint: the folder's mtime, and centers.pt's mtime and size (0/0: none).
    pub dir_mtime_ns: i64,
    pub centers_mtime_ns: i64,
    pub centers_size: u64,
}

/// The index of one dataset root.
#[derive(Debug, Default, PartialEq)]
pub struct RootIndex {
    /// The root as given (not stored in the cache: a moved dataset keeps its cache).
    pub root: PathBuf,
    pub chunks: Vec<Chunk>,
    pub tiles: Vec<Tile>,
    /// Name codes of the tiles of chunks that are not a [`NAME_RUN`].
    pub tile_names: Vec<u32>,
    /// Byte spans in `text` of tile paths that are not `%08d.jpg` (relative to the chunk).
    pub other_names: Vec<(u32, u32)>,
    /// Chunk names and unusual tile paths, as raw file-name bytes.
    pub text: Vec<u8>,
    /// (chunk, reason) for every centers.pt that could not be read.
    pub centers_errors: Vec<(u32, String)>,
    /// When the scan started (ns since the epoch); see [`fingerprint`].
    pub built_ns: i64,
    /// Where the cache was read from or written to, if anywhere.
    pub cache_path: Option<PathBuf>,
    /// True when this index came from the cache file.
    pub from_cache: bool,
}

/// How [`RootIndex::open`] treats the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMode {
    /// Use a fresh cache, else build and save one.
    Use,
    /// Build, and save the result.
    Rebuild,
    /// Build, touch no file.
    Off,
}

impl RootIndex {
    /// Opens the index of `root`: from its cache when the fingerprint matches, else by
    /// scanning (in parallel) and then saving the cache. Processes that open one root
    /// at once build it one at a time ([`cache::build_lock`]): one builds, the others
    /// wait and read its cache.
    pub fn open(root: &Path, mode: CacheMode) -> Result<RootIndex> {
        // A pack (docs/shards.md): indexed from its sidecars, read from its maps.
        if crate::pack::reader::is_pack(root) {
            let set = crate::pack::reader::open(root)?;
            let index = with_own_pool(|| build::build_from_pack(root, &set))?;
            return Ok(index);
        }
        let mut _lock = None;
        if mode == CacheMode::Use {
            if let Some(index) = with_own_pool(|| cache::load_fresh(root))? {
                return Ok(index);
            }
            _lock = cache::build_lock(&cache::locations(root));
            if _lock.is_some() {
                if let Some(index) = with_own_pool(|| cache::load_fresh(root))? {
                    return Ok(index); // built by the process we waited for
                }
            }
        }
        let mut index = with_own_pool(|| build(root))?;
        release_freed_memory();
        if mode != CacheMode::Off {
            index.cache_path = cache::save(&index);
        }
        Ok(index)
    }

    fn span(&self, (off, len): (u32, u32)) -> &[u8] {
        &self.text[off as usize..(off + len) as usize]
    }

    /// The chunk folder's name.
    pub fn chunk_name(&self, chunk: usize) -> &[u8] {
        self.span(self.chunks[chunk].name)
    }

    /// The tiles of a chunk.
    pub fn chunk_tiles(&self, chunk: usize) -> &[Tile] {
        let c = &self.chunks[chunk];
        &self.tiles[c.tile_start as usize..(c.tile_start + c.tile_count) as usize]
    }

    /// Appends the path of tile `tile` of `chunk`, relative to the chunk folder, to `out`.
    pub fn tile_name_into(&self, chunk: usize, tile: usize, out: &mut Vec<u8>) {
        let c = &self.chunks[chunk];
        assert!(tile < c.tile_count as usize, "tile {tile} out of range");
        let code = if c.flags & NAME_RUN != 0 {
            c.names + tile as u32
        } else {
            self.tile_names[c.names as usize + tile]
        };
        if code & OTHER_NAME == 0 {
            use std::io::Write;
            write!(out, "{code:08}.jpg").expect("writing to a Vec");
        } else {
            let span = self.other_names[(code & !OTHER_NAME) as usize];
            out.extend_from_slice(self.span(span));
        }
    }

    /// `os.path.join(root, chunk, tile)`, as DLAS builds tile paths.
    pub fn tile_path(&self, chunk: usize, tile: usize) -> PathBuf {
        let mut name = Vec::new();
        self.tile_name_into(chunk, tile, &mut name);
        self.chunk_dir(chunk).join(bytes_path(&name))
    }

    /// `os.path.join(root, chunk)`.
    pub fn chunk_dir(&self, chunk: usize) -> PathBuf {
        self.root.join(bytes_path(self.chunk_name(chunk)))
    }

    /// The tile's `((row, col), width)` from centers.pt, if it has one.
    pub fn centre(&self, chunk: usize, tile: usize) -> Option<((i32, i32), i32)> {
        let t = self.chunk_tiles(chunk)[tile];
        (t.width != NO_CENTRE).then_some(((t.row, t.col), t.width))
    }

    /// Why this chunk's centers.pt could not be read, if it could not.
    pub fn centers_error(&self, chunk: usize) -> Option<&str> {
        self.centers_errors
            .iter()
            .find(|(c, _)| *c as usize == chunk)
            .map(|(_, r)| r.as_str())
    }

    /// Heap bytes held by the index (what a forked worker would share).
    pub fn resident_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.tiles.capacity() * std::mem::size_of::<Tile>()
            + self.tile_names.capacity() * 4
            + self.other_names.capacity() * 8
            + self.text.capacity()
            + self
                .centers_errors
                .iter()
                .map(|(_, r)| r.capacity() + 32)
                .sum::<usize>()
    }
}

/// Runs `f` on a thread pool of its own whose threads are joined before this returns:
/// nothing of rayon is left behind in a process that a DataLoader later forks (a
/// forked child that used a pool whose threads stayed in the parent would hang), and
/// no pool thread is still winding down when a worker process exits.
pub(crate) fn with_own_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    with_pool(None, "dlas-index", f)
}

/// [`with_own_pool`] with `threads` threads (None: one per core), named `name-<i>`.
pub(crate) fn with_pool<T: Send>(
    threads: Option<usize>,
    name: &'static str,
    f: impl FnOnce() -> T + Send,
) -> T {
    let mut f = Some(f);
    let mut out = None;
    let built = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .thread_name(move |i| format!("{name}-{i}"))
        .build_scoped(
            |thread| thread.run(),
            |pool| out = Some(pool.install(f.take().expect("runs once"))),
        );
    match (built, out) {
        (Ok(()), Some(v)) => v,
        // No threads to be had: run on this one.
        _ => (f.take().expect("not run when the pool failed"))(),
    }
}

/// Hands the scan's freed scratch memory (about 80 bytes per tile, in the pool
/// threads' malloc arenas) back to the OS, so that a process that built an index, and
/// the DataLoader workers it forks, do not carry it in their resident set.
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the OS; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A path from raw file-name bytes (Unix: lossless).
pub fn bytes_path(bytes: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_bounded_before_anything_is_allocated() {
        assert!(check_weights("weights", &[MAX_WEIGHT, 0], &[3, 5]).is_ok());
        let msg = check_weights("weights", &[1 << 40], &[3])
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("`weights`") && msg.contains("0 to 1000000"),
            "{msg}"
        );
        // Each weight allowed, the entries they make over the limit.
        let msg = check_weights("weights", &[MAX_WEIGHT; 3], &[100, 100, 100])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("over the limit"), "{msg}");
    }
}
