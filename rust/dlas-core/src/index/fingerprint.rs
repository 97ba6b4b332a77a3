//! The tree fingerprint: the sorted chunk folder names, each folder's mtime, and its
//! centers.pt's mtime and size. One `stat` per chunk folder and one per centers.pt.
//!
//! Adding or removing a chunk changes the name list; adding, removing or renaming a
//! tile (or ref.jpg) changes the chunk folder's mtime; rewriting centers.pt changes its
//! stamp. Moving the dataset, or copying it with times kept (`cp -a`, `rsync -a`),
//! changes none of these, so the cache is reused. Not seen: a file rewritten in place
//! under the same name, and changes inside a chunk's sub-folders (tiles are normally
//! directly in the chunk).
//!
//! A folder modified within [`RACY_NS`] of the scan's start might have changed again
//! within the same mtime tick after it was scanned; such a cache is not trusted (the
//! next open rebuilds it, as git does with its "racily clean" index entries). Stamps
//! further in the future (a skewed clock) are trusted like old ones.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rayon::prelude::*;

use super::{bytes_path, RootIndex};
use crate::error::{CoreError, Result};

/// Two seconds: coarser than any file system's mtime resolution we expect.
pub const RACY_NS: i64 = 2_000_000_000;

/// Stamps of one chunk folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub dir_mtime_ns: i64,
    /// 0 and 0 when there is no centers.pt.
    pub centers_mtime_ns: i64,
    pub centers_size: u64,
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

pub(crate) fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    m.mtime() * 1_000_000_000 + m.mtime_nsec()
}

/// The chunk folder names of `root`, sorted by bytes (names starting with `.` skipped;
/// a link to a folder counts, as `os.scandir(...).is_dir()` follows links).
pub fn chunk_dirs(root: &Path) -> Result<Vec<Vec<u8>>> {
    let meta = std::fs::metadata(root).map_err(|e| CoreError::io(root, e))?;
    if !meta.is_dir() {
        return Err(CoreError::option(
            "paths",
            format!("{} is not a folder", root.display()),
        ));
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| CoreError::io(root, e))? {
        let entry = entry.map_err(|e| CoreError::io(root, e))?;
        let name = entry.file_name();
        if name.as_bytes().starts_with(b".") {
            continue;
        }
        let ft = entry
            .file_type()
            .map_err(|e| CoreError::io(entry.path(), e))?;
        let is_dir = ft.is_dir()
            || (ft.is_symlink() && std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()));
        if is_dir {
            names.push(name.as_bytes().to_vec());
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// The stamps of the chunk folder `dir`.
pub fn stamp(dir: &Path) -> Result<Stamp> {
    let meta = std::fs::metadata(dir).map_err(|e| CoreError::io(dir, e))?;
    let centers = dir.join("centers.pt");
    let (centers_mtime_ns, centers_size) = match std::fs::metadata(&centers) {
        Ok(m) => (mtime_ns(&m), m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, 0),
        Err(e) => return Err(CoreError::io(centers, e)),
    };
    Ok(Stamp {
        dir_mtime_ns: mtime_ns(&meta),
        centers_mtime_ns,
        centers_size,
    })
}

/// True when `index` (read from a cache) still describes `root`.
pub fn is_fresh(index: &RootIndex, root: &Path) -> Result<bool> {
    let names = chunk_dirs(root)?;
    if names.len() != index.chunks.len()
        || names
            .iter()
            .enumerate()
            .any(|(i, n)| n.as_slice() != index.chunk_name(i))
    {
        return Ok(false);
    }
    // Racy: modified within RACY_NS of the scan's start, before or after it. A stamp
    // further in the future (a skewed clock, a file server ahead of us) is trusted
    // like an old one: otherwise such a chunk would force a rebuild on every open.
    let racy = |t: i64| (t - index.built_ns).abs() < RACY_NS;
    let all_same = index.chunks.par_iter().enumerate().all(|(i, c)| {
        let dir = root.join(bytes_path(index.chunk_name(i)));
        match stamp(&dir) {
            Ok(s) => {
                s.dir_mtime_ns == c.dir_mtime_ns
                    && s.centers_mtime_ns == c.centers_mtime_ns
                    && s.centers_size == c.centers_size
                    && !racy(s.dir_mtime_ns)
                    && !racy(s.centers_mtime_ns)
            }
            Err(_) => false,
        }
    });
    Ok(all_same)
}
