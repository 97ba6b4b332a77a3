//! The file listing of an image-folder dataset root (ImageFolderDataset, docs/spec.md §5): every
//! image under the root, in DLAS's order, with a cache file kept by the same rules as
//! the chunk index (fingerprinted, relocatable, not a pickle).
//!
//! DLAS lists a root with `sorted(os.walk(root))` and, in each folder, its sorted file
//! names ending in one of [`EXTENSIONS`] and not containing `ref.jpg`. So do we: folders
//! in the order of their relative paths (the root first), files by name, both compared
//! as bytes (code points, as Python compares the names). As `os.walk` does, a link to a
//! folder is not entered, and a link to a file is listed like a file. A folder that
//! cannot be read is an error naming it (`os.walk` skips it silently).
//!
//! Held as two flat arrays: per folder its path span, mtime and file range; per file
//! its name span (8 bytes a file, plus the name bytes). A folder's files are
//! consecutive, which is how the "other tiles of this chunk folder" of
//! `fetch_alt_tiled_image` are found without listing the folder again.
//!
//! The fingerprint is every folder's mtime: adding, removing or renaming a file or a
//! sub-folder changes its parent folder's mtime, so one `stat` per folder (not per
//! file) tells whether the cache still holds. Folders modified close to the scan are not
//! trusted, as for the chunk index: within [`super::fingerprint::RACY_NS`] for stamps
//! in whole seconds (coarse file systems), within 20 ms for stamps with nanoseconds.
//!
//! Cache file: `<root>/.dlas_fast-folder/listing.bin`, or, when the root cannot be
//! written, `<user cache>/folder/<hash of the absolute root>.bin`. It sits in a folder of
//! its own, made before the scan and never listed, so writing it does not change the
//! root's mtime (which would make the listing look stale). Layout (little-endian):
//!
//! ```text
//! magic "DLASFLST" | version u32 | built_ns i64
//! n_dirs u32 | n_files u32 | text_len u32
//! dirs:  n_dirs x (path_off u32, path_len u32, mtime_ns i64, first u32, count u32)
//! files: n_files x (name_off u32, name_len u32)
//! text:  text_len bytes (folder paths relative to the root, and file names)
//! crc32 of everything above, u32
//! ```

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::cache::{locations_of, write_atomic, Reader};
use super::fingerprint::{mtime_ns, now_ns, RACY_NS};
use super::{bytes_path, release_freed_memory, with_own_pool, CacheMode};
use crate::error::{CoreError, Result};

/// The folder of the cache file in the dataset root (not listed).
pub const CACHE_DIR: &str = ".dlas_fast-folder";
/// The cache file's name in [`CACHE_DIR`].
pub const FILE_NAME: &str = "listing.bin";
const MAGIC: &[u8; 8] = b"DLASFLST";
const VERSION: u32 = 1;

/// The racy window for stamps with nanoseconds: well over a kernel clock tick.
const FINE_RACY_NS: i64 = 20_000_000;

/// DLAS's `IMG_EXTENSIONS`: these exact spellings (`.Jpg` is not one).
pub const EXTENSIONS: [&str; 12] = [
    ".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".ppm", ".PPM", ".bmp", ".BMP", ".webp",
    ".WEBP",
];

/// True when DLAS's image-folder listing takes a file of this name.
pub fn is_listed(name: &[u8]) -> bool {
    EXTENSIONS.iter().any(|e| name.ends_with(e.as_bytes()))
        && !name.windows(7).any(|w| w == b"ref.jpg")
}

/// One folder of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Dir {
    /// Byte span in `text` of its path relative to the root (empty: the root).
    path: (u32, u32),
    mtime_ns: i64,
    /// Its files are `files[first .. first + count]`.
    first: u32,
    count: u32,
}

/// The image files of one root.
#[derive(Debug, Default, PartialEq)]
pub struct FolderIndex {
    /// The root as given (not in the cache: a moved dataset keeps its cache).
    pub root: PathBuf,
    dirs: Vec<Dir>,
    files: Vec<(u32, u32)>,
    text: Vec<u8>,
    /// When the scan started (ns since the epoch).
    pub built_ns: i64,
    /// Where the cache was read from or written to, if anywhere.
    pub cache_path: Option<PathBuf>,
    /// True when this listing came from the cache file.
    pub from_cache: bool,
}

