//! The index cache file: `<root>/.dlas_fast-index.bin`, or, when the root cannot be
//! written, `<user cache>/index/<hash of the absolute root>.bin` (user cache:
//! `$DLAS_FAST_CACHE`, else `$XDG_CACHE_HOME/dlas_fast`, else `~/.cache/dlas_fast`).
//!
//! Our own little-endian format, not a pickle (DLAS's `cache.pth` is never read or
//! touched), written by hand because it is a handful of flat arrays read back in one
//! pass. It holds facts about files only, never dataset options, and paths relative
//! to the root:
//!
//! ```text
//! magic "DLASFIDX" | version u32 | built_ns i64
//! n_chunks u32 | n_tiles u32 | n_names u32 | n_other u32 | text_len u32 | n_errors u32
//! chunks:  n_chunks x (name_off u32, name_len u32, tile_start u32, tile_count u32,
//!                      flags u32, names u32, dir_mtime_ns i64, centers_mtime_ns i64,
//!                      centers_size u64)
//! tiles:   n_tiles x (row i32, col i32, width i32)
//! names:   n_names x u32
//! other:   n_other x (off u32, len u32)
//! text:    text_len bytes
//! errors:  n_errors x (chunk u32, len u32, UTF-8 bytes)
//! crc32 of everything above, u32
//! ```
//!
//! Written to a temporary file in the same folder and renamed over the old one, so two
//! processes building at once (two DDP ranks) each replace it with a complete file; a
//! damaged or truncated file fails its checksum and is rebuilt.

use std::path::{Path, PathBuf};

use super::fingerprint::is_fresh;
use super::{Chunk, RootIndex, Tile};
use crate::error::Result;
use crate::input::{read_regular, CACHE_MAX_BYTES};

/// The cache file's name in the dataset root.
pub const FILE_NAME: &str = ".dlas_fast-index.bin";
const MAGIC: &[u8; 8] = b"DLASFIDX";
/// Any other version is rebuilt and replaced.
const VERSION: u32 = 2;

/// Where the cache of `root` may live: in the root, then in the user cache.
pub fn locations(root: &Path) -> Vec<PathBuf> {
    locations_of(root, FILE_NAME, "index")
}

/// Where a cache file named `file_name` of `root` may live: in the root, then in the
/// user cache's `kind` folder, named by a hash of the absolute root.
pub(crate) fn locations_of(root: &Path, file_name: &str, kind: &str) -> Vec<PathBuf> {
    let mut out = vec![root.join(file_name)];
    if let Some(dir) = user_cache_dir() {
        let abs = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let key = crate::fnv1a64(abs.as_os_str().as_encoded_bytes());
        out.push(dir.join(kind).join(format!("{key:016x}.bin")));
    }
    out
}

fn user_cache_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("DLAS_FAST_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("dlas_fast")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("dlas_fast")))
}

