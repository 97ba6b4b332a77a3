//! The destination folder: its lock, the job manifest that guards it, and the rules for
//! when a run may write into it (SPEC §2: our own files start with `.dlas_fast`).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::options::ExtractOptions;
use crate::error::{CoreError, Result};

/// Prefix of every file the extractor writes at DST's top level besides chunks.
pub const OWN_PREFIX: &str = ".dlas_fast";

/// What a run does with chunks that already exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Fresh,
    Resume,
    Overwrite,
}

/// Which part of the sorted source list a run processes: `index` of `count` (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole job.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// `1of1`, used in our file names.
    pub fn tag(&self) -> String {
        format!("{}of{}", self.index, self.count)
    }
}

/// The manifest of one shard of one job, `.dlas_fast-job-<shard>.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub job_key: String,
    pub shard: Shard,
    pub state: String,
    pub options: ExtractOptions,
}

/// A prepared, locked destination. The lock is released when this is dropped.
#[derive(Debug)]
pub struct Dest {
    pub root: PathBuf,
    pub shard: Shard,
    pub mode: Mode,
    _lock: File,
}

impl Dest {
    /// Folder in which a chunk is assembled before being renamed to its name.
    pub fn tmp_dir(&self, chunk: &str) -> PathBuf {
        self.root
            .join(format!("{OWN_PREFIX}-tmp-{}-{chunk}", self.shard.tag()))
    }

    pub fn manifest_path(&self) -> PathBuf {
        manifest_path(&self.root, self.shard)
    }

    pub fn report_path(&self) -> PathBuf {
        self.root
            .join(format!("{OWN_PREFIX}-report-{}.json", self.shard.tag()))
    }

    /// Records the job's state ("running" / "finished") in its manifest, atomically.
    pub fn write_manifest(&self, opts: &ExtractOptions, state: &str) -> Result<()> {
        let m = Manifest {
            format: 1,
            job_key: opts.job_key(),
            shard: self.shard,
            state: state.into(),
            options: opts.clone(),
        };
        let text = serde_json::to_string_pretty(&m).expect("manifest serialises");
        write_atomic(&self.manifest_path(), text.as_bytes())
    }
}

fn manifest_path(root: &Path, shard: Shard) -> PathBuf {
    root.join(format!("{OWN_PREFIX}-job-{}.json", shard.tag()))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(|e| CoreError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| CoreError::io(path, e))
}

fn refuse(root: &Path, reason: impl Into<String>) -> CoreError {
    CoreError::Destination {
        path: root.to_path_buf(),
        reason: reason.into(),
    }
}

/// Creates/locks DST and decides whether this run may write there.
///
/// Refused: another run of the same shard holds the lock; DST holds this job's
/// output (unless `resume` or `overwrite`); DST holds another job's output or files
/// that are not ours (unless `overwrite`). Shards of the same job may share DST.
pub fn prepare(root: &Path, opts: &ExtractOptions, shard: Shard) -> Result<Dest> {
    std::fs::create_dir_all(root).map_err(|e| CoreError::io(root, e))?;
    let lock_path = root.join(format!("{OWN_PREFIX}-lock-{}", shard.tag()));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| CoreError::io(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(refuse(
                root,
                format!(
                "another extraction of this job (shard {}/{}) is writing here (lock {} is held)",
                shard.index,
                shard.count,
                lock_path.display()
            ),
            ))
        }
        Err(TryLockError::Error(e)) => return Err(CoreError::io(&lock_path, e)),
    }
    judge(root, opts, Some(shard))?;
    let mode = mode_of(opts);
    let dest = Dest {
        root: root.to_path_buf(),
        shard,
        mode,
        _lock: lock,
    };
    remove_stale_tmp(&dest)?;
    dest.write_manifest(opts, "running")?;
    Ok(dest)
}

fn mode_of(opts: &ExtractOptions) -> Mode {
    if opts.overwrite {
        Mode::Overwrite
    } else if opts.resume {
        Mode::Resume
    } else {
        Mode::Fresh
    }
}

