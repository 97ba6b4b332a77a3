//! Our own files at DST's top level (docs/spec.md §2: their names start with `.dlas_fast`):
//! written anew or atomically, opened without following a link or waiting on a pipe,
//! read up to a size; and the job manifests and stored source lists read, stored and
//! tidied through them.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::dest::{refuse, Manifest, OWN_PREFIX};
use super::record::SourceRecord;
use crate::error::{CoreError, Result};

pub(super) fn sources_path(root: &Path, digest: &str) -> PathBuf {
    root.join(format!("{OWN_PREFIX}-sources-{digest}"))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    write_new(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| CoreError::io(path, e))
}

/// Writes `bytes` to a file `path` created anew: whatever was left at that name (a
/// killed run's file, or a link someone put there) is unlinked first, and the file is
/// created exclusively, so the write never goes through a link out of DST.
fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_dir() => std::fs::remove_file(path).map_err(|e| CoreError::io(path, e))?,
        _ => {}
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| CoreError::io(path, e))?;
    f.write_all(bytes).map_err(|e| CoreError::io(path, e))
}

/// Largest job manifest read (they are a few hundred bytes).
const MANIFEST_MAX: u64 = 1 << 20;
/// Largest stored source list read (about 30 bytes a source).
const SOURCES_MAX: u64 = 1 << 30;

/// Opens a file of ours (a lock, a manifest, a stored list) with `how`, never following
/// a link and never waiting on a pipe: anything at its name but a regular file is
/// refused, as something dlas-fast did not make.
pub(super) fn open_own(path: &Path, how: &mut OpenOptions) -> Result<File> {
    let not_ours = || {
        refuse(
            path,
            "is not a regular file (a folder, a link, a pipe or a device), so dlas-fast did \
             not make it and does not read it; nothing was changed: remove it, then rerun",
        )
    };
    let file = match how
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        // A link (ELOOP), a pipe nobody reads (ENXIO, when opened to write).
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENXIO)) => {
            return Err(not_ours())
        }
        Err(e) => return Err(CoreError::io(path, e)),
    };
    let meta = file.metadata().map_err(|e| CoreError::io(path, e))?;
    if !meta.is_file() {
        return Err(not_ours());
    }
    Ok(file)
}

/// The bytes of a file of ours ([`open_own`]), at most `max` of them.
fn read_own(path: &Path, max: u64) -> Result<Vec<u8>> {
    let file = open_own(path, OpenOptions::new().read(true))?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CoreError::io(path, e))?;
    if bytes.len() as u64 > max {
        return Err(refuse(
            path,
            format!("is larger than {max} bytes, so dlas-fast did not write it; nothing was changed: remove it, then rerun"),
        ));
    }
    Ok(bytes)
}

pub(super) fn read_manifest(path: &Path) -> Result<Manifest> {
    let text = read_own(path, MANIFEST_MAX)?;
    serde_json::from_slice(&text).map_err(|e| CoreError::Destination {
        path: path.to_path_buf(),
        reason: format!("unreadable job manifest ({e}); delete it if DST is to be reused"),
    })
}

/// The stored source list of digest `digest`, if present and intact.
pub(super) fn read_sources(root: &Path, digest: &str) -> Option<SourceRecord> {
    // A digest is 16 hex digits; anything else in a manifest names no list of ours.
    if digest.len() != 16 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = read_own(&sources_path(root, digest), SOURCES_MAX).ok()?;
    SourceRecord::decode(&bytes).filter(|r| r.digest() == digest)
}

/// Stores `record` as `.dlas_fast-sources-<digest>` unless it is there already.
pub(super) fn store_sources(root: &Path, record: &SourceRecord, digest: &str) -> Result<()> {
    let path = sources_path(root, digest);
    if read_sources(root, digest).is_some() {
        return Ok(());
    }
    // Shards of one job may store the same list at once: each through its own file.
    static STORED: AtomicUsize = AtomicUsize::new(0);
    let tmp = root.join(format!(
        "{OWN_PREFIX}-sources-{digest}.{}-{}.partial",
        std::process::id(),
        STORED.fetch_add(1, Ordering::Relaxed)
    ));
    write_new(&tmp, &record.encode())?;
    std::fs::rename(&tmp, &path).map_err(|e| CoreError::io(&path, e))
}

/// Removes stored source lists that no manifest names any more (after an overwrite
/// from a changed list). The lists are read before the manifests, and every run names
/// its list in its manifest before storing it, so a list still wanted is never seen
/// here without the manifest that wants it.
pub(super) fn remove_unused_sources(root: &Path) -> Result<()> {
    let prefix = format!("{OWN_PREFIX}-sources-");
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| CoreError::io(root, e))? {
        let entry = entry.map_err(|e| CoreError::io(root, e))?;
        let name = entry.file_name();
        let Some(digest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let ours = digest.len() == 16 && digest.bytes().all(|b| b.is_ascii_hexdigit());
        if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
            stored.push((digest.to_string(), entry.path()));
        }
    }
    if stored.len() <= 1 {
        return Ok(());
    }
    let mut wanted = HashSet::new();
    for entry in std::fs::read_dir(root).map_err(|e| CoreError::io(root, e))? {
        let entry = entry.map_err(|e| CoreError::io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{OWN_PREFIX}-job-")) && name.ends_with(".json") {
            match read_manifest(&entry.path()) {
                Ok(m) => wanted.extend(m.sources),
                // Being replaced, or damaged: keep every list.
                Err(_) => return Ok(()),
            }
        }
    }
    for (digest, path) in stored {
        if !wanted.contains(&digest) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(CoreError::io(&path, e)),
            }
        }
    }
    Ok(())
}