/// The cached index of `root`, if a cache file exists, is intact and is fresh.
pub fn load_fresh(root: &Path) -> Result<Option<RootIndex>> {
    for path in locations(root) {
        // A cache that cannot be read (missing, not a regular file, too large) is
        // rebuilt like a damaged one.
        let Ok(bytes) = read_regular(&path, CACHE_MAX_BYTES, "a cache file", "") else {
            continue;
        };
        let Some(mut index) = decode(&bytes) else {
            continue; // damaged or from another version: rebuilt and replaced
        };
        index.root = root.to_path_buf();
        if is_fresh(&index, root)? {
            index.cache_path = Some(path);
            index.from_cache = true;
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// Saves `index` to the first location that can be written; returns it (or `None`
/// when none can: the index still works, it is just rebuilt next time).
pub fn save(index: &RootIndex) -> Option<PathBuf> {
    let bytes = encode(index);
    locations(&index.root)
        .into_iter()
        .find(|path| write_atomic(path, &bytes).is_ok())
}

/// Waits for, then holds, the build lock of a cache: `<cache file>.lock` beside the
/// first of `paths` where it can be created (the first location's folder, inside the
/// root, is never created; the user cache's is). Processes opening the same root at
/// once (DDP ranks, DataLoader workers) then build one at a time: the first builds and
/// saves, the others find its cache fresh once they get the lock. `None` when no lock
/// file can be made (each process builds, as without the lock). Released on drop.
pub(crate) fn build_lock(paths: &[PathBuf]) -> Option<std::fs::File> {
    paths.iter().enumerate().find_map(|(i, path)| {
        let name = format!("{}.lock", path.file_name()?.to_string_lossy());
        let lock = path.with_file_name(name);
        if i > 0 {
            std::fs::create_dir_all(lock.parent()?).ok()?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .ok()?;
        file.lock().ok()?;
        Some(file)
    })
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache paths have a parent");
    std::fs::create_dir_all(dir)?;
    let nanos = super::fingerprint::now_ns();
    let tmp = dir.join(format!(
        "{}.tmp-{}-{nanos}",
        path.file_name().expect("named").to_string_lossy(),
        std::process::id()
    ));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Serialises `index` (see the module docs for the layout).
pub fn encode(index: &RootIndex) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        64 + index.chunks.len() * 44 + index.tiles.len() * 12 + index.tile_names.len() * 4,
    );
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, VERSION);
    out.extend_from_slice(&index.built_ns.to_le_bytes());
    for n in [
        index.chunks.len(),
        index.tiles.len(),
        index.tile_names.len(),
        index.other_names.len(),
        index.text.len(),
        index.centers_errors.len(),
    ] {
        put_u32(&mut out, n as u32);
    }
    for c in &index.chunks {
        for v in [
            c.name.0,
            c.name.1,
            c.tile_start,
            c.tile_count,
            c.flags,
            c.names,
        ] {
            put_u32(&mut out, v);
        }
        out.extend_from_slice(&c.dir_mtime_ns.to_le_bytes());
        out.extend_from_slice(&c.centers_mtime_ns.to_le_bytes());
        out.extend_from_slice(&c.centers_size.to_le_bytes());
    }
    for t in &index.tiles {
        for v in [t.row, t.col, t.width] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    for &code in &index.tile_names {
        put_u32(&mut out, code);
    }
    for &(off, len) in &index.other_names {
        put_u32(&mut out, off);
        put_u32(&mut out, len);
    }
    out.extend_from_slice(&index.text);
    for (chunk, reason) in &index.centers_errors {
        put_u32(&mut out, *chunk);
        put_u32(&mut out, reason.len() as u32);
        out.extend_from_slice(reason.as_bytes());
    }
    let crc = crc32fast::hash(&out);
    put_u32(&mut out, crc);
    out
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A cursor over the cache bytes; every read is bounds-checked.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader past the header of a cache file whose trailing CRC32 matches and whose
    /// magic and version are these; `None` otherwise.
    pub(crate) fn checked(bytes: &'a [u8], magic: &[u8; 8], version: u32) -> Option<Reader<'a>> {
        let (body, crc) = bytes.split_at(bytes.len().checked_sub(4)?);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut r = Reader {
            bytes: body,
            pos: 0,
        };
        (r.take(8)? == magic && r.u32()? == version).then_some(r)
    }

    /// True when every byte was read.
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub(crate) fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub(crate) fn count(&mut self, item_bytes: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        // A count the remaining bytes cannot hold is damage, not a huge allocation.
        (n.checked_mul(item_bytes)? <= self.bytes.len() - self.pos).then_some(n)
    }
}

/// Parses a cache file; `None` when it is damaged, truncated or of another version.
pub fn decode(bytes: &[u8]) -> Option<RootIndex> {
    let mut r = Reader::checked(bytes, MAGIC, VERSION)?;
    let body = r.bytes;
    let built_ns = r.i64()?;
    let n_chunks = r.count(44)?;
    let n_tiles = r.count(12)?;
    let n_names = r.count(4)?;
    let n_other = r.count(8)?;
    let text_len = r.count(1)?;
    let n_errors = r.count(8)?;
    let mut index = RootIndex {
        built_ns,
        ..Default::default()
    };
    index.chunks.reserve_exact(n_chunks);
    for _ in 0..n_chunks {
        index.chunks.push(Chunk {
            name: (r.u32()?, r.u32()?),
            tile_start: r.u32()?,
            tile_count: r.u32()?,
            flags: r.u32()?,
            names: r.u32()?,
            dir_mtime_ns: r.i64()?,
            centers_mtime_ns: r.i64()?,
            centers_size: r.i64()? as u64,
        });
    }
    index.tiles.reserve_exact(n_tiles);
    for _ in 0..n_tiles {
        index.tiles.push(Tile {
            row: r.i32()?,
            col: r.i32()?,
            width: r.i32()?,
        });
    }
    index.tile_names.reserve_exact(n_names);
    for _ in 0..n_names {
        index.tile_names.push(r.u32()?);
    }
    index.other_names.reserve_exact(n_other);
    for _ in 0..n_other {
        index.other_names.push((r.u32()?, r.u32()?));
    }
    index.text = r.take(text_len)?.to_vec();
    for _ in 0..n_errors {
        let chunk = r.u32()?;
        let len = r.u32()? as usize;
        let reason = String::from_utf8(r.take(len)?.to_vec()).ok()?;
        index.centers_errors.push((chunk, reason));
    }
    (r.pos == body.len() && consistent(&index)).then_some(index)
}

/// Every span and range points inside its array (so accessors cannot panic).
fn consistent(index: &RootIndex) -> bool {
    let text = index.text.len() as u64;
    let span_ok = |&(off, len): &(u32, u32)| off as u64 + len as u64 <= text;
    let code_ok = |&code: &u32| {
        code & super::OTHER_NAME == 0
            || ((code & !super::OTHER_NAME) as usize) < index.other_names.len()
    };
    index.chunks.iter().all(|c| {
        let n = c.tile_count as u64;
        span_ok(&c.name)
            && c.tile_start as u64 + n <= index.tiles.len() as u64
            && if c.flags & super::NAME_RUN != 0 {
                n == 0 || c.names as u64 + n <= super::OTHER_NAME as u64
            } else {
                c.names as u64 + n <= index.tile_names.len() as u64
            }
    }) && index.other_names.iter().all(span_ok)
        && index.tile_names.iter().all(code_ok)
        && index
            .centers_errors
            .iter()
            .all(|(c, _)| (*c as usize) < index.chunks.len())
}
