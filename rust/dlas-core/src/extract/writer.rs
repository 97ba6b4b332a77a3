//! Writing one chunk folder: assembled under a temporary name, renamed when complete,
//! so a killed run never leaves a partial chunk that looks finished.

use std::path::Path;

use super::dest::{Dest, Mode};
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

/// Writes `chunk` as `<dst>/<name>/` with tiles `00000001.jpg`..., `ref.jpg` and
/// `centers.pt`.
pub fn write_chunk(dest: &Dest, name: &str, chunk: &Chunk) -> Result<Written> {
    let tmp = dest.tmp_dir(name);
    let io = |p: &Path, e| CoreError::io(p, e);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
    let mut centers = Vec::with_capacity(chunk.tiles.len());
    for (i, tile) in chunk.tiles.iter().enumerate() {
        let id = i as i64 + 1;
        let p = tmp.join(format!("{id:08}.jpg"));
        std::fs::write(&p, &tile.jpeg).map_err(|e| io(&p, e))?;
        centers.push((id, tile.centre, tile.width));
    }
    let p = tmp.join("ref.jpg");
    std::fs::write(&p, &chunk.ref_jpeg).map_err(|e| io(&p, e))?;
    write_centers(&tmp.join("centers.pt"), &centers)?;
    let target = dest.root.join(name);
    if target.exists() {
        match dest.mode {
            Mode::Resume => {
                std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
                return Ok(Written::Kept);
            }
            Mode::Overwrite => {
                std::fs::remove_dir_all(&target).map_err(|e| io(&target, e))?;
            }
            Mode::Fresh => {
                std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
                return Err(CoreError::Destination {
                    path: target,
                    reason:
                        "chunk folder already exists (written by someone else during this run?)"
                            .into(),
                });
            }
        }
    }
    std::fs::rename(&tmp, &target).map_err(|e| io(&target, e))?;
    Ok(Written::New)
}