/// Checks, without locking or writing anything, that a run of the job `opts` (all its
/// shards) may write into `root` under the same rules as [`prepare`]: a fresh run is
/// refused when `root` holds output of this job (any shard). A missing `root` is fine.
/// (A driver that runs the shards as separate tasks checks once, then lets every task
/// resume.)
pub fn check(root: &Path, opts: &ExtractOptions) -> Result<()> {
    if !root.exists() {
        return Ok(());
    }
    judge(root, opts, None)
}

/// The rules of [`prepare`], for one `shard` or (None) any shard of the job.
fn judge(root: &Path, opts: &ExtractOptions, shard: Option<Shard>) -> Result<()> {
    let mode = mode_of(opts);
    let key = opts.job_key();
    let mut foreign = None;
    let mut other_job = None;
    let mut this_shard_done = false;
    let mut other_count = None;
    let mut any_manifest = false;
    for entry in std::fs::read_dir(root).map_err(|e| CoreError::io(root, e))? {
        let entry = entry.map_err(|e| CoreError::io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(OWN_PREFIX) {
            foreign.get_or_insert(name);
            continue;
        }
        if !(name.starts_with(&format!("{OWN_PREFIX}-job-")) && name.ends_with(".json")) {
            continue;
        }
        let m = read_manifest(&entry.path())?;
        any_manifest = true;
        if m.job_key != key {
            other_job.get_or_insert(name);
        } else if shard.is_none_or(|s| m.shard == s) {
            this_shard_done = true;
        } else if shard.is_some_and(|s| m.shard.count != s.count) {
            // Shards of another count overlap this one's sources.
            other_count.get_or_insert((name, m.shard.count));
        }
    }
    if mode != Mode::Overwrite {
        if let Some(name) = other_job {
            return Err(refuse(
                root,
                format!("holds the output of an extraction with other options ({name}); use --overwrite to write here anyway"),
            ));
        }
        if let (Some((name, count)), Mode::Fresh) = (&other_count, mode) {
            return Err(refuse(
                root,
                format!("holds this job's output cut into {count} shards ({name}); run the other shards with --shard K/{count}, or use --resume or --overwrite"),
            ));
        }
        if this_shard_done && mode == Mode::Fresh {
            return Err(refuse(
                root,
                "already holds this job's output; use --resume to finish an interrupted run or --overwrite to redo it",
            ));
        }
        if mode == Mode::Fresh && !any_manifest {
            if let Some(name) = foreign {
                return Err(refuse(
                    root,
                    format!("is not empty (it holds `{name}`) and was not written by dlas-fast; use --overwrite to write here anyway"),
                ));
            }
        }
    }
    Ok(())
}

fn read_manifest(path: &Path) -> Result<Manifest> {
    let text = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
    serde_json::from_slice(&text).map_err(|e| CoreError::Destination {
        path: path.to_path_buf(),
        reason: format!("unreadable job manifest ({e}); delete it if DST is to be reused"),
    })
}

/// Removes half-built chunks left by killed runs: this shard's, and those of any other
/// shard (of any count) whose lock nobody holds, so that none survives a finished run.
fn remove_stale_tmp(dest: &Dest) -> Result<()> {
    let own = format!("{OWN_PREFIX}-tmp-{}-", dest.shard.tag());
    let any = format!("{OWN_PREFIX}-tmp-");
    let mut idle: std::collections::HashMap<String, bool> = Default::default();
    for entry in std::fs::read_dir(&dest.root).map_err(|e| CoreError::io(&dest.root, e))? {
        let entry = entry.map_err(|e| CoreError::io(&dest.root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&any) else {
            continue;
        };
        let tag = rest.split('-').next().unwrap_or_default().to_string();
        let stale = name.starts_with(&own)
            || *idle
                .entry(tag.clone())
                .or_insert_with(|| lock_is_free(&dest.root, &tag));
        if stale {
            std::fs::remove_dir_all(entry.path()).map_err(|e| CoreError::io(entry.path(), e))?;
        }
    }
    Ok(())
}

/// True when no run holds the lock of the shard tagged `tag` (e.g. `3of16`).
fn lock_is_free(root: &Path, tag: &str) -> bool {
    let path = root.join(format!("{OWN_PREFIX}-lock-{tag}"));
    match OpenOptions::new().write(true).open(&path) {
        // Taken and released at once (dropping the file unlocks it).
        Ok(f) => f.try_lock().is_ok(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}
