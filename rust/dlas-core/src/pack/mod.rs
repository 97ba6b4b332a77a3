//! Packing a chunked dataset into a few large tar files (docs/shards.md).
//!
//! The chunk folders of a dataset root (as the index sees them: its sub-folders,
//! sorted, names starting with `.` skipped) are laid out one after another in
//! uncompressed POSIX tar shards of about `shard_size` bytes, whole chunks per shard.
//! Each member is a file of a chunk folder under its path relative to the root, so
//! `tar -x` of every shard gives the chunk folders back byte for byte, and any tar
//! reader (Python's `tarfile`, `webdataset`) reads the shards as they are. Beside each
//! shard a sidecar index (`shard-NNNNNN.idx.json`) lists every member's path, data
//! offset, size and mtime, so a reader finds a file without scanning the tar; the
//! manifest (`dlas_fast-pack.json`), written last, lists the shards of the pack.
//!
//! The plan (which chunk goes to which shard) depends on the dataset and the shard size
//! only, and every shard's bytes on its files only: the output is the same whatever the
//! number of threads. A run that stops part-way leaves finished shards (each written
//! under a temporary name and renamed) that the next run keeps when its sidecar still
//! describes the plan's files; nothing in OUT that the pack did not write is ever
//! overwritten or removed.

pub mod reader;
mod sidecar;
mod walk;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;

pub use sidecar::{read_manifest, read_sidecar, Manifest, ShardEntry, Sidecar, SidecarMember};
pub use walk::{FileEntry, Skipped};

use crate::error::{CoreError, Result};
use crate::extract::overlap::{overlap, Overlap};
use crate::index::chunk_dirs;

/// The default shard size: 1 GiB.
pub const DEFAULT_SHARD_SIZE: u64 = 1 << 30;
/// The smallest shard size accepted (one member's header and a few blocks).
pub const MIN_SHARD_SIZE: u64 = 4096;
/// The manifest's file name in OUT.
pub const MANIFEST_NAME: &str = "dlas_fast-pack.json";
/// The most threads a pack runs on.
pub const MAX_THREADS: usize = 1024;

/// The file name of shard `i`.
pub fn shard_name(i: usize) -> String {
    format!("shard-{i:06}.tar")
}

/// The file name of shard `i`'s sidecar index.
pub fn sidecar_name(i: usize) -> String {
    format!("shard-{i:06}.idx.json")
}

/// A shard size: digits, optionally with a unit (B, KB, MB, GB, TB in powers of 1000;
/// KiB, MiB, GiB, TiB, and K, M, G, T, in powers of 1024), of at least
/// [`MIN_SHARD_SIZE`] bytes. The error says what was wrong.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown unit {other:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 1GiB or 536870912"))?;
    n.checked_mul(scale)
        .filter(|&v| v >= MIN_SHARD_SIZE)
        .ok_or_else(|| {
            format!(
                "{s:?}: a shard size is at least {MIN_SHARD_SIZE} bytes and at most {}",
                u64::MAX
            )
        })
}

/// How to pack.
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// About how many bytes a shard holds (a chunk larger than this has a shard of its
    /// own).
    pub shard_size: u64,
    /// Threads (0: one per core).
    pub threads: usize,
}

impl Default for PackOptions {
    fn default() -> Self {
        PackOptions {
            shard_size: DEFAULT_SHARD_SIZE,
            threads: 0,
        }
    }
}

/// What a pack reports as it goes.
pub trait PackProgress: Sync {
    /// The pack is about to write `shards` shards of `bytes` bytes together, of which
    /// `kept` (`kept_bytes`) are already there from an earlier run.
    fn start(&self, _shards: usize, _bytes: u64, _kept: usize, _kept_bytes: u64) {}
    /// A shard of `bytes` bytes is written.
    fn shard_done(&self, _name: &str, _bytes: u64) {}
    /// Polled between members: true asks the pack to stop ([`CoreError::Interrupted`]).
    fn cancelled(&self) -> bool {
        false
    }
}

/// A progress sink that ignores everything.
pub struct Quiet;
impl PackProgress for Quiet {}

