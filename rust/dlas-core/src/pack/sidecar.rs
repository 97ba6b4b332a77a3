//! The sidecar index beside each shard and the pack's manifest, as JSON.
//!
//! A sidecar (`shard-NNNNNN.idx.json`):
//! `{"format": "dlas_fast.shard/1", "tar": "shard-NNNNNN.tar", "size": <bytes>,
//!   "members": [[<path>, <data offset>, <size>, <mtime>], ...]}`, the path a string,
//! or `{"hex": "..."}` for a name that is not UTF-8.
//! The manifest (`dlas_fast-pack.json`):
//! `{"format": "dlas_fast.pack/1", "shard_size": <bytes>, "chunks": n, "files": n,
//!   "bytes": n, "shards": [{"tar", "index", "size", "members", "chunks",
//!   "first_chunk", "last_chunk"}, ...]}`.

use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use super::{in_out, shard_name, sidecar_name, Plan, MANIFEST_NAME};
use crate::error::{CoreError, Result};
use crate::input::{read_regular, MANIFEST_MAX_BYTES};

/// The `format` of a sidecar.
pub const SIDECAR_FORMAT: &str = "dlas_fast.shard/1";
/// The `format` of a manifest.
pub const MANIFEST_FORMAT: &str = "dlas_fast.pack/1";

/// One member of a shard, as its sidecar lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SidecarMember {
    /// Its path relative to the dataset root.
    pub path: Vec<u8>,
    /// Where its data starts in the tar.
    pub offset: u64,
    pub size: u64,
    /// Whole seconds (the tar header's), and nanoseconds (what a resumed pack compares;
    /// 0 when not recorded).
    pub mtime: u64,
    pub mtime_ns: u64,
}

/// A shard's sidecar index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sidecar {
    /// The shard's file name.
    pub tar: String,
    /// The shard's size in bytes.
    pub size: u64,
    pub members: Vec<SidecarMember>,
}

/// One shard as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardEntry {
    pub tar: String,
    pub index: String,
    pub size: u64,
    pub members: u64,
}

/// A pack's manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub shard_size: u64,
    pub shards: Vec<ShardEntry>,
}

fn path_json(path: &[u8]) -> Value {
    match std::str::from_utf8(path) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => json!({ "hex": path.iter().map(|b| format!("{b:02x}")).collect::<String>() }),
    }
}

fn path_from_json(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Object(o) => {
            let hex = o.get("hex")?.as_str()?;
            if hex.len() % 2 != 0 {
                return None;
            }
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect()
        }
        _ => None,
    }
}

/// A path of plain names joined by `/`: not empty, not absolute, no empty, `.` or `..`
/// part (a member may never name a file outside the pack's folder).
fn is_relative_path(path: &[u8]) -> bool {
    !path.is_empty()
        && path
            .split(|&b| b == b'/')
            .all(|part| !part.is_empty() && part != b"." && part != b"..")
}

pub(super) fn sidecar_json(s: &Sidecar) -> Value {
    let members: Vec<Value> = s
        .members
        .iter()
        .map(|m| json!([path_json(&m.path), m.offset, m.size, m.mtime, m.mtime_ns]))
        .collect();
    json!({ "format": SIDECAR_FORMAT, "tar": s.tar, "size": s.size, "members": members })
}

fn bad(path: &Path, why: impl std::fmt::Display) -> CoreError {
    CoreError::io(
        path,
        std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_string()),
    )
}

fn read_json(path: &Path, what: &str) -> Result<Value> {
    let bytes =
        read_regular(path, MANIFEST_MAX_BYTES, what, "").map_err(|e| CoreError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(path, format!("not valid JSON: {e}")))
}

