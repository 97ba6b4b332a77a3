//! Writing one shard: POSIX tar members (ustar headers, and a pax `path` record for a
//! name that ustar cannot hold), then its sidecar index.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::sidecar::{self, Sidecar, SidecarMember};
use super::walk::FileEntry;
use super::{in_out, shard_name, sidecar_name, PackProgress, PlannedShard};
use crate::error::{CoreError, Result};
use crate::index::bytes_path;
use crate::input::read_regular;

/// A tar block.
const BLOCK: u64 = 512;
/// The end of an archive: two zero blocks.
pub(super) const END_BYTES: u64 = 2 * BLOCK;
/// The largest file a pack takes (a chunk's files are tiles of kilobytes).
const MAX_MEMBER_BYTES: u64 = 4 << 30;

fn padded(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}

/// The pax record `"<len> path=<value>\n"`, whose length counts its own digits.
pub(super) fn pax_path_record(value: &[u8]) -> Vec<u8> {
    let rest = " path=".len() + value.len() + 1;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} path=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    debug_assert_eq!(record.len(), len);
    record
}

/// The ustar header of a member (mode 0644, owner 0, the file's mtime), and the pax
/// record that names it when the ustar name and prefix fields cannot.
fn member_header(f: &FileEntry) -> (tar::Header, Option<Vec<u8>>) {
    let mut h = tar::Header::new_ustar();
    h.set_size(f.size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(f.mtime);
    h.set_entry_type(tar::EntryType::Regular);
    let pax = match h.set_path(bytes_path(&f.rel)) {
        Ok(()) => None,
        Err(_) => {
            // Readers take the pax path; the ustar name keeps the file's own name (its
            // last 99 bytes), for tools that ignore pax.
            let base = f.rel.rsplit(|&b| b == b'/').next().unwrap_or(&f.rel);
            let tail = &base[base.len().saturating_sub(99)..];
            let ustar = h.as_ustar_mut().expect("a ustar header");
            ustar.name = [0; 100];
            ustar.prefix = [0; 155];
            ustar.name[..tail.len()].copy_from_slice(tail);
            Some(pax_path_record(&f.rel))
        }
    };
    h.set_cksum();
    (h, pax)
}

/// The pax extended header ('x') carrying `record`.
fn pax_header(record: &[u8]) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(record.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_path("PaxHeader").expect("a short name");
    h.set_cksum();
    h
}

/// The bytes `f` takes in a shard: its headers, its data and the data's padding.
pub(super) fn member_bytes(f: &FileEntry) -> u64 {
    let (_, pax) = member_header(f);
    let pax = pax.map_or(0, |r| BLOCK + padded(r.len() as u64));
    pax + BLOCK + padded(f.size)
}

/// A writer that counts what it writes.
struct Counting<W> {
    inner: W,
    pos: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn part_name(name: &str) -> String {
    format!(".dlas_fast-{name}.part")
}

/// Creates the temporary file `path` anew: whatever had that name (our own leftover, or
/// a link planted there) is removed first, and the new file is created exclusively,
/// never through a link.
pub(super) fn create_part(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(CoreError::io(path, e)),
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| CoreError::io(path, e))
}

/// Writes shard `i` of the plan (its tar, then its sidecar, each under a temporary
/// name renamed once complete).
pub(super) fn write_shard(
    out: &Path,
    i: usize,
    shard: &PlannedShard,
    progress: &dyn PackProgress,
) -> Result<()> {
    let tar_name = shard_name(i);
    let part = in_out(out, &part_name(&tar_name));
    let file = create_part(&part)?;
    let io_err = |e: io::Error| CoreError::io(&part, e);
    let mut builder = tar::Builder::new(Counting {
        inner: BufWriter::with_capacity(1 << 20, file),
        pos: 0,
    });
    let mut members = Vec::with_capacity(shard.files.len());
    for f in &shard.files {
        if progress.cancelled() {
            drop(builder);
            let _ = std::fs::remove_file(&part);
            return Err(CoreError::Interrupted);
        }
        let data = read_regular(&f.src, MAX_MEMBER_BYTES, "a chunk file", "")
            .map_err(|e| CoreError::io(&f.src, e))?;
        if data.len() as u64 != f.size {
            return Err(CoreError::io(
                &f.src,
                io::Error::other(format!(
                    "changed while packing ({} bytes when listed, {} now): pack again",
                    f.size,
                    data.len()
                )),
            ));
        }
        let (header, pax) = member_header(f);
        if let Some(record) = pax {
            builder
                .append(&pax_header(&record), record.as_slice())
                .map_err(io_err)?;
        }
        builder.append(&header, data.as_slice()).map_err(io_err)?;
        let end = builder.get_ref().pos;
        members.push(SidecarMember {
            path: f.rel.clone(),
            offset: end - padded(f.size),
            size: f.size,
            mtime: f.mtime,
            mtime_ns: f.mtime_ns,
        });
    }
    let mut counting = builder.into_inner().map_err(io_err)?;
    counting.flush().map_err(io_err)?;
    let size = counting.pos;
    let file = counting
        .inner
        .into_inner()
        .map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)?;
    drop(file);
    if size != shard.bytes {
        return Err(CoreError::io(
            &part,
            io::Error::other(format!(
                "{size} bytes written where {} were planned (a bug: please report it)",
                shard.bytes
            )),
        ));
    }
    let index = Sidecar {
        tar: tar_name.clone(),
        size,
        members,
    };
    let idx_name = sidecar_name(i);
    let idx_part = in_out(out, &part_name(&idx_name));
    sidecar::write_json(&idx_part, &sidecar::sidecar_json(&index))?;
    // The old shard goes first, then the sidecar comes, then the tar: a tar without a
    // sidecar is never taken for the pack's own, and a crash between two steps never
    // leaves a sidecar beside a tar it does not describe.
    let tar_path = in_out(out, &tar_name);
    match std::fs::remove_file(&tar_path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(CoreError::io(&tar_path, e)),
    }
    rename(&idx_part, &in_out(out, &idx_name))?;
    rename(&part, &in_out(out, &tar_name))?;
    sync_dir(out);
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| CoreError::io(to, e))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Whether shard `i` is in `out` already, as the plan has it: its sidecar lists the
/// plan's files (paths, sizes, mtimes) and its tar has the sidecar's size. A file
/// under the shard's or sidecar's name that the pack did not write is an error (it is
/// never overwritten).
pub(super) fn already_written(out: &Path, i: usize, shard: &PlannedShard) -> Result<bool> {
    let tar = in_out(out, &shard_name(i));
    let idx = in_out(out, &sidecar_name(i));
    let tar_meta = std::fs::symlink_metadata(&tar).ok();
    let idx_exists = std::fs::symlink_metadata(&idx).is_ok();
    if !idx_exists {
        return match tar_meta {
            None => Ok(false),
            Some(_) => Err(not_ours(&tar, "it has no sidecar index")),
        };
    }
    let index = match sidecar::read_sidecar(&idx) {
        Ok(s) => s,
        Err(e) => {
            return Err(not_ours(
                &idx,
                &format!("it is not a shard index of ours ({e})"),
            ))
        }
    };
    if let Some(meta) = &tar_meta {
        if !meta.is_file() {
            return Err(not_ours(&tar, "it is not a regular file"));
        }
    }
    let same = index.tar == shard_name(i)
        && tar_meta.is_some_and(|m| m.len() == index.size)
        && index.members.len() == shard.files.len()
        && index.members.iter().zip(&shard.files).all(|(m, f)| {
            m.path == f.rel && m.size == f.size && m.mtime == f.mtime && m.mtime_ns == f.mtime_ns
        });
    Ok(same)
}