/// One shard of the plan: whole chunks, in order.
#[derive(Clone, Debug)]
pub struct PlannedShard {
    /// The chunk folder names it holds, in order.
    pub chunks: Vec<Vec<u8>>,
    /// Its members, in order.
    pub files: Vec<FileEntry>,
    /// The shard's size in bytes once written (headers, data, padding, end blocks).
    pub bytes: u64,
}

/// The shards a dataset packs into, and the files left out (named, with why).
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub shards: Vec<PlannedShard>,
    pub skipped: Vec<Skipped>,
    pub chunks: usize,
}

/// What a pack did.
#[derive(Clone, Debug, Default)]
pub struct PackSummary {
    /// Chunk folders packed.
    pub chunks: usize,
    /// Files packed.
    pub files: usize,
    /// Bytes of the shards.
    pub bytes: u64,
    /// Shard file names, in order.
    pub shards: Vec<String>,
    /// Shards written by this run.
    pub written: usize,
    /// Shards kept from an earlier run (their sidecars describe the plan's files).
    pub kept: usize,
    /// Files of chunk folders that are not packed, with why.
    pub skipped: Vec<Skipped>,
    /// Shards in OUT from an earlier pack that are not part of this one (left as
    /// they are; the manifest does not list them).
    pub left_over: Vec<String>,
    pub elapsed_secs: f64,
}

/// Plans the pack of the dataset at `root` into shards of about `shard_size` bytes.
pub fn plan(root: &Path, shard_size: u64, threads: usize, out: Option<&Path>) -> Result<Plan> {
    check_shard_size(shard_size)?;
    let names = chunk_dirs(root)?;
    let canonical_root = std::fs::canonicalize(root).map_err(|e| CoreError::io(root, e))?;
    let canonical_out = out.and_then(|o| std::fs::canonicalize(o).ok());
    let listed: Vec<Result<walk::ChunkFiles>> = with_threads(threads, || {
        names
            .par_iter()
            .map(|name| walk::list_chunk(root, &canonical_root, canonical_out.as_deref(), name))
            .collect()
    });
    let mut plan = Plan {
        chunks: names.len(),
        ..Default::default()
    };
    let mut current = PlannedShard {
        chunks: Vec::new(),
        files: Vec::new(),
        bytes: 0,
    };
    for (name, chunk) in names.into_iter().zip(listed) {
        let chunk = chunk?;
        plan.skipped.extend(chunk.skipped);
        if chunk.files.is_empty() {
            continue; // nothing to pack (`tar -x` makes no empty folders)
        }
        let bytes: u64 = chunk.files.iter().map(write::member_bytes).sum();
        if !current.chunks.is_empty() && current.bytes + bytes + write::END_BYTES > shard_size {
            current.bytes += write::END_BYTES;
            plan.shards.push(std::mem::replace(
                &mut current,
                PlannedShard {
                    chunks: Vec::new(),
                    files: Vec::new(),
                    bytes: 0,
                },
            ));
        }
        current.chunks.push(name);
        current.files.extend(chunk.files);
        current.bytes += bytes;
    }
    if !current.chunks.is_empty() {
        current.bytes += write::END_BYTES;
        plan.shards.push(current);
    }
    Ok(plan)
}

fn check_shard_size(shard_size: u64) -> Result<()> {
    if shard_size < MIN_SHARD_SIZE {
        return Err(CoreError::option(
            "shard_size",
            format!("must be at least {MIN_SHARD_SIZE} bytes, got {shard_size}"),
        ));
    }
    Ok(())
}

fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    crate::index::with_pool((threads > 0).then_some(threads), "dlas-pack", f)
}

