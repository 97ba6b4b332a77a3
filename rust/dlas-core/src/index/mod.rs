//! The chunk index of a chunked dataset root (SPEC §3): every chunk folder, its tiles in
//! DLAS order, whether it has a `ref.jpg`, and each tile's centre from `centers.pt`.
//!
//! It lives in a few flat vectors (16 bytes per tile, plus a little per chunk and per
//! unusual tile name), never in Python objects, so forked DataLoader workers share it
//! without copying. [`RootIndex::open`] reuses a cache file (see [`cache`]) when the
//! tree's fingerprint still matches, and rebuilds it otherwise.

mod build;
pub mod cache;
mod fingerprint;
pub mod tileset;

use std::path::{Path, PathBuf};

pub use build::build;
pub use tileset::TileSet;

use crate::error::Result;

/// One tile: its name and its centre in ref.jpg pixels. 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Tile {
    /// High bit clear: the file is `{name:08}.jpg` (the extractor's and DLAS's names).
    /// High bit set: the low 31 bits index [`RootIndex::other_names`].
    pub name: u32,
    pub row: i32,
    pub col: i32,
    /// [`NO_CENTRE`] when centers.pt has no entry for this tile (or no centers.pt).
    pub width: i32,
}

/// `Tile::width` of a tile without a centre.
pub const NO_CENTRE: i32 = i32::MIN;
const OTHER_NAME: u32 = 1 << 31;

/// Chunk flags.
pub const HAS_REF: u32 = 1;
pub const HAS_CENTERS: u32 = 2;
/// centers.pt exists but could not be read; the reason is in `centers_errors`.
pub const CENTERS_INVALID: u32 = 4;

/// One chunk folder (empty ones included: they are part of the fingerprint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Byte span of the folder name in [`RootIndex::text`].
    pub name: (u32, u32),
    pub tile_start: u32,
    pub tile_count: u32,
    pub flags: u32,
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
    /// scanning (in parallel) and then saving the cache.
    pub fn open(root: &Path, mode: CacheMode) -> Result<RootIndex> {
        if mode == CacheMode::Use {
            if let Some(index) = with_own_pool(|| cache::load_fresh(root))? {
                return Ok(index);
            }
        }
        let mut index = with_own_pool(|| build(root))?;
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

    /// Appends the tile's path relative to its chunk folder to `out`.
    pub fn tile_name_into(&self, tile: &Tile, out: &mut Vec<u8>) {
        if tile.name & OTHER_NAME == 0 {
            use std::io::Write;
            write!(out, "{:08}.jpg", tile.name).expect("writing to a Vec");
        } else {
            let span = self.other_names[(tile.name & !OTHER_NAME) as usize];
            out.extend_from_slice(self.span(span));
        }
    }

    /// `os.path.join(root, chunk, tile)`, as DLAS builds tile paths.
    pub fn tile_path(&self, chunk: usize, tile: usize) -> PathBuf {
        let t = self.chunk_tiles(chunk)[tile];
        let mut name = Vec::new();
        self.tile_name_into(&t, &mut name);
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
            + self.other_names.capacity() * 8
            + self.text.capacity()
            + self
                .centers_errors
                .iter()
                .map(|(_, r)| r.capacity() + 32)
                .sum::<usize>()
    }
}

/// Runs `f` on a thread pool of its own, dropped afterwards: nothing of rayon's global
/// pool is left behind in a process that a DataLoader later forks (a forked child
/// that used a pool whose threads stayed in the parent would hang).
fn with_own_pool<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("dlas-index-{i}"))
        .build()
    {
        Ok(pool) => pool.install(f),
        Err(_) => f(), // no threads to be had: run on this one
    }
}

/// A path from raw file-name bytes (Unix: lossless).
pub fn bytes_path(bytes: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}
