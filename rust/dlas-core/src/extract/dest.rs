//! The destination folder: its lock, the job manifest that guards it, and the rules for
//! when a run may write into it (docs/spec.md §2: our own files start with `.dlas_fast`).
//!
//! Every refusal is decided before anything in DST is written or removed. Our own
//! files are handled in `own_files`, the SRC/DST overlap in `overlap`, and what proves
//! a folder is a chunk of ours (and its removal) in `ownership`.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::options::ExtractOptions;
use super::overlap::check_overlap;
use super::own_files::{
    open_own, read_manifest, read_sources, remove_unused_sources, sources_path, store_sources,
    write_atomic,
};
use super::ownership::{lock_is_free, orphans, remove_replaced, remove_stale_tmp, scan};
use super::record::SourceRecord;
use super::sources::chunk_names;
use crate::error::{CoreError, Result};

/// Prefix of every file the extractor writes at DST's top level besides chunks.
pub const OWN_PREFIX: &str = ".dlas_fast";

/// Format of the manifests this version writes (2: with the source list's digest).
const FORMAT: u32 = 2;

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
    /// Digest of the job's source list, stored as `.dlas_fast-sources-<digest>`
    /// (absent from the manifests of earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<String>,
}

/// A prepared, locked destination. The lock is released when this is dropped.
#[derive(Debug)]
pub struct Dest {
    pub root: PathBuf,
    pub shard: Shard,
    pub mode: Mode,
    /// Digest of the source list this run works from.
    sources: String,
    /// The source list each manifest in DST named when this run started, by file name.
    seen: HashMap<String, Option<String>>,
    _lock: File,
}

impl Dest {
    /// Folder in which part `part` of source number `source` is assembled before being
    /// renamed to its chunk name. Named by number, so that any chunk name fits.
    pub fn tmp_dir(&self, source: usize, part: usize) -> PathBuf {
        self.root.join(format!(
            "{OWN_PREFIX}-tmp-{}-{source}-{part}",
            self.shard.tag()
        ))
    }

    pub fn manifest_path(&self) -> PathBuf {
        manifest_path(&self.root, self.shard)
    }

    pub fn report_path(&self) -> PathBuf {
        self.root
            .join(format!("{OWN_PREFIX}-report-{}.json", self.shard.tag()))
    }