/// One scanned folder: relative path, mtime, listed file names (sorted).
type Scanned = (Vec<u8>, i64, Vec<Vec<u8>>);

fn scan(root: &Path, rel: Vec<u8>) -> Result<Vec<Scanned>> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(bytes_path(&rel))
    };
    let meta = std::fs::metadata(&dir).map_err(|e| CoreError::io(&dir, e))?;
    let mut files = Vec::new();
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| CoreError::io(&dir, e))? {
        let entry = entry.map_err(|e| CoreError::io(&dir, e))?;
        let name = entry.file_name();
        let name = name.as_bytes();
        if rel.is_empty() && name == CACHE_DIR.as_bytes() {
            continue; // our cache
        }
        let ft = entry
            .file_type()
            .map_err(|e| CoreError::io(entry.path(), e))?;
        if ft.is_dir() {
            let mut sub = rel.clone();
            if !sub.is_empty() {
                sub.push(b'/');
            }
            sub.extend_from_slice(name);
            subdirs.push(sub);
        } else if ft.is_symlink() && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
            // A link to a folder: os.walk lists it as a folder and does not enter it.
        } else if is_listed(name) {
            files.push(name.to_vec());
        }
    }
    files.sort_unstable();
    let mut out = vec![(rel, mtime_ns(&meta), files)];
    let below: Vec<Vec<Scanned>> = subdirs
        .into_par_iter()
        .map(|sub| scan(root, sub))
        .collect::<Result<_>>()?;
    out.extend(below.into_iter().flatten());
    Ok(out)
}

impl FolderIndex {
    /// Lists `root` by scanning it (folders in parallel).
    pub fn build(root: &Path) -> Result<FolderIndex> {
        let meta = std::fs::metadata(root).map_err(|e| CoreError::io(root, e))?;
        if !meta.is_dir() {
            return Err(CoreError::option(
                "paths",
                format!("{} is not a folder", root.display()),
            ));
        }
        let built_ns = now_ns();
        let mut scanned = scan(root, Vec::new())?;
        scanned.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut index = FolderIndex {
            root: root.to_path_buf(),
            built_ns,
            ..Default::default()
        };
        let n_files: usize = scanned.iter().map(|s| s.2.len()).sum();
        index.files.reserve_exact(n_files);
        for (rel, mtime_ns, files) in scanned {
            let path = index.push_text(&rel);
            index.dirs.push(Dir {
                path,
                mtime_ns,
                first: index.files.len() as u32,
                count: files.len() as u32,
            });
            for f in files {
                let span = index.push_text(&f);
                index.files.push(span);
            }
        }
        if index.files.len() > u32::MAX as usize || index.text.len() > u32::MAX as usize {
            return Err(CoreError::option(
                "paths",
                format!("{}: too many files for one listing", root.display()),
            ));
        }
        Ok(index)
    }

    fn push_text(&mut self, bytes: &[u8]) -> (u32, u32) {
        let off = self.text.len() as u32;
        self.text.extend_from_slice(bytes);
        (off, bytes.len() as u32)
    }

    fn span(&self, (off, len): (u32, u32)) -> &[u8] {
        &self.text[off as usize..(off + len) as usize]
    }

    /// Opens the listing of `root`: from its cache when every folder's mtime still
    /// matches, else by scanning (and then saving the cache, unless `mode` is `Off`).
    pub fn open(root: &Path, mode: CacheMode) -> Result<FolderIndex> {
        if mode == CacheMode::Use {
            if let Some(index) = with_own_pool(|| load_fresh(root))? {
                return Ok(index);
            }
        }
        if mode != CacheMode::Off {
            // Made before the scan, so that writing the cache (and its lock) does not
            // change the root's stamp later.
            let _ = std::fs::create_dir(root.join(CACHE_DIR));
        }
        // One builder at a time; the others read its cache (see RootIndex::open).
        let mut _lock = None;
        if mode == CacheMode::Use {
            _lock = super::cache::build_lock(&cache_locations(root));
            if _lock.is_some() {
                if let Some(index) = with_own_pool(|| load_fresh(root))? {
                    return Ok(index);
                }
            }
        }
        if mode != CacheMode::Off {
            // On a file system with fine time stamps, let the root's stamp (changed by
            // the cache folder just made) fall out of the racy window before the scan,
            // so that the cache is trusted.
            if let Ok(m) = std::fs::metadata(root) {
                let age = now_ns() - mtime_ns(&m);
                if (0..2 * FINE_RACY_NS).contains(&age) {
                    let wait = (2 * FINE_RACY_NS - age) as u64;
                    std::thread::sleep(std::time::Duration::from_nanos(wait));
                }
            }
        }
        let mut index = with_own_pool(|| Self::build(root))?;
        release_freed_memory();
        if mode != CacheMode::Off {
            let bytes = index.encode();
            index.cache_path = cache_locations(root)
                .into_iter()
                .find(|p| write_atomic(p, &bytes).is_ok());
        }
        Ok(index)
    }

