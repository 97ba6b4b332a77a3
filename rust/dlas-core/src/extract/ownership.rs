//! What proves a folder in DST is a chunk of ours, and the removals that rest on it:
//! nothing a user wrote is ever removed; a run removes only folders holding nothing but
//! a chunk's files that a job recorded in DST wrote (or temporary folders of ours), and
//! every refusal is decided before anything in DST is written or removed.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::dest::{
    job_chunk_names, mode_of, refuse, Dest, Found, Manifest, Mode, Plan, OWN_PREFIX,
};
use super::options::ExtractOptions;
use super::own_files::{open_own, read_sources};
use crate::error::{CoreError, Result};

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
pub(super) fn scan(
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
pub(super) fn orphans(
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

/// Removes the chunks of ours an overwriting run replaces (see
/// [`prepare`](super::dest::prepare)).
pub(super) fn remove_replaced(
    root: &Path,
    names: &[String],
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<()> {
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
pub(super) fn remove_stale_tmp(dest: &Dest) -> Result<()> {
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
pub(super) fn lock_is_free(root: &Path, tag: &str) -> bool {
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
}
