//! Reading a pack in place: its shards memory-mapped, its members found through the
//! sidecars (no scan of the tars), and every file read of the process that names a
//! path under the pack's folder served from the maps (docs/shards.md, "Reading
//! shards").
//!
//! A pack opened here is registered for the process: [`read_member`] (which
//! [`crate::input::read_regular`] asks first) gives the bytes of `<folder>/<member
//! path>` as a slice of its shard's map, so the loaders, the index and the centers.pt
//! reader read packed tiles by the same paths as unpacked ones, with no open per file.
//! Forked DataLoader workers inherit the maps; spawned ones open the pack again.
//!
//! Each read checks the member's tar header (just before its data) against the
//! sidecar: a sidecar that disagrees with its shard is an error naming the shard and
//! the offset, never the bytes of another file.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::sidecar::{read_manifest, read_sidecar};
use super::MANIFEST_NAME;
use crate::error::{CoreError, Result};

/// One member: where its path is in the set's text, and where its bytes are.
#[derive(Clone, Copy, Debug)]
struct Member {
    path: (usize, usize),
    shard: u32,
    offset: u64,
    size: u64,
}

/// An opened pack.
pub struct ShardSet {
    /// The pack's folder, as given: member paths are read under it.
    root: PathBuf,
    /// The sizes and mtimes of the manifest, sidecars and shards when opened: a pack
    /// written again (or edited) is opened again.
    stamp: Vec<(u64, i64)>,
    maps: Vec<memmap2::Mmap>,
    /// The shards' paths, for messages.
    shard_paths: Vec<PathBuf>,
    text: Vec<u8>,
    /// Sorted by path.
    members: Vec<Member>,
}

impl std::fmt::Debug for ShardSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSet")
            .field("root", &self.root)
            .field("shards", &self.maps.len())
            .field("members", &self.members.len())
            .finish()
    }
}

/// Whether `root` holds a pack (its manifest).
pub fn is_pack(root: &Path) -> bool {
    root.join(MANIFEST_NAME).is_file()
}

static OPEN: RwLock<Vec<Arc<ShardSet>>> = RwLock::new(Vec::new());

fn bad(path: &Path, why: String) -> CoreError {
    CoreError::io(path, io::Error::new(io::ErrorKind::InvalidData, why))
}

/// Opens the pack in `root` (or gives the one already open there), maps its shards and
/// registers it for [`read_member`]. A shard whose size is not its sidecar's (truncated,
/// or another file) is an error naming it.
pub fn open(root: &Path) -> Result<Arc<ShardSet>> {
    let manifest_path = root.join(MANIFEST_NAME);
    let manifest = read_manifest(&manifest_path)?;
    let stamp_of = |path: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path)
            .map(|m| (m.len(), m.mtime() * 1_000_000_000 + m.mtime_nsec()))
            .map_err(|e| CoreError::io(path, e))
    };
    let mut stamp = vec![stamp_of(&manifest_path)?];
    for entry in &manifest.shards {
        stamp.push(stamp_of(&root.join(&entry.index))?);
        stamp.push(stamp_of(&root.join(&entry.tar))?);
    }
    if let Some(set) = registered(root).filter(|s| s.stamp == stamp) {
        return Ok(set);
    }
    let mut set = ShardSet {
        root: root.to_path_buf(),
        stamp,
        maps: Vec::with_capacity(manifest.shards.len()),
        shard_paths: Vec::with_capacity(manifest.shards.len()),
        text: Vec::new(),
        members: Vec::new(),
    };
    for (i, entry) in manifest.shards.iter().enumerate() {
        if manifest.shards[..i]
            .iter()
            .any(|e| e.tar == entry.tar || e.index == entry.index)
        {
            return Err(bad(
                &manifest_path,
                format!("lists the shard {} twice", entry.tar),
            ));
        }
        let tar = root.join(&entry.tar);
        let index = read_sidecar(&root.join(&entry.index))?;
        if index.tar != entry.tar || index.size != entry.size {
            return Err(bad(
                &root.join(&entry.index),
                format!("does not describe {} as the manifest does", entry.tar),
            ));
        }
        let (file, meta) = crate::input::open_regular(&tar).map_err(|e| CoreError::io(&tar, e))?;
        if meta.len() != index.size {
            return Err(bad(
                &tar,
                format!(
                    "{} bytes where its index says {}: the shard is truncated or was \
                     replaced; copy it again (or pack again)",
                    meta.len(),
                    index.size
                ),
            ));
        }
        // SAFETY: the map is read only. A shard changed by another process while mapped
        // shows its new bytes (or SIGBUS when truncated), as reading the file would
        // show them; each read checks the member's tar header first.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| CoreError::io(&tar, e))?;
        // Reads are of single members here and there: no readahead of whole shards.
        let _ = map.advise(memmap2::Advice::Random);
        for m in index.members {
            let start = set.text.len();
            set.text.extend_from_slice(&m.path);
            set.members.push(Member {
                path: (start, m.path.len()),
                shard: i as u32,
                offset: m.offset,
                size: m.size,
            });
        }
        set.maps.push(map);
        set.shard_paths.push(tar);
    }
    let text = std::mem::take(&mut set.text);
    set.members
        .sort_by(|a, b| text[a.path.0..][..a.path.1].cmp(&text[b.path.0..][..b.path.1]));
    set.text = text;
    if let Some(w) = set
        .members
        .windows(2)
        .find(|w| set.path(&w[0]) == set.path(&w[1]))
    {
        return Err(bad(
            &manifest_path,
            format!(
                "the pack lists {} twice",
                String::from_utf8_lossy(set.path(&w[0]))
            ),
        ));
    }
    let set = Arc::new(set);
    let mut open = OPEN.write().unwrap_or_else(|e| e.into_inner());
    open.retain(|s| s.root != set.root);
    open.push(Arc::clone(&set));
    Ok(set)
}