    /// Refuses to finish when a shard of this job that started while this run did made
    /// its chunks from another source list (SRC changed as the shards listed it): the
    /// chunk names of the two do not fit together. Shards that start together each
    /// judge DST before the other's manifest exists, so only the end of a run can tell.
    pub fn confirm_sources(&self, opts: &ExtractOptions) -> Result<()> {
        let key = opts.job_key();
        let own = self.manifest_path();
        let root = &self.root;
        for entry in std::fs::read_dir(root).map_err(|e| CoreError::io(root, e))? {
            let entry = entry.map_err(|e| CoreError::io(root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let manifest =
                name.starts_with(&format!("{OWN_PREFIX}-job-")) && name.ends_with(".json");
            if !manifest || entry.path() == own {
                continue;
            }
            let Ok(m) = read_manifest(&entry.path()) else {
                continue;
            };
            let Some(theirs) = m.sources.as_deref() else {
                continue;
            };
            if m.job_key != key || theirs == self.sources {
                continue;
            }
            // There when this run started (output it replaces) and not running now.
            let known = self
                .seen
                .get(&name)
                .is_some_and(|d| d.as_deref() == Some(theirs));
            if known && lock_is_free(root, &m.shard.tag()) {
                continue;
            }
            return Err(refuse(
                root,
                format!(
                    "holds chunks of shard {}/{} of this job made from another list of \
                     sources ({name}), started while this run was: SRC changed as the \
                     shards listed it, so their chunk names do not fit together; use \
                     --overwrite to redo the whole job into this folder, or extract into a \
                     new folder",
                    m.shard.index, m.shard.count
                ),
            ));
        }
        Ok(())
    }

    /// Records the job's state ("running" / "finished") in its manifest, atomically.
    pub fn write_manifest(&self, opts: &ExtractOptions, state: &str) -> Result<()> {
        let m = Manifest {
            format: FORMAT,
            job_key: opts.job_key(),
            shard: self.shard,
            state: state.into(),
            options: opts.clone(),
            sources: Some(self.sources.clone()),
        };
        let text = serde_json::to_string_pretty(&m).expect("manifest serialises");
        write_atomic(&self.manifest_path(), text.as_bytes())
    }
}

fn manifest_path(root: &Path, shard: Shard) -> PathBuf {
    root.join(format!("{OWN_PREFIX}-job-{}.json", shard.tag()))
}

pub(super) fn refuse(root: &Path, reason: impl Into<String>) -> CoreError {
    CoreError::Destination {
        path: root.to_path_buf(),
        reason: reason.into(),
    }
}

/// What a run is about to write: the job's source list and chunk names, and which
/// sources this run (or, for [`check`], the whole job) processes.
pub struct Plan<'a> {
    pub record: &'a SourceRecord,
    /// The sources, as listed (for messages).
    pub files: &'a [PathBuf],
    /// `per` chunk names per source, in the list's order.
    pub names: &'a [String],
    pub per: usize,
    /// Indices of the sources to check.
    pub mine: &'a [usize],
    /// Polled while DST is looked at and tidied: true stops the run
    /// ([`CoreError::Interrupted`]) before DST is changed.
    pub stop: &'a (dyn Fn() -> bool + Sync),
}

/// What DST already holds for the sources of a plan.
#[derive(Debug, Default)]
pub struct Found {
    /// Sources whose every chunk is already in DST (resume mode).
    pub kept: HashSet<usize>,
    /// Sources with a chunk name that DST's file system refuses, and why.
    pub refused: HashMap<usize, String>,
    /// Chunks of ours that an overwriting run removes before it writes anything.
    pub(super) replaced: Vec<String>,
}

/// Creates/locks DST and decides whether this run may write there.
///
/// Refused, before anything in DST is written or removed (the caller has checked
/// that SRC and DST do not overlap, [`check_overlap`]): DST holds files and no output
/// of ours; another run of the same shard holds the lock; DST holds this job's output
/// (unless `resume` or `overwrite`), output of other options (unless `overwrite`), or
/// output of this job made from another source list (unless `overwrite`); something
/// we did not write is where a chunk of this run goes. Shards of the same job may
/// share DST.
pub fn prepare(
    root: &Path,
    opts: &ExtractOptions,
    shard: Shard,
    plan: &Plan<'_>,
) -> Result<(Dest, Found)> {
    refuse_non_folder(root)?;
    // Checked first without the lock, so that a refused DST is left as it was.
    if root.is_dir() {
        judge(root, opts, Some(shard), plan.record)?;
    }
    std::fs::create_dir_all(root).map_err(|e| CoreError::io(root, e))?;
    let lock_path = root.join(format!("{OWN_PREFIX}-lock-{}", shard.tag()));
    let lock = open_own(
        &lock_path,
        OpenOptions::new().create(true).truncate(false).write(true),
    )?;
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
    let manifests = judge(root, opts, Some(shard), plan.record)?;
    let digest = plan.record.digest();
    let mut found = scan(root, opts, plan, &manifests, &digest)?;
    if mode_of(opts) == Mode::Overwrite {
        if shard.index == 1 {
            found
                .replaced
                .extend(orphans(root, opts, plan, &manifests, &digest)?);
        }
        // Removed before the manifest names the new job: a run stopped part-way then
        // leaves no chunk of the output it replaces for `resume` to keep as its own.
        remove_replaced(root, &std::mem::take(&mut found.replaced), plan.stop)?;
    }
    let dest = Dest {
        root: root.to_path_buf(),
        shard,
        mode: mode_of(opts),
        sources: digest,
        seen: manifests
            .iter()
            .map(|(name, m)| (name.clone(), m.sources.clone()))
            .collect(),
        _lock: lock,
    };
    remove_stale_tmp(&dest)?;
    // The manifest names the list before the list is stored: a run tidying up the
    // stored lists (below) then never removes one that a manifest is about to need.
    dest.write_manifest(opts, "running")?;
    store_sources(root, plan.record, &dest.sources)?;
    remove_unused_sources(root)?;
    Ok((dest, found))
}

pub(super) fn mode_of(opts: &ExtractOptions) -> Mode {
    if opts.overwrite {
        Mode::Overwrite
    } else if opts.resume {
        Mode::Resume
    } else {
        Mode::Fresh
    }
}

/// Checks, without locking or writing anything, that a run of the job `opts` (all its
/// shards) from `src` may write into `root` under the same rules as [`prepare`]: a
/// fresh run is refused when `root` holds output of this job (any shard). A missing
/// `root` is fine. (A driver that runs the shards as separate tasks checks once, then
/// lets every task resume.)
pub fn check(src: &Path, root: &Path, opts: &ExtractOptions) -> Result<()> {
    check_overlap(src, root)?;
    refuse_non_folder(root)?;
    if !root.exists() {
        return Ok(());
    }
    let listed = super::sources::list_sources(src)?;
    let record = SourceRecord::of(src, &listed.files);
    let manifests = judge(root, opts, None, &record)?;
    let (names, per) = job_chunk_names(&listed.files, opts.vertical_split);
    let all: Vec<usize> = (0..listed.files.len()).collect();
    let plan = Plan {
        record: &record,
        files: &listed.files,
        names: &names,
        per,
        mine: &all,
        stop: &|| false,
    };
    scan(root, opts, &plan, &manifests, &record.digest()).map(|_| ())
}

/// Refuses a DST that exists and is not a folder (a file, a link to nothing).
fn refuse_non_folder(root: &Path) -> Result<()> {
    if std::fs::symlink_metadata(root).is_err() || root.is_dir() {
        return Ok(());
    }
    Err(refuse(
        root,
        "is not a folder (a file, or a link to nothing); nothing was changed: choose a new \
         or empty folder for DST",
    ))
}

/// The chunk names of `files` (`per` a source) for a job with or without the split.
pub fn job_chunk_names(files: &[PathBuf], vertical_split: bool) -> (Vec<String>, usize) {
    let suffixes: &[&str] = if vertical_split {
        &["_left", "_right"]
    } else {
        &[]
    };
    (chunk_names(files, suffixes), suffixes.len().max(1))
}

/// The rules of [`prepare`] that the manifests decide, for one `shard` or (None) any
/// shard of the job. Returns the manifests found, by file name.
fn judge(
    root: &Path,
    opts: &ExtractOptions,
    shard: Option<Shard>,
    record: &SourceRecord,
) -> Result<Vec<(String, Manifest)>> {
    let mode = mode_of(opts);
    let key = opts.job_key();
    let mut foreign: Option<String> = None;
    let mut other_job = None;
    let mut this_shard_done = false;
    let mut other_count = None;
    let mut manifests = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| CoreError::io(root, e))? {
        let entry = entry.map_err(|e| CoreError::io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(OWN_PREFIX) {
            if foreign.as_ref().is_none_or(|f| name < *f) {
                foreign = Some(name);
            }
            continue;
        }
        if !(name.starts_with(&format!("{OWN_PREFIX}-job-")) && name.ends_with(".json")) {
            continue;
        }
        let m = read_manifest(&entry.path())?;
        if m.job_key != key {
            other_job.get_or_insert(name.clone());
        } else if shard.is_none_or(|s| m.shard == s) {
            this_shard_done = true;
        } else if shard.is_some_and(|s| m.shard.count != s.count) {
            // Shards of another count overlap this one's sources.
            other_count.get_or_insert((name.clone(), m.shard.count));
        }
        manifests.push((name, m));
    }
    manifests.sort_by(|a, b| a.0.cmp(&b.0));
    if let (Some(name), true) = (&foreign, manifests.is_empty()) {
        let shown = match first_inside(&root.join(name)) {
            Some(inner) => format!("{name}/{inner}"),
            None => name.clone(),
        };
        return Err(refuse(
            root,
            format!(
                "is not empty (it holds `{shown}`) and holds no output of dlas-fast; nothing \
                 was changed: extract into an empty or new folder (or move `{name}` out of \
                 this one)"
            ),
        ));
    }
    if mode == Mode::Overwrite {
        return Ok(manifests);
    }
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
    // Chunk names depend on the whole source list: output of this job made from
    // another list cannot be added to.
    let digest = record.digest();
    for (name, m) in &manifests {
        let Some(theirs) = m.sources.as_deref().filter(|d| *d != digest) else {
            continue;
        };
        let changes = match read_sources(root, theirs) {
            Some(old) => record.changes_since(&old),
            None => format!(
                "the list it was made from, `{}`, is missing or damaged, so what changed \
                 cannot be shown",
                sources_path(root, theirs).display()
            ),
        };
        return Err(refuse(
            root,
            format!(
                "holds this job's output made from another list of sources ({name}): SRC \
                 has changed since: {changes}. Chunk names depend on the whole list, so \
                 adding to that output would write wrong chunks; nothing was changed: use \
                 --overwrite to redo the job into this folder, or extract into a new folder"
            ),
        ));
    }
    Ok(manifests)
}

/// The first name (in byte order) inside `path` if it is a real folder, to show what
/// a refused folder holds.
fn first_inside(path: &Path) -> Option<String> {
    if !std::fs::symlink_metadata(path).ok()?.is_dir() {
        return None;
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .min()
}
