//! The destination folder: its lock, the job manifest that guards it, and the rules for
//! when a run may write into it (SPEC §2: our own files start with `.dlas_fast`).
//!
//! Nothing a user wrote is ever removed or replaced: a run only removes folders it can
//! prove are ours (a chunk of a job that DST's manifests record, holding nothing but a
//! chunk's files; a temporary folder of ours holding the same), and every refusal is
//! decided before anything in DST is written or removed.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::options::ExtractOptions;
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

fn sources_path(root: &Path, digest: &str) -> PathBuf {
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
fn open_own(path: &Path, how: &mut OpenOptions) -> Result<File> {
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

fn refuse(root: &Path, reason: impl Into<String>) -> CoreError {
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
    replaced: Vec<String>,
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

/// Refuses a DST that is SRC, lies inside SRC, or holds SRC, comparing real paths
/// (links resolved; a DST still to be made is resolved through its nearest existing
/// ancestor) and the folders along them (bind mounts).
pub fn check_overlap(src: &Path, dst: &Path) -> Result<()> {
    let s = std::fs::canonicalize(src).map_err(|e| CoreError::io(src, e))?;
    let d = resolve(dst).map_err(|e| CoreError::io(dst, e))?;
    let shown = if s.as_path() == src {
        format!("`{}`", s.display())
    } else {
        format!("`{}` (`{}`)", src.display(), s.display())
    };
    // The same folder can also be reached by paths that no link explains (a bind
    // mount): the folders along each path are compared too.
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let under = |path: &Path, folder: Option<(u64, u64)>| {
        folder.is_some() && path.ancestors().any(|a| id(a) == folder)
    };
    let d_in_s = d.starts_with(&s) || under(&d, id(&s));
    let s_in_d = s.starts_with(&d) || under(&s, id(&d));
    let reason = if d == s || (d_in_s && s_in_d) {
        format!(
            "is the source folder SRC {shown} itself: the chunks would be written among \
             the photos; nothing was changed: choose a DST outside SRC"
        )
    } else if d_in_s {
        format!(
            "is inside the source folder SRC {shown}: the chunks would be written among \
             the photos and taken for sources by later runs; nothing was changed: choose \
             a DST outside SRC"
        )
    } else if s_in_d {
        format!(
            "holds the source folder SRC {shown}: the chunks would be written beside the \
             photos; nothing was changed: choose a DST that neither is nor holds SRC"
        )
    } else {
        return Ok(());
    };
    Err(refuse(dst, reason))
}

/// The real path `path` has or will have once made: its nearest existing ancestor
/// with links resolved, then the rest of it (`..` there undoes the folder before it,
/// as creating the folders would).
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let parts: Vec<Component<'_>> = abs.components().collect();
    for keep in (1..=parts.len()).rev() {
        let head: PathBuf = parts[..keep].iter().collect();
        match std::fs::canonicalize(&head) {
            Ok(mut real) => {
                for part in &parts[keep..] {
                    match part {
                        Component::ParentDir => {
                            real.pop();
                        }
                        Component::Normal(name) => real.push(name),
                        _ => {}
                    }
                }
                return Ok(real);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(abs)
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

fn read_manifest(path: &Path) -> Result<Manifest> {
    let text = read_own(path, MANIFEST_MAX)?;
    serde_json::from_slice(&text).map_err(|e| CoreError::Destination {
        path: path.to_path_buf(),
        reason: format!("unreadable job manifest ({e}); delete it if DST is to be reused"),
    })
}

/// The stored source list of digest `digest`, if present and intact.
fn read_sources(root: &Path, digest: &str) -> Option<SourceRecord> {
    // A digest is 16 hex digits; anything else in a manifest names no list of ours.
    if digest.len() != 16 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = read_own(&sources_path(root, digest), SOURCES_MAX).ok()?;
    SourceRecord::decode(&bytes).filter(|r| r.digest() == digest)
}

/// Stores `record` as `.dlas_fast-sources-<digest>` unless it is there already.
fn store_sources(root: &Path, record: &SourceRecord, digest: &str) -> Result<()> {
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
fn remove_unused_sources(root: &Path) -> Result<()> {
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

/// True for the names of a chunk's files: `00000001.jpg`..., `ref.jpg`, `centers.pt`.
pub fn is_chunk_file_name(name: &[u8]) -> bool {
    if name == b"ref.jpg" || name == b"centers.pt" {
        return true;
    }
    name.strip_suffix(b".jpg")
        .is_some_and(|id| id.len() >= 8 && id.iter().all(u8::is_ascii_digit))
}

/// What `dir` (a real folder) holds that a chunk (or a chunk being assembled) never
/// does, if anything: a subfolder, a link, another file name.
pub fn foreign_content(dir: &Path) -> Result<Option<String>> {
    for entry in std::fs::read_dir(dir).map_err(|e| CoreError::io(dir, e))? {
        let entry = entry.map_err(|e| CoreError::io(dir, e))?;
        let kind = entry
            .file_type()
            .map_err(|e| CoreError::io(entry.path(), e))?;
        let name = entry.file_name();
        let shown = name.to_string_lossy();
        if kind.is_dir() {
            return Ok(Some(format!("it holds the folder `{shown}`")));
        }
        if !kind.is_file() {
            return Ok(Some(format!(
                "it holds `{shown}`, which is not a regular file"
            )));
        }
        if !is_chunk_file_name(name.as_bytes()) {
            return Ok(Some(format!("it holds `{shown}`")));
        }
    }
    Ok(None)
}

/// True for OS errors that say a name cannot exist on this file system (too long,
/// invalid characters or encoding): a problem of that one name, not of DST.
pub fn is_name_error(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENAMETOOLONG | libc::EINVAL | libc::EILSEQ)
    )
}

/// What is at one chunk name in DST.
enum Entry {
    Absent,
    /// A real folder holding only a chunk's files: ours if a manifest names it.
    ChunkLike,
    /// Anything else, and what it is.
    Foreign(String),
    /// The file system refuses the name.
    BadName(String),
}

fn classify(path: &Path) -> Result<Entry> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entry::Absent),
        Err(e) if is_name_error(&e) => return Ok(Entry::BadName(e.to_string())),
        Err(e) => return Err(CoreError::io(path, e)),
    };
    let kind = meta.file_type();
    Ok(if kind.is_symlink() {
        Entry::Foreign("a symbolic link".into())
    } else if !kind.is_dir() {
        Entry::Foreign("a file, not a folder".into())
    } else {
        match foreign_content(path)? {
            Some(what) => Entry::Foreign(what),
            None => Entry::ChunkLike,
        }
    })
}

/// The chunk names the manifests in DST prove ours. None: every chunk-like folder
/// counts (the manifests were written by a version that did not record its sources).
fn proven_names(
    root: &Path,
    manifests: &[(String, Manifest)],
    digest: &str,
    vertical_split: bool,
    plan: &Plan<'_>,
) -> Option<HashSet<String>> {
    let recorded: HashSet<(&str, bool)> = manifests
        .iter()
        .filter_map(|(_, m)| Some((m.sources.as_deref()?, m.options.vertical_split)))
        .collect();
    if recorded.is_empty() {
        return None;
    }
    let mut names = HashSet::new();
    for (theirs, split) in recorded {
        if (theirs, split) == (digest, vertical_split) {
            names.extend(plan.names.iter().cloned());
        } else if let Some(old) = read_sources(root, theirs) {
            let files: Vec<PathBuf> = old
                .entries
                .iter()
                .map(|e| PathBuf::from(std::ffi::OsStr::from_bytes(&e.rel)))
                .collect();
            names.extend(job_chunk_names(&files, split).0);
        }
    }
    Some(names)
}

/// Looks at every chunk name of the plan's sources in DST, before anything is written:
/// something we did not write in the way is a refusal naming it (in every mode); a
/// chunk of ours is a refusal in a fresh run, kept by a resumed one, removed by an
/// overwriting one ([`Found::replaced`]); a name the file system refuses is that
/// source's failure.
fn scan(
    root: &Path,
    opts: &ExtractOptions,
    plan: &Plan<'_>,
    manifests: &[(String, Manifest)],
    digest: &str,
) -> Result<Found> {
    let per = plan.per;
    let seen: Vec<(usize, usize, Entry)> = plan
        .mine
        .par_iter()
        .flat_map_iter(|&i| (0..per).map(move |p| (i, p)))
        .map(|(i, p)| {
            if (plan.stop)() {
                return Err(CoreError::Interrupted);
            }
            Ok((i, p, classify(&root.join(&plan.names[i * per + p]))?))
        })
        .collect::<Result<_>>()?;
    let mut proven: Option<Option<HashSet<String>>> = None;
    let mut in_the_way = Vec::new();
    let mut ours = Vec::new();
    let mut found = Found::default();
    let mut complete: HashMap<usize, usize> = HashMap::new();
    for (i, p, entry) in seen {
        let name = &plan.names[i * per + p];
        match entry {
            Entry::Absent => {}
            Entry::BadName(reason) => {
                found.refused.entry(i).or_insert_with(|| {
                    format!(
                        "its chunk name `{name}` ({} bytes) is refused by DST's file system \
                         ({reason}); rename the source",
                        name.len()
                    )
                });
            }
            Entry::Foreign(what) => in_the_way.push((i, name, what)),
            Entry::ChunkLike => {
                let proof = proven.get_or_insert_with(|| {
                    proven_names(root, manifests, digest, opts.vertical_split, plan)
                });
                if proof.as_ref().is_none_or(|set| set.contains(name)) {
                    ours.push((i, name));
                    *complete.entry(i).or_default() += 1;
                } else {
                    let what = "no job recorded in this folder wrote a chunk of that name";
                    in_the_way.push((i, name, what.into()));
                }
            }
        }
    }
    if !in_the_way.is_empty() {
        in_the_way.sort_by_key(|x| x.0);
        let shown: Vec<String> = in_the_way
            .iter()
            .take(3)
            .map(|(i, name, what)| {
                format!(
                    "`{}` ({what}) is where the chunk of `{}` goes",
                    root.join(name).display(),
                    plan.files[*i].display()
                )
            })
            .collect();
        let more = match in_the_way.len() {
            n if n > 3 => format!(" and {} more like it", n - 3),
            _ => String::new(),
        };
        return Err(refuse(
            root,
            format!(
                "holds files that dlas-fast did not write where this run writes chunks: \
                 {}{more}; nothing was changed: move them out of this folder, or extract \
                 into an empty or new folder",
                shown.join("; ")
            ),
        ));
    }
    match mode_of(opts) {
        Mode::Fresh => {
            if let Some((i, name)) = ours.iter().min() {
                return Err(refuse(
                    root,
                    format!(
                        "already holds the chunk `{name}` (of `{}`) from an earlier run; use \
                         --resume to finish that run or --overwrite to redo it",
                        plan.files[*i].display()
                    ),
                ));
            }
        }
        Mode::Resume => {
            found.kept = complete
                .into_iter()
                .filter(|&(_, n)| n == per)
                .map(|(i, _)| i)
                .collect();
        }
        Mode::Overwrite => found.replaced = ours.iter().map(|(_, n)| n.to_string()).collect(),
    }
    Ok(found)
}

/// Chunks of ours that no source of the plan's job names any more (their sources left
/// SRC or were renamed): an overwriting run removes them too, so that DST then holds
/// what a run into a new folder would write. Only names a job recorded in DST wrote,
/// holding only a chunk's files, are chunks of ours.
fn orphans(
    root: &Path,
    opts: &ExtractOptions,
    plan: &Plan<'_>,
    manifests: &[(String, Manifest)],
    digest: &str,
) -> Result<Vec<String>> {
    let Some(proven) = proven_names(root, manifests, digest, opts.vertical_split, plan) else {
        return Ok(Vec::new());
    };
    let current: HashSet<&str> = plan.names.iter().map(String::as_str).collect();
    let candidates: Vec<String> = proven
        .into_iter()
        .filter(|n| !current.contains(n.as_str()))
        .collect();
    let mut out = Vec::new();
    for (name, entry) in candidates
        .into_par_iter()
        .map(|n| {
            if (plan.stop)() {
                return Err(CoreError::Interrupted);
            }
            let entry = classify(&root.join(&n))?;
            Ok((n, entry))
        })
        .collect::<Result<Vec<_>>>()?
    {
        if matches!(entry, Entry::ChunkLike) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Removes the chunks of ours an overwriting run replaces (see [`prepare`]).
fn remove_replaced(root: &Path, names: &[String], stop: &(dyn Fn() -> bool + Sync)) -> Result<()> {
    names.par_iter().try_for_each(|name| {
        if stop() {
            return Err(CoreError::Interrupted);
        }
        let path = root.join(name);
        if remove_own_folder(&path)? {
            return Ok(());
        }
        Err(refuse(
            root,
            format!(
                "`{}` changed as this run started (it no longer holds only a chunk's \
                 files) and was left as it is: move it out of this folder, or extract into \
                 an empty or new folder",
                path.display()
            ),
        ))
    })
}

/// Removes half-built chunks left by killed runs: this shard's, and those of any other
/// shard (of any count) whose lock nobody holds, so that none survives a finished run.
/// Only real folders holding nothing but a chunk's files are removed; anything else
/// that merely has such a name (a link, a user's folder) is left alone.
fn remove_stale_tmp(dest: &Dest) -> Result<()> {
    let own = format!("{OWN_PREFIX}-tmp-{}-", dest.shard.tag());
    let any = format!("{OWN_PREFIX}-tmp-");
    let mut idle: HashMap<String, bool> = Default::default();
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
            remove_own_folder(&entry.path())?;
        }
    }
    Ok(())
}

/// Removes `path` if it is a real folder holding only a chunk's files (never
/// following a link); returns whether it did (or it was gone already).
pub fn remove_own_folder(path: &Path) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(CoreError::io(path, e)),
    }
    if foreign_content(path)?.is_some() {
        return Ok(false);
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(CoreError::io(path, e)),
    }
}

/// True when no run holds the lock of the shard tagged `tag` (e.g. `3of16`).
fn lock_is_free(root: &Path, tag: &str) -> bool {
    let path = root.join(format!("{OWN_PREFIX}-lock-{tag}"));
    match open_own(&path, OpenOptions::new().read(true)) {
        // Taken and released at once (dropping the file unlocks it).
        Ok(f) => f.try_lock().is_ok(),
        // Gone (free), or something that is not our lock file (its folders are not
        // ours to judge).
        Err(_) => std::fs::symlink_metadata(&path)
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_file_names() {
        for ok in ["00000001.jpg", "123456789.jpg", "ref.jpg", "centers.pt"] {
            assert!(is_chunk_file_name(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "0001.jpg",
            "0000000a.jpg",
            "thesis.tex",
            "ref.png",
            "00000001.jpeg",
        ] {
            assert!(!is_chunk_file_name(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn removes_only_its_own_folders_and_never_follows_a_link() {
        let dir = std::env::temp_dir().join(format!("dlas-own-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (ours, users, outside) = (dir.join("ours"), dir.join("users"), dir.join("outside"));
        for d in [&ours, &users, &outside] {
            std::fs::create_dir_all(d).unwrap();
        }
        for f in ["00000001.jpg", "ref.jpg", "centers.pt"] {
            std::fs::write(ours.join(f), b"x").unwrap();
            std::fs::write(outside.join(f), b"x").unwrap();
        }
        std::fs::write(users.join("00000001.jpg"), b"x").unwrap();
        std::fs::write(users.join("thesis.tex"), b"mine").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let file = dir.join("file");
        std::fs::write(&file, b"mine").unwrap();

        assert!(remove_own_folder(&ours).unwrap());
        assert!(!ours.exists());
        assert!(!remove_own_folder(&users).unwrap());
        assert!(users.join("thesis.tex").exists() && users.join("00000001.jpg").exists());
        assert!(!remove_own_folder(&link).unwrap());
        assert!(link.is_symlink() && outside.join("ref.jpg").exists());
        assert!(!remove_own_folder(&file).unwrap());
        assert!(file.exists());
        assert!(remove_own_folder(&dir.join("gone")).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn overlap_is_judged_on_real_paths() {
        let dir = std::env::temp_dir().join(format!("dlas-overlap-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join("other")).unwrap();
        let link = dir.join("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&src, &link).unwrap();
        let refused = |s: &Path, d: &Path| check_overlap(s, d).is_err();
        assert!(refused(&src, &src));
        assert!(refused(&src, &link));
        assert!(refused(&link, &src.join("out")));
        assert!(refused(&src, &link.join("new/deeper")));
        assert!(refused(&src, &dir.join("other/../src/x")));
        assert!(refused(&src.join("sub"), &link));
        assert!(refused(&src, &dir.join("nope/../src")));
        assert!(!refused(&src, &dir.join("other")));
        assert!(!refused(&src, &dir.join("src-out")));
        assert!(!refused(&src, &dir.join("nope/../out")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