/// Reads a shard's sidecar; anything that is not one (another format, a member whose
/// data would run past the shard's end) is an error naming the file.
pub fn read_sidecar(path: &Path) -> Result<Sidecar> {
    let v = read_json(path, "a shard index")?;
    if v.get("format").and_then(Value::as_str) != Some(SIDECAR_FORMAT) {
        return Err(bad(
            path,
            format!("not a shard index (format {SIDECAR_FORMAT})"),
        ));
    }
    let tar = v.get("tar").and_then(Value::as_str);
    let size = v.get("size").and_then(Value::as_u64);
    let members = v.get("members").and_then(Value::as_array);
    let (Some(tar), Some(size), Some(members)) = (tar, size, members) else {
        return Err(bad(path, "a shard index needs `tar`, `size` and `members`"));
    };
    let mut out = Vec::with_capacity(members.len());
    for (i, m) in members.iter().enumerate() {
        let fields = m.as_array().filter(|a| a.len() == 4 || a.len() == 5);
        let parsed = fields.and_then(|a| {
            Some(SidecarMember {
                path: path_from_json(&a[0])?,
                offset: a[1].as_u64()?,
                size: a[2].as_u64()?,
                mtime: a[3].as_u64()?,
                mtime_ns: a.get(4).map_or(Some(0), Value::as_u64)?,
            })
        });
        let Some(member) = parsed else {
            return Err(bad(
                path,
                format!("member {i} is not [path, offset, size, mtime]"),
            ));
        };
        if !is_relative_path(&member.path) {
            return Err(bad(
                path,
                format!(
                    "member {i}'s path {:?} is not a plain relative path (empty, absolute, \
                     or with a `.` or `..` part)",
                    String::from_utf8_lossy(&member.path)
                ),
            ));
        }
        let end = member.offset.checked_add(member.size);
        if end.is_none_or(|e| e > size) || member.offset % 512 != 0 || member.offset < 512 {
            return Err(bad(
                path,
                format!("member {i} lies outside its shard of {size} bytes"),
            ));
        }
        out.push(member);
    }
    Ok(Sidecar {
        tar: tar.to_owned(),
        size,
        members: out,
    })
}

/// Reads a pack's manifest.
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    let v = read_json(path, "a pack manifest")?;
    if v.get("format").and_then(Value::as_str) != Some(MANIFEST_FORMAT) {
        return Err(bad(
            path,
            format!("not a pack manifest (format {MANIFEST_FORMAT})"),
        ));
    }
    let shard_size = v.get("shard_size").and_then(Value::as_u64).unwrap_or(0);
    let Some(list) = v.get("shards").and_then(Value::as_array) else {
        return Err(bad(path, "a pack manifest needs `shards`"));
    };
    let mut shards = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let entry = (|| {
            Some(ShardEntry {
                tar: s.get("tar")?.as_str()?.to_owned(),
                index: s.get("index")?.as_str()?.to_owned(),
                size: s.get("size")?.as_u64()?,
                members: s.get("members")?.as_u64()?,
            })
        })();
        let plain = |n: &str| !n.is_empty() && !n.contains('/') && n != "." && n != "..";
        match entry {
            Some(e) if plain(&e.tar) && plain(&e.index) => shards.push(e),
            _ => {
                return Err(bad(
                    path,
                    format!("shard {i} is not {{tar, index, size, members}}"),
                ))
            }
        }
    }
    Ok(Manifest { shard_size, shards })
}

/// Writes `value` to `path` (made anew), synced.
pub(super) fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut f = super::write::create_part(path)?;
    let text = serde_json::to_vec(value).expect("JSON values serialise");
    f.write_all(&text).map_err(|e| CoreError::io(path, e))?;
    f.write_all(b"\n").map_err(|e| CoreError::io(path, e))?;
    f.sync_all().map_err(|e| CoreError::io(path, e))
}

/// Writes the manifest of `plan` (under a temporary name, then renamed).
pub(super) fn write_manifest(out: &Path, plan: &Plan, shard_size: u64) -> Result<()> {
    let shards: Vec<Value> = plan
        .shards
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "tar": shard_name(i),
                "index": sidecar_name(i),
                "size": s.bytes,
                "members": s.files.len(),
                "chunks": s.chunks.len(),
                "first_chunk": path_json(s.chunks.first().map_or(&[][..], |c| c)),
                "last_chunk": path_json(s.chunks.last().map_or(&[][..], |c| c)),
            })
        })
        .collect();
    let value = json!({
        "format": MANIFEST_FORMAT,
        "shard_size": shard_size,
        "chunks": plan.chunks,
        "files": plan.shards.iter().map(|s| s.files.len()).sum::<usize>(),
        "bytes": plan.shards.iter().map(|s| s.bytes).sum::<u64>(),
        "shards": shards,
    });
    let part = in_out(out, ".dlas_fast-pack-manifest.part");
    write_json(&part, &value)?;
    let path = in_out(out, MANIFEST_NAME);
    std::fs::rename(&part, &path).map_err(|e| CoreError::io(&path, e))
}