    /// How many images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The folder holding file `i`.
    fn dir_of(&self, i: usize) -> &Dir {
        let d = self.dirs.partition_point(|d| d.first as usize <= i) - 1;
        &self.dirs[d]
    }

    /// `os.path.join(dirpath, name)` of file `i`, as DLAS builds it from the root as
    /// given.
    pub fn path(&self, i: usize) -> PathBuf {
        let dir = self.dir_of(i);
        let name = bytes_path(self.span(self.files[i]));
        if dir.path.1 == 0 {
            self.root.join(name)
        } else {
            self.root.join(bytes_path(self.span(dir.path))).join(name)
        }
    }

    /// The file name (no folder) of file `i`.
    pub fn name(&self, i: usize) -> &[u8] {
        self.span(self.files[i])
    }

    /// The files of the folder holding file `i` (itself included): `first..first+count`.
    pub fn siblings(&self, i: usize) -> std::ops::Range<usize> {
        let d = self.dir_of(i);
        d.first as usize..(d.first + d.count) as usize
    }

    /// Heap bytes held.
    pub fn resident_bytes(&self) -> usize {
        self.dirs.capacity() * std::mem::size_of::<Dir>()
            + self.files.capacity() * 8
            + self.text.capacity()
    }

    /// Serialises the listing (see the module docs for the layout).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(48 + self.dirs.len() * 24 + self.files.len() * 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.built_ns.to_le_bytes());
        for n in [self.dirs.len(), self.files.len(), self.text.len()] {
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        for d in &self.dirs {
            out.extend_from_slice(&d.path.0.to_le_bytes());
            out.extend_from_slice(&d.path.1.to_le_bytes());
            out.extend_from_slice(&d.mtime_ns.to_le_bytes());
            out.extend_from_slice(&d.first.to_le_bytes());
            out.extend_from_slice(&d.count.to_le_bytes());
        }
        for &(off, len) in &self.files {
            out.extend_from_slice(&off.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
        }
        out.extend_from_slice(&self.text);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses a cache file; `None` when damaged, truncated or of another version.
    pub fn decode(bytes: &[u8]) -> Option<FolderIndex> {
        let mut r = Reader::checked(bytes, MAGIC, VERSION)?;
        let built_ns = r.i64()?;
        let n_dirs = r.count(24)?;
        let n_files = r.count(8)?;
        let text_len = r.count(1)?;
        let mut index = FolderIndex {
            built_ns,
            ..Default::default()
        };
        index.dirs.reserve_exact(n_dirs);
        for _ in 0..n_dirs {
            index.dirs.push(Dir {
                path: (r.u32()?, r.u32()?),
                mtime_ns: r.i64()?,
                first: r.u32()?,
                count: r.u32()?,
            });
        }
        index.files.reserve_exact(n_files);
        for _ in 0..n_files {
            index.files.push((r.u32()?, r.u32()?));
        }
        index.text = r.take(text_len)?.to_vec();
        (r.at_end() && index.consistent()).then_some(index)
    }

    /// Every span inside the text, and the folders' file ranges tiling the files in
    /// order (so accessors cannot panic).
    fn consistent(&self) -> bool {
        let text = self.text.len() as u64;
        let span_ok = |&(off, len): &(u32, u32)| off as u64 + len as u64 <= text;
        let mut next = 0u64;
        let dirs_ok = self.dirs.iter().all(|d| {
            let ok = span_ok(&d.path) && d.first as u64 == next;
            next += d.count as u64;
            ok
        });
        dirs_ok
            && next == self.files.len() as u64
            && (self.files.is_empty() || !self.dirs.is_empty())
            && self.files.iter().all(span_ok)
    }

    /// True when every folder still has the mtime it had when listed (and none was
    /// modified racily close to the scan).
    fn is_fresh(&self, root: &Path) -> bool {
        // A stamp with nanoseconds comes from a file system with fine time stamps,
        // where a change after the scan gets a later stamp unless it falls within the
        // kernel's clock tick; whole seconds may be a coarse file system's.
        let racy = |t: i64| {
            let window = if t % 1_000_000_000 != 0 {
                FINE_RACY_NS
            } else {
                RACY_NS
            };
            (t - self.built_ns).abs() < window
        };
        self.dirs.par_iter().all(|d| {
            let dir = root.join(bytes_path(self.span(d.path)));
            match std::fs::metadata(&dir) {
                Ok(m) => m.is_dir() && mtime_ns(&m) == d.mtime_ns && !racy(d.mtime_ns),
                Err(_) => false,
            }
        })
    }
}

/// Where the cache of `root` may live: in the root's cache folder, then in the user
/// cache.
pub fn cache_locations(root: &Path) -> Vec<PathBuf> {
    let mut out = locations_of(root, FILE_NAME, "folder");
    out[0] = root.join(CACHE_DIR).join(FILE_NAME);
    out
}

/// The cached listing of `root`, if a cache file exists, is intact and is fresh.
/// Read-only: never writes or removes a cache file.
pub fn load_fresh(root: &Path) -> Result<Option<FolderIndex>> {
    let meta = std::fs::metadata(root).map_err(|e| CoreError::io(root, e))?;
    if !meta.is_dir() {
        return Err(CoreError::option(
            "paths",
            format!("{} is not a folder", root.display()),
        ));
    }
    for path in cache_locations(root) {
        // A cache that cannot be read (missing, not a regular file, too large) is
        // rebuilt like a damaged one.
        let Ok(bytes) =
            crate::input::read_regular(&path, crate::input::CACHE_MAX_BYTES, "a cache file", "")
        else {
            continue;
        };
        let Some(mut index) = FolderIndex::decode(&bytes) else {
            continue; // damaged or from another version: rebuilt and replaced
        };
        if index.is_fresh(root) {
            index.root = root.to_path_buf();
            index.cache_path = Some(path);
            index.from_cache = true;
            return Ok(Some(index));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_names_follow_dlas() {
        assert!(is_listed(b"a.jpg") && is_listed(b"b.WEBP") && is_listed(b".x.png"));
        assert!(!is_listed(b"a.Jpg") && !is_listed(b"a.gif") && !is_listed(b"ref.jpg"));
        assert!(!is_listed(b"myref.jpg.png") && is_listed(b"ref.png"));
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        let dir = std::env::temp_dir().join(format!("dlas-folder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for p in ["a/b", "a-b", "c"] {
            std::fs::create_dir_all(dir.join(p)).unwrap();
        }
        for f in [
            "z.jpg",
            "a/b/1.png",
            "a/b/0.png",
            "a-b/x.jpg",
            "a/y.txt",
            "c/ref.jpg",
        ] {
            std::fs::write(dir.join(f), b"x").unwrap();
        }
        let index = FolderIndex::build(&dir).unwrap();
        let paths: Vec<PathBuf> = (0..index.len()).map(|i| index.path(i)).collect();
        let want: Vec<PathBuf> = ["z.jpg", "a-b/x.jpg", "a/b/0.png", "a/b/1.png"]
            .iter()
            .map(|p| dir.join(p))
            .collect();
        assert_eq!(paths, want);
        assert_eq!(index.siblings(3), 2..4);
        let bytes = index.encode();
        let back = FolderIndex::decode(&bytes).unwrap();
        assert_eq!(
            (back.dirs, back.files, back.text),
            (index.dirs, index.files, index.text)
        );
        let mut bad = bytes.clone();
        bad[30] ^= 1;
        assert!(FolderIndex::decode(&bad).is_none());
        assert!(FolderIndex::decode(&bytes[..bytes.len() - 1]).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