/// Refuses an OUT that is, holds or lies inside the dataset root.
fn check_out(root: &Path, out: &Path) -> Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(out) {
        let why = match std::fs::metadata(out) {
            Ok(m) if m.is_dir() => None,
            Ok(_) => Some("is not a folder"),
            Err(_) if meta.file_type().is_symlink() => Some("is a link to nothing"),
            Err(_) => Some("cannot be read"),
        };
        if let Some(why) = why {
            return Err(CoreError::Destination {
                path: out.to_path_buf(),
                reason: format!("{why}; nothing was written: OUT must be a folder, or new"),
            });
        }
    }
    let (relation, shown) = overlap(root, out)?;
    let reason = match relation {
        None => return Ok(()),
        Some(Overlap::Same) => format!("is the dataset {shown} itself"),
        Some(Overlap::Inside) => {
            format!("is inside the dataset {shown}: its folder would be taken for a chunk folder")
        }
        Some(Overlap::Holds) => format!("holds the dataset {shown}"),
    };
    Err(CoreError::Destination {
        path: out.to_path_buf(),
        reason: format!("{reason}; nothing was written: choose an OUT apart from the dataset"),
    })
}

/// Packs the dataset at `root` into shards in `out` (made if missing).
pub fn pack(
    root: &Path,
    out: &Path,
    opts: &PackOptions,
    progress: &dyn PackProgress,
) -> Result<PackSummary> {
    let started = Instant::now();
    if opts.threads > MAX_THREADS {
        return Err(CoreError::option(
            "threads",
            format!("at most {MAX_THREADS}, got {}", opts.threads),
        ));
    }
    check_shard_size(opts.shard_size)?;
    if !std::fs::metadata(root)
        .map_err(|e| CoreError::io(root, e))?
        .is_dir()
    {
        return Err(CoreError::option(
            "dataset",
            format!("{} is not a folder", root.display()),
        ));
    }
    check_out(root, out)?;
    std::fs::create_dir_all(out).map_err(|e| CoreError::io(out, e))?;
    let _lock = write::lock(out)?;
    let manifest = in_out(out, MANIFEST_NAME);
    if std::fs::symlink_metadata(&manifest).is_ok() {
        if let Err(e) = read_manifest(&manifest) {
            return Err(CoreError::Destination {
                path: manifest,
                reason: format!(
                    "exists and is not a pack manifest of ours ({e}): it is left as it is; \
                     nothing was written: move it, or choose another OUT"
                ),
            });
        }
    }
    let plan = plan(root, opts.shard_size, opts.threads, Some(out))?;
    let n = plan.shards.len();
    // What is there already: shards whose sidecar describes the plan's files are kept;
    // a file under a shard's name that the pack did not write stops the run.
    let mut keep = vec![false; n];
    for (i, shard) in plan.shards.iter().enumerate() {
        keep[i] = write::already_written(out, i, shard)?;
    }
    let kept_bytes: u64 = plan
        .shards
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(s, _)| s.bytes)
        .sum();
    let total: u64 = plan.shards.iter().map(|s| s.bytes).sum();
    let kept = keep.iter().filter(|k| **k).count();
    progress.start(n, total, kept, kept_bytes);
    let written = AtomicUsize::new(0);
    let results: Vec<Result<()>> = with_threads(opts.threads, || {
        plan.shards
            .par_iter()
            .enumerate()
            .filter(|(i, _)| !keep[*i])
            .map(|(i, shard)| {
                write::write_shard(out, i, shard, progress)?;
                written.fetch_add(1, Ordering::Relaxed);
                progress.shard_done(&shard_name(i), shard.bytes);
                Ok(())
            })
            .collect()
    });
    // Interrupted wins over the other errors it may have caused.
    if results
        .iter()
        .any(|r| matches!(r, Err(CoreError::Interrupted)))
    {
        return Err(CoreError::Interrupted);
    }
    for r in results {
        r?;
    }
    let files = plan.shards.iter().map(|s| s.files.len()).sum();
    sidecar::write_manifest(out, &plan, opts.shard_size)?;
    let left_over = write::left_over(out, n)?;
    Ok(PackSummary {
        chunks: plan.chunks,
        files,
        bytes: total,
        shards: (0..n).map(shard_name).collect(),
        written: written.into_inner(),
        kept,
        skipped: plan.skipped,
        left_over,
        elapsed_secs: started.elapsed().as_secs_f64(),
    })
}

/// The path of `name` in `out`.
fn in_out(out: &Path, name: &str) -> PathBuf {
    out.join(name)
}

#[cfg(test)]
mod tests;