fn not_ours(path: &Path, why: &str) -> CoreError {
    CoreError::Destination {
        path: path.to_path_buf(),
        reason: format!(
            "exists, and {why}: it was not written by `dlas-fast pack`, so it is left as it \
             is; nothing was written: move it, or choose another OUT"
        ),
    }
}

/// Shards of an earlier pack in `out` numbered `n` or more (with their sidecars).
pub(super) fn left_over(out: &Path, n: usize) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(out).map_err(|e| CoreError::io(out, e))? {
        let entry = entry.map_err(|e| CoreError::io(out, e))?;
        let name = entry.file_name();
        let Some(number) = name
            .as_bytes()
            .strip_prefix(b"shard-")
            .and_then(|r| r.strip_suffix(b".tar"))
            .and_then(|d| std::str::from_utf8(d).ok())
            .filter(|d| d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<usize>().ok())
        else {
            continue;
        };
        if number >= n && in_out(out, &sidecar_name(number)).exists() {
            names.push(shard_name(number));
        }
    }
    names.sort();
    Ok(names)
}

/// Holds `out`'s pack lock (`.dlas_fast-pack.lock`) until dropped: one pack at a time
/// writes into a folder.
pub(super) struct Lock(#[allow(dead_code)] File);

pub(super) fn lock(out: &Path) -> Result<Lock> {
    let path = in_out(out, ".dlas_fast-pack.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| CoreError::io(&path, e))?;
    // SAFETY: flock on a descriptor this function owns.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(CoreError::Destination {
            path: out.to_path_buf(),
            reason: "another `dlas-fast pack` is writing into this folder; nothing was \
                     written: wait for it, or choose another OUT"
                .into(),
        });
    }
    Ok(Lock(file))
}
