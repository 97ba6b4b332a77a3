//! Scanning a dataset root into a [`RootIndex`], one chunk folder per rayon task.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rayon::prelude::*;

use super::fingerprint::{chunk_dirs, now_ns, stamp, Stamp};
use super::{
    bytes_path, Chunk, RootIndex, Tile, CENTERS_INVALID, HAS_CENTERS, HAS_REF, NAME_RUN, NO_CENTRE,
    OTHER_NAME,
};
use crate::error::{CoreError, Result};
use crate::extract::sources::list_sources;
use crate::torchfile::read_centers;

/// Tile id -> (row, col, width), as stored.
type Centres = BTreeMap<i64, (i32, i32, i32)>;

/// What one chunk folder holds.
struct Scanned {
    name: Vec<u8>,
    /// Tile paths relative to the chunk folder, in DLAS order.
    tiles: Vec<Vec<u8>>,
    has_ref: bool,
    /// `None`: no centers.pt. `Some(Err)`: unreadable (reason).
    centers: Option<std::result::Result<Centres, String>>,
    stamp: Stamp,
}

/// Scans `root`: its sub-folders (sorted by name, names starting with `.` skipped,
/// links to folders followed as `os.scandir(...).is_dir()` does) are the chunks.
pub fn build(root: &Path) -> Result<RootIndex> {
    let built_ns = now_ns();
    let names = chunk_dirs(root)?;
    let scanned: Vec<Scanned> = names
        .into_par_iter()
        .map(|name| scan_chunk(root, name))
        .collect::<Result<_>>()?;
    assemble(root, built_ns, scanned)
}

/// The index of the pack in `root` (docs/shards.md), from its sidecars: the chunks and
/// tiles that scanning the unpacked dataset in `root` would give, in the same order,
/// their centres read from the packed centers.pt files.
pub fn build_from_pack(root: &Path, set: &crate::pack::reader::ShardSet) -> Result<RootIndex> {
    let built_ns = now_ns();
    // Chunk folder -> its members (paths below it), in path order.
    let mut chunks: BTreeMap<&[u8], Vec<&[u8]>> = BTreeMap::new();
    for path in set.paths() {
        let Some(slash) = path.iter().position(|&b| b == b'/') else {
            continue; // a file at the root: not part of any chunk
        };
        let (chunk, rest) = (&path[..slash], &path[slash + 1..]);
        if chunk.starts_with(b".") || rest.is_empty() {
            continue;
        }
        chunks.entry(chunk).or_default().push(rest);
    }
    let scanned: Vec<Scanned> = chunks
        .into_par_iter()
        .map(|(name, members)| scan_packed_chunk(root, name, &members))
        .collect::<Result<_>>()?;
    assemble(root, built_ns, scanned)
}

/// A packed chunk as [`scan_chunk`] sees a folder: its image files in DLAS's walk
/// order (folders sorted by path, names sorted within each; names containing
/// `ref.jpg` left out), whether it has a ref.jpg, and its centres.
fn scan_packed_chunk(root: &Path, name: &[u8], members: &[&[u8]]) -> Result<Scanned> {
    let mut tiles: Vec<(&[u8], &[u8])> = members
        .iter()
        .filter_map(|rel| {
            let cut = rel.iter().rposition(|&b| b == b'/');
            let (folder, file) = cut.map_or((&rel[..0], *rel), |i| (&rel[..i], &rel[i + 1..]));
            crate::extract::sources::is_source_name(file).then_some((folder, *rel))
        })
        .collect();
    tiles.sort_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(b.1)));
    let has = |file: &[u8]| members.contains(&file);
    let dir = root.join(bytes_path(name));
    let has_centers = has(b"centers.pt");
    let stamp = Stamp {
        dir_mtime_ns: 0,
        centers_mtime_ns: 0,
        centers_size: u64::from(has_centers),
    };
    Ok(Scanned {
        name: name.to_vec(),
        tiles: tiles.into_iter().map(|(_, rel)| rel.to_vec()).collect(),
        has_ref: has(b"ref.jpg"),
        centers: has_centers.then(|| read_centre_table(&dir.join("centers.pt"))),
        stamp,
    })
}

