//! The files of a chunk folder, as a pack takes them.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{CoreError, Result};
use crate::index::bytes_path;

/// One file to pack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Its path relative to the dataset root (`chunk/00000001.jpg`): the member's name.
    pub rel: Vec<u8>,
    /// Where it is read from.
    pub src: PathBuf,
    pub size: u64,
    /// Its modification time, whole seconds since the epoch (0 before it).
    pub mtime: u64,
    /// The same in nanoseconds (what a resumed pack compares).
    pub mtime_ns: u64,
}

/// A file of a chunk folder that is not packed, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

pub(super) struct ChunkFiles {
    pub files: Vec<FileEntry>,
    pub skipped: Vec<Skipped>,
}

/// Every regular file under the chunk folder `name` of `root`, sorted by path (bytes),
/// in sub-folders too. Left out, each named with why: the dataset's own files
/// (`.dlas_fast*`), anything that is not a regular file (FIFOs, sockets, devices),
/// links to folders (not followed: a loop is harmless), and links to files outside
/// the dataset root and the chunk folder (the pack holds the dataset, nothing else).
/// A link to a file inside is packed as a file with the target's bytes.
pub(super) fn list_chunk(
    root: &Path,
    canonical_root: &Path,
    canonical_out: Option<&Path>,
    name: &[u8],
) -> Result<ChunkFiles> {
    let dir = root.join(bytes_path(name));
    let canonical_dir = std::fs::canonicalize(&dir).map_err(|e| CoreError::io(&dir, e))?;
    let mut out = ChunkFiles {
        files: Vec::new(),
        skipped: Vec::new(),
    };
    // A chunk folder that is (a link to) the pack's own folder, or holds it or lies in
    // it, would pack the pack.
    let into_out =
        |real: &Path| canonical_out.is_some_and(|o| real.starts_with(o) || o.starts_with(real));
    if into_out(&canonical_dir) {
        out.skipped
            .push(skip(&dir, "a link to the pack's own folder OUT"));
        return Ok(out);
    }
    // (folder on disk, its path relative to the root)
    let mut stack: Vec<(PathBuf, Vec<u8>)> = vec![(dir, name.to_vec())];
    while let Some((folder, rel)) = stack.pop() {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(&folder).map_err(|e| CoreError::io(&folder, e))? {
            let entry = entry.map_err(|e| CoreError::io(&folder, e))?;
            entries.push(entry.file_name());
        }
        entries.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut subfolders = Vec::new();
        for file_name in entries {
            let bytes = file_name.as_bytes();
            if bytes.starts_with(b".dlas_fast") {
                continue;
            }
            let path = folder.join(&file_name);
            let mut member = rel.clone();
            member.push(b'/');
            member.extend_from_slice(bytes);
            let meta = std::fs::symlink_metadata(&path).map_err(|e| CoreError::io(&path, e))?;
            let ft = meta.file_type();
            if ft.is_dir() {
                subfolders.push((path, member));
                continue;
            }
            let meta = if ft.is_symlink() {
                let target = match std::fs::metadata(&path) {
                    Ok(m) => m,
                    Err(e) => {
                        out.skipped
                            .push(skip(&path, format!("a broken link ({e})")));
                        continue;
                    }
                };
                if target.is_dir() {
                    out.skipped
                        .push(skip(&path, "a link to a folder (not followed)"));
                    continue;
                }
                let real = std::fs::canonicalize(&path).map_err(|e| CoreError::io(&path, e))?;
                if into_out(&real) {
                    out.skipped
                        .push(skip(&path, "a link into the pack's own folder OUT"));
                    continue;
                }
                if !real.starts_with(canonical_root) && !real.starts_with(&canonical_dir) {
                    out.skipped.push(skip(
                        &path,
                        format!("a link to {} outside the dataset", real.display()),
                    ));
                    continue;
                }
                target
            } else {
                meta
            };
            let ft = meta.file_type();
            if !ft.is_file() {
                let kind = if ft.is_fifo() {
                    "a FIFO"
                } else if ft.is_socket() {
                    "a socket"
                } else if ft.is_char_device() || ft.is_block_device() {
                    "a device"
                } else {
                    "not a regular file"
                };
                out.skipped.push(skip(
                    &path,
                    format!("{kind}; only regular files are packed"),
                ));
                continue;
            }
            out.files.push(FileEntry {
                rel: member,
                src: path,
                size: meta.len(),
                mtime: u64::try_from(meta.mtime()).unwrap_or(0),
                mtime_ns: u64::try_from(meta.mtime())
                    .unwrap_or(0)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(u64::try_from(meta.mtime_nsec()).unwrap_or(0)),
            });
        }
        // Depth first, in name order: the folders are pushed so that the first pops
        // first.
        stack.extend(subfolders.into_iter().rev());
    }
    // Members in path order: a sub-folder's files after its parent's files that sort
    // before it, as `sorted()` of the relative paths gives.
    out.files.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn skip(path: &Path, reason: impl Into<String>) -> Skipped {
    Skipped {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}
