//! Writing one chunk folder: assembled under a temporary name, renamed when complete,
//! so a killed run never leaves a partial chunk that looks finished.

use std::path::Path;

use super::dest::{Dest, Mode};
use super::ownership::{foreign_content, is_name_error, remove_own_folder};
use super::source::Chunk;
use crate::error::{CoreError, Result};
use crate::torchfile::write_centers;

/// What happened to a chunk on disk.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// The chunk folder was created (or replaced, in overwrite mode).
    New,
    /// An identical job's chunk was already there (resume mode); ours was discarded.
    Kept,
}

/// Why a chunk was not written.
#[derive(Debug)]
pub enum WriteError {
    /// A problem of this source alone (DST's file system refuses its chunk name).
    Source(String),
    /// A problem of DST (full, gone, not writable...): the run cannot go on.
    Fatal(CoreError),
}

impl From<CoreError> for WriteError {
    fn from(e: CoreError) -> Self {
        WriteError::Fatal(e)
    }
}

/// Writes `chunk`, part `chunk.part` of source number `source`, as `<dst>/<name>/`
/// with tiles `00000001.jpg`..., `ref.jpg` and `centers.pt`.
///
/// An existing `<dst>/<name>` is kept (resume) or replaced (overwrite) only if it is a
/// folder holding nothing but a chunk's files; anything else there is an error and
/// stays as it is.
pub fn write_chunk(
    dest: &Dest,
    source: usize,
    name: &str,
    chunk: &Chunk,
) -> Result<Written, WriteError> {
    let tmp = dest.tmp_dir(source, chunk.part);
    let io = |p: &Path, e| CoreError::io(p, e);
    if !remove_own_folder(&tmp)? {
        return Err(in_the_way(&tmp, "a temporary folder of dlas-fast").into());
    }
    std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
    let result = fill_and_place(dest, &tmp, name, chunk);
    if result.is_err() || result.as_ref().is_ok_and(|w| *w == Written::Kept) {
        // Ours, just made: nothing else can be in it.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn fill_and_place(
    dest: &Dest,
    tmp: &Path,
    name: &str,
    chunk: &Chunk,
) -> Result<Written, WriteError> {
    let io = |p: &Path, e| CoreError::io(p, e);
    let mut centers = Vec::with_capacity(chunk.tiles.len());
    for (i, tile) in chunk.tiles.iter().enumerate() {
        let id = i as i64 + 1;
        let p = tmp.join(format!("{id:08}.jpg"));
        std::fs::write(&p, &tile.jpeg).map_err(|e| io(&p, e))?;
        centers.push((id, tile.centre, tile.width));
    }
    let p = tmp.join("ref.jpg");
    std::fs::write(&p, &chunk.ref_jpeg).map_err(|e| io(&p, e))?;
    write_centers(&tmp.join("centers.pt"), &centers).map_err(CoreError::from)?;
    let target = dest.root.join(name);
    let name_refused = |e: std::io::Error| {
        WriteError::Source(format!(
            "its chunk name `{name}` ({} bytes) is refused by DST's file system ({e}); \
             rename the source",
            name.len()
        ))
    };
    match std::fs::symlink_metadata(&target) {
        Ok(meta) => {
            let ours = meta.file_type().is_dir() && foreign_content(&target)?.is_none();
            if !ours {
                return Err(in_the_way(&target, "a chunk").into());
            }
            match dest.mode {
                Mode::Resume => return Ok(Written::Kept),
                Mode::Overwrite => {
                    if !remove_own_folder(&target)? {
                        return Err(in_the_way(&target, "a chunk").into());
                    }
                }
                Mode::Fresh => {
                    return Err(CoreError::Destination {
                        path: target,
                        reason: "chunk folder already exists (written by someone else during \
                                 this run?)"
                            .into(),
                    }
                    .into());
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if is_name_error(&e) => return Err(name_refused(e)),
        Err(e) => return Err(io(&target, e).into()),
    }
    match std::fs::rename(tmp, &target) {
        Ok(()) => Ok(Written::New),
        Err(e) if is_name_error(&e) => Err(name_refused(e)),
        Err(e) => Err(io(&target, e).into()),
    }
}

fn in_the_way(path: &Path, what: &str) -> CoreError {
    CoreError::Destination {
        path: path.to_path_buf(),
        reason: format!(
            "is where {what} of this run goes and was not written by dlas-fast; it was \
             left as it is: move it out of DST, then rerun with --resume"
        ),
    }
}