fn registered(root: &Path) -> Option<Arc<ShardSet>> {
    let open = OPEN.read().unwrap_or_else(|e| e.into_inner());
    open.iter().find(|s| s.root == root).cloned()
}

impl ShardSet {
    /// The pack's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, m: &Member) -> &[u8] {
        &self.text[m.path.0..][..m.path.1]
    }

    /// Every member path, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &[u8]> {
        self.members.iter().map(|m| self.path(m))
    }

    fn find(&self, rel: &[u8]) -> Option<&Member> {
        let i = self
            .members
            .binary_search_by(|m| self.path(m).cmp(rel))
            .ok()?;
        Some(&self.members[i])
    }

    /// The bytes of member `rel`, checked against its tar header; None when the pack
    /// has no such member.
    pub fn member(&self, rel: &[u8]) -> Option<io::Result<&[u8]>> {
        let m = self.find(rel)?;
        let map = &self.maps[m.shard as usize];
        Some(self.checked(m, map, rel))
    }

    fn checked<'a>(&self, m: &Member, map: &'a [u8], rel: &[u8]) -> io::Result<&'a [u8]> {
        let shard = &self.shard_paths[m.shard as usize];
        let disagree = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: the member at offset {} is not {} ({why}): its sidecar index \
                     disagrees with the shard; pack again",
                    shard.display(),
                    m.offset,
                    String::from_utf8_lossy(rel)
                ),
            )
        };
        let start = m.offset as usize;
        let end = start
            .checked_add(m.size as usize)
            .filter(|&e| e <= map.len() && start >= 512)
            .ok_or_else(|| disagree("it lies outside the shard"))?;
        let header = &map[start - 512..start];
        if &header[257..262] != b"ustar" || header[156] != b'0' {
            return Err(disagree("no file header before it"));
        }
        if octal(&header[124..136]) != Some(m.size) {
            return Err(disagree("its header gives another size"));
        }
        // The ustar name (with its prefix) is the path, or a pax record just before the
        // header holds it, exactly as the pack writes it.
        if ustar_name(header) != rel && !pax_names(map, start - 512, rel) {
            return Err(disagree("its header names another file"));
        }
        Ok(&map[start..end])
    }
}

/// Whether the pax extended header whose member header starts at `header` gives
/// `rel` as the path, in the one record the pack writes.
fn pax_names(map: &[u8], header: usize, rel: &[u8]) -> bool {
    let record = super::write::pax_path_record(rel);
    let data_len = (record.len() as u64).div_ceil(512) as usize * 512;
    let Some(x_header) = header.checked_sub(data_len + 512) else {
        return false;
    };
    let x = &map[x_header..x_header + 512];
    x[156] == b'x'
        && octal(&x[124..136]) == Some(record.len() as u64)
        && map[x_header + 512..][..record.len()] == record[..]
}

fn octal(field: &[u8]) -> Option<u64> {
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| (b'0'..=b'7').contains(&b))
        .collect();
    if digits.is_empty() {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(&digits).ok()?, 8).ok()
}

fn ustar_name(header: &[u8]) -> Vec<u8> {
    let field = |f: &[u8]| f[..f.iter().position(|&b| b == 0).unwrap_or(f.len())].to_vec();
    let name = field(&header[0..100]);
    let prefix = field(&header[345..500]);
    if prefix.is_empty() {
        name
    } else {
        let mut p = prefix;
        p.push(b'/');
        p.extend_from_slice(&name);
        p
    }
}

/// The bytes of `path` when it names a member of an open pack (`<pack folder>/<member
/// path>`), at most `max_bytes` of them; None when it is not under an open pack or the
/// pack has no such member (the file system is asked then).
pub fn read_member(path: &Path, max_bytes: u64) -> Option<io::Result<Vec<u8>>> {
    let open = OPEN.read().unwrap_or_else(|e| e.into_inner());
    if open.is_empty() {
        return None;
    }
    for set in open.iter() {
        let Ok(rel) = path.strip_prefix(&set.root) else {
            continue;
        };
        let rel = rel.as_os_str().as_bytes();
        return set.member(rel).map(|r| {
            r.and_then(|bytes| {
                if bytes.len() as u64 > max_bytes {
                    return Err(crate::input::too_large(
                        &bytes.len().to_string(),
                        max_bytes,
                        "a packed file",
                        "",
                    ));
                }
                Ok(bytes.to_vec())
            })
        });
    }
    None
}