fn assemble(root: &Path, built_ns: i64, scanned: Vec<Scanned>) -> Result<RootIndex> {
    let mut index = RootIndex {
        root: root.to_path_buf(),
        built_ns,
        ..Default::default()
    };
    index
        .tiles
        .reserve(scanned.iter().map(|s| s.tiles.len()).sum());
    for (ci, s) in scanned.into_iter().enumerate() {
        let name = push_text(&mut index.text, &s.name);
        let mut flags = if s.has_ref { HAS_REF } else { 0 };
        let centers = match s.centers {
            None => None,
            Some(Ok(map)) => {
                flags |= HAS_CENTERS;
                Some(map)
            }
            Some(Err(reason)) => {
                flags |= HAS_CENTERS | CENTERS_INVALID;
                index.centers_errors.push((ci as u32, reason));
                None
            }
        };
        let tile_start = index.tiles.len() as u32;
        let mut codes = Vec::with_capacity(s.tiles.len());
        for rel in &s.tiles {
            let (row, col, width) = tile_id(rel)
                .and_then(|id| centers.as_ref()?.get(&id).copied())
                .unwrap_or((0, 0, NO_CENTRE));
            index.tiles.push(Tile { row, col, width });
            codes.push(match numbered_name(rel) {
                Some(n) => n,
                None => {
                    let span = push_text(&mut index.text, rel);
                    index.other_names.push(span);
                    OTHER_NAME | (index.other_names.len() as u32 - 1)
                }
            });
        }
        // Tiles named first, first+1, ... need no per-tile name.
        let run = codes
            .iter()
            .enumerate()
            .all(|(j, &c)| c & OTHER_NAME == 0 && c.checked_sub(j as u32) == Some(codes[0]));
        let names = match (run, codes.first()) {
            (true, Some(&first)) => {
                flags |= NAME_RUN;
                first
            }
            (true, None) => {
                flags |= NAME_RUN;
                0
            }
            (false, _) => {
                index.tile_names.extend_from_slice(&codes);
                (index.tile_names.len() - codes.len()) as u32
            }
        };
        index.chunks.push(Chunk {
            name,
            tile_start,
            tile_count: s.tiles.len() as u32,
            flags,
            names,
            dir_mtime_ns: s.stamp.dir_mtime_ns,
            centers_mtime_ns: s.stamp.centers_mtime_ns,
            centers_size: s.stamp.centers_size,
        });
    }
    if index.tiles.len() > (OTHER_NAME - 1) as usize {
        return Err(CoreError::option(
            "paths",
            format!("{} holds more than 2^31 tiles", root.display()),
        ));
    }
    index.tile_names.shrink_to_fit();
    index.other_names.shrink_to_fit();
    index.text.shrink_to_fit();
    Ok(index)
}

fn push_text(text: &mut Vec<u8>, bytes: &[u8]) -> (u32, u32) {
    let off = text.len() as u32;
    text.extend_from_slice(bytes);
    (off, bytes.len() as u32)
}

fn scan_chunk(root: &Path, name: Vec<u8>) -> Result<Scanned> {
    let dir = root.join(bytes_path(&name));
    let stamp = stamp(&dir)?;
    let listed = list_sources(&dir)?;
    if let Some((folder, reason)) = listed.unreadable.first() {
        return Err(CoreError::io(
            folder,
            std::io::Error::other(format!("cannot list folder: {reason}")),
        ));
    }
    let tiles = listed
        .files
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(&dir).expect("listed under the chunk");
            rel.as_os_str().as_bytes().to_vec()
        })
        .collect();
    let centers = (stamp.centers_size != 0 || stamp.centers_mtime_ns != 0)
        .then(|| read_centre_table(&dir.join("centers.pt")));
    Ok(Scanned {
        has_ref: dir.join("ref.jpg").is_file(),
        name,
        tiles,
        centers,
        stamp,
    })
}

