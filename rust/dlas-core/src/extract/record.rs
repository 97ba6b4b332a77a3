//! The job's source list as DST records it: each source's path relative to SRC, its
//! size and its modification time. Chunk names depend on the whole sorted list, so a
//! run that adds to DST's output (`resume`, another shard) must see the list the
//! output was made from; the record lets it tell, and say what changed.
//!
//! Stored once per distinct list as `.dlas_fast-sources-<digest>` (the manifests name
//! the digest), in a compact form: paths front-coded against the previous one (sorted
//! sources share their folders), numbers as LEB128 varints, times as deltas. About 15
//! to 30 bytes a source, so a million sources take a few tens of MB.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

const MAGIC: &[u8] = b"dlas_fast source list 1\n";

/// One source as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to SRC, as bytes.
    pub rel: Vec<u8>,
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
}

/// The source list of a job, in the job's (sorted) order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceRecord {
    pub entries: Vec<Entry>,
}

impl SourceRecord {
    /// The record of `files` (paths under `root`, as listed), read from the file
    /// system in parallel (in the current rayon pool). A file that vanished since it
    /// was listed is recorded with size and time 0; decoding it fails later.
    pub fn of(root: &Path, files: &[PathBuf]) -> SourceRecord {
        let entries = files
            .par_iter()
            .map(|f| {
                let rel = f.strip_prefix(root).unwrap_or(f);
                let (size, mtime_ns) = std::fs::metadata(f).map_or((0, 0), |m| {
                    // A key, not a time: wraps for times past the year 2262 (anyone may
                    // set a file's time) rather than overflow.
                    let ns = m.mtime().wrapping_mul(1_000_000_000);
                    (m.len(), ns.wrapping_add(m.mtime_nsec()))
                });
                Entry {
                    rel: rel.as_os_str().as_bytes().to_vec(),
                    size,
                    mtime_ns,
                }
            })
            .collect();
        SourceRecord { entries }
    }

    /// The stored form: magic, count, entries, then the FNV-1a hash of all before it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        put(&mut out, self.entries.len() as u64);
        let mut prev: &[u8] = &[];
        let mut prev_time = 0i64;
        for e in &self.entries {
            let shared = prev.iter().zip(&e.rel).take_while(|(a, b)| a == b).count();
            put(&mut out, shared as u64);
            put(&mut out, (e.rel.len() - shared) as u64);
            out.extend_from_slice(&e.rel[shared..]);
            put(&mut out, e.size);
            let delta = e.mtime_ns.wrapping_sub(prev_time);
            put(&mut out, ((delta << 1) ^ (delta >> 63)) as u64);
            prev = &e.rel;
            prev_time = e.mtime_ns;
        }
        let hash = crate::fnv1a64(&out);
        out.extend_from_slice(&hash.to_le_bytes());
        out
    }

    /// Reads [`encode`](Self::encode)'s form; None when damaged.
    pub fn decode(bytes: &[u8]) -> Option<SourceRecord> {
        let (body, hash) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
        if crate::fnv1a64(body).to_le_bytes() != hash || !body.starts_with(MAGIC) {
            return None;
        }
        let mut r = Reader {
            bytes: &body[MAGIC.len()..],
        };
        let count = r.num()?;
        let mut entries = Vec::with_capacity(count.min(1 << 20) as usize);
        let mut prev: Vec<u8> = Vec::new();
        let mut prev_time = 0i64;
        for _ in 0..count {
            let shared = r.num()? as usize;
            let len = r.num()? as usize;
            let mut rel = prev.get(..shared)?.to_vec();
            rel.extend_from_slice(r.take(len)?);
            let size = r.num()?;
            let z = r.num()?;
            let delta = ((z >> 1) as i64) ^ -((z & 1) as i64);
            let mtime_ns = prev_time.wrapping_add(delta);
            prev.clone_from(&rel);
            prev_time = mtime_ns;
            entries.push(Entry {
                rel,
                size,
                mtime_ns,
            });
        }
        r.bytes.is_empty().then_some(SourceRecord { entries })
    }

    /// A key of the whole list (paths, sizes, times): 16 hex digits.
    pub fn digest(&self) -> String {
        let bytes = self.encode();
        let hash: [u8; 8] = bytes[bytes.len() - 8..].try_into().expect("8 bytes");
        format!("{:016x}", u64::from_le_bytes(hash))
    }

    /// What changed from `old` to `self`, in words: counts of added, removed and
    /// changed (size or time) sources with the first few of each, or that the order
    /// changed when the same paths are listed otherwise.
    pub fn changes_since(&self, old: &SourceRecord) -> String {
        const SHOWN: usize = 3;
        let before: HashMap<&[u8], &Entry> =
            old.entries.iter().map(|e| (e.rel.as_slice(), e)).collect();
        let now: HashMap<&[u8], &Entry> =
            self.entries.iter().map(|e| (e.rel.as_slice(), e)).collect();
        let added: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| !before.contains_key(e.rel.as_slice()))
            .collect();
        let removed: Vec<&Entry> = old
            .entries
            .iter()
            .filter(|e| !now.contains_key(e.rel.as_slice()))
            .collect();
        let changed: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| {
                before
                    .get(e.rel.as_slice())
                    .is_some_and(|o| (o.size, o.mtime_ns) != (e.size, e.mtime_ns))
            })
            .collect();
        let mut parts = Vec::new();
        for (what, list) in [
            ("added", &added),
            ("removed", &removed),
            ("modified (size or time)", &changed),
        ] {
            if list.is_empty() {
                continue;
            }
            let names: Vec<String> = list
                .iter()
                .take(SHOWN)
                .map(|e| format!("`{}`", String::from_utf8_lossy(&e.rel)))
                .collect();
            let more = if list.len() > SHOWN { ", ..." } else { "" };
            parts.push(format!(
                "{} {what} ({}{more})",
                list.len(),
                names.join(", ")
            ));
        }
        if parts.is_empty() {
            "the same sources are listed in another order".into()
        } else {
            format!("source(s) {}", parts.join("; "))
        }
    }
}