/// A chunk's centers.pt as the index keeps it, or why it cannot be used.
fn read_centre_table(path: &Path) -> std::result::Result<Centres, String> {
    {
        read_centers(path)
            .map_err(|e| e.to_string())
            .and_then(|map| {
                map.into_iter()
                    .map(|(id, ((r, c), w))| {
                        let fit = |v: i64| i32::try_from(v).ok().filter(|&v| v != NO_CENTRE);
                        match (fit(r), fit(c), fit(w)) {
                            (Some(r), Some(c), Some(w)) => Ok((id, (r, c, w))),
                            _ => Err(format!(
                                "{}: centre of tile {id} out of range: (({r}, {c}), {w})",
                                path.display()
                            )),
                        }
                    })
                    .collect()
            })
    }
}

/// `n` when the tile path is exactly `format!("{n:08}.jpg")` (no sub-folder).
fn numbered_name(rel: &[u8]) -> Option<u32> {
    let stem = rel.strip_suffix(b".jpg")?;
    if stem.len() < 8 || !stem.iter().all(u8::is_ascii_digit) || (stem.len() > 8 && stem[0] == b'0')
    {
        return None;
    }
    let n: u32 = std::str::from_utf8(stem).ok()?.parse().ok()?;
    (n < OTHER_NAME).then_some(n)
}

/// The id DLAS looks up in centers.pt: `int(os.path.splitext(basename)[0])`, with
/// Python's `int()` rules for a str (surrounding whitespace, a sign, digits with single
/// underscores between them). `None` where Python would raise.
pub(super) fn tile_id(rel: &[u8]) -> Option<i64> {
    let base = rel.rsplit(|&b| b == b'/').next()?;
    let stem = match base.iter().rposition(|&b| b == b'.') {
        Some(0) | None => base,
        Some(i) => &base[..i],
    };
    let s = std::str::from_utf8(stem).ok()?.trim();
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let b = digits.as_bytes();
    if b.is_empty() || b[0] == b'_' || b[b.len() - 1] == b'_' || digits.contains("__") {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if !clean.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v: i64 = clean.parse().ok()?;
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names_round_trip_exactly() {
        assert_eq!(numbered_name(b"00000001.jpg"), Some(1));
        assert_eq!(numbered_name(b"12345678.jpg"), Some(12_345_678));
        assert_eq!(numbered_name(b"123456789.jpg"), Some(123_456_789));
        for other in [
            &b"0000001.jpg"[..],
            b"000000001.jpg",
            b"00000001.JPG",
            b"00000001.png",
            b"sub/00000001.jpg",
            b"a0000001.jpg",
            b"99999999999.jpg",
        ] {
            assert_eq!(
                numbered_name(other),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        for n in [0u32, 7, 99_999_999, 100_000_000, (1 << 31) - 1] {
            let name = format!("{n:08}.jpg");
            assert_eq!(numbered_name(name.as_bytes()), Some(n));
        }
    }

    #[test]
    fn tile_ids_follow_python_int() {
        assert_eq!(tile_id(b"00000042.jpg"), Some(42));
        assert_eq!(tile_id(b"sub/7.png"), Some(7));
        assert_eq!(tile_id(b"1_000.jpg"), Some(1000));
        assert_eq!(tile_id(b" 12 .jpg"), Some(12));
        assert_eq!(tile_id(b"-3.jpg"), Some(-3));
        assert_eq!(tile_id(b"tile_3.jpg"), None);
        assert_eq!(tile_id(b"1__0.jpg"), None);
        assert_eq!(tile_id(b"_1.jpg"), None);
        assert_eq!(tile_id(b".jpg"), None);
    }
}