/// Appends `v` as an unsigned LEB128 varint.
fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn num(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            v |= ((b & 0x7f) as u64).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(items: &[(&str, u64, i64)]) -> SourceRecord {
        SourceRecord {
            entries: items
                .iter()
                .map(|&(p, size, mtime_ns)| Entry {
                    rel: p.as_bytes().to_vec(),
                    size,
                    mtime_ns,
                })
                .collect(),
        }
    }

    #[test]
    fn round_trips_and_is_compact() {
        let r = rec(&[
            ("a/holiday/IMG_0001.jpg", 123_456, 1_700_000_000_123_456_789),
            ("a/holiday/IMG_0002.jpg", 99, 1_700_000_000_000_000_000),
            ("b/x.png", 0, -5),
            ("b/\u{e9}t\u{e9}.jpg", u64::MAX, i64::MAX),
        ]);
        let bytes = r.encode();
        assert_eq!(SourceRecord::decode(&bytes), Some(r.clone()));
        let empty = SourceRecord::default();
        assert_eq!(SourceRecord::decode(&empty.encode()), Some(empty));
        // A million sources in one folder: front coding keeps each entry small.
        let many = SourceRecord {
            entries: (0..1_000_000u64)
                .map(|i| Entry {
                    rel: format!("photos/2024/IMG_{i:07}.jpg").into_bytes(),
                    size: 3_000_000 + i,
                    mtime_ns: 1_700_000_000_000_000_000 + i as i64 * 1_000_000_007,
                })
                .collect(),
        };
        let n = many.encode().len();
        assert!(n < 20_000_000, "{n} bytes");
    }

    #[test]
    fn damage_is_detected() {
        let bytes = rec(&[("a.jpg", 1, 2)]).encode();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert_eq!(SourceRecord::decode(&bad), None, "byte {i}");
        }
        assert_eq!(SourceRecord::decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(SourceRecord::decode(b""), None);
    }

    #[test]
    fn the_digest_covers_paths_sizes_and_times() {
        let a = rec(&[("a/x.jpg", 1, 2)]);
        assert_eq!(a.digest(), rec(&[("a/x.jpg", 1, 2)]).digest());
        for other in [
            rec(&[("b/x.jpg", 1, 2)]),
            rec(&[("a/x.jpg", 2, 2)]),
            rec(&[("a/x.jpg", 1, 3)]),
            rec(&[("a/x.jpg", 1, 2), ("b/x.jpg", 1, 2)]),
        ] {
            assert_ne!(a.digest(), other.digest());
        }
    }

    #[test]
    fn any_modification_time_is_recorded() {
        use std::time::{Duration, SystemTime};
        let dir = std::env::temp_dir().join(format!("dlas-record-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("far.jpg");
        let file = std::fs::File::create(&path).unwrap();
        let mut keys = Vec::new();
        // Before 1970, now, and years 2400 and 30000 (past what i64 nanoseconds hold).
        for secs in [
            -1_000_000_000i64,
            1_700_000_000,
            13_569_465_600,
            884_541_340_800,
        ] {
            let time = if secs < 0 {
                SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            } else {
                SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
            };
            file.set_modified(time).unwrap();
            let r = SourceRecord::of(&dir, std::slice::from_ref(&path));
            assert_eq!(r.entries[0].rel, b"far.jpg");
            keys.push(r.entries[0].mtime_ns);
        }
        keys.dedup();
        assert_eq!(keys.len(), 4, "{keys:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn changes_are_named() {
        let old = rec(&[("b/x.jpg", 1, 2), ("c.jpg", 5, 5), ("d.jpg", 1, 1)]);
        let new = rec(&[("a/x.jpg", 1, 2), ("b/x.jpg", 1, 2), ("c.jpg", 6, 5)]);
        let said = new.changes_since(&old);
        assert!(said.contains("1 added (`a/x.jpg`)"), "{said}");
        assert!(said.contains("1 removed (`d.jpg`)"), "{said}");
        assert!(
            said.contains("1 modified (size or time) (`c.jpg`)"),
            "{said}"
        );
        let swapped = rec(&[("c.jpg", 5, 5), ("b/x.jpg", 1, 2), ("d.jpg", 1, 1)]);
        assert!(swapped.changes_since(&old).contains("another order"));
    }
}
