//! Encoding a centers dict the way `torch.save` does: a protocol-2 pickle, byte for
//! byte what CPython's C pickler emits for a dict of fresh int tuples, stored as
//! `archive/data.pkl` in torch's zip layout.

use super::zipfmt;

/// Top-level directory of the archive: what `torch.save` uses for in-memory buffers.
/// (For a path it uses the file stem; `torch.load` accepts any name.)
const ARCHIVE_PREFIX: &str = "archive";

/// CPython's `Pickler` writes dict items in batches of this many.
const BATCH: usize = 1000;

/// Returns the bytes of a `torch.save`d dict `{id: ((row, col), width)}` in the zip
/// format, entries in the given order.
///
/// The output is deterministic: fixed timestamps, and a `.data/serialization_id`
/// derived from the content.
pub fn centers_to_bytes(entries: &[(i64, (i64, i64), i64)]) -> Vec<u8> {
    let pkl = centers_pickle(entries);
    zipfmt::torch_zip(ARCHIVE_PREFIX, &pkl)
}

/// The `data.pkl` of [`centers_to_bytes`]: what `pickle.dumps(d, protocol=2)` gives.
pub(crate) fn centers_pickle(entries: &[(i64, (i64, i64), i64)]) -> Vec<u8> {
    let mut p = Pickler {
        out: Vec::with_capacity(16 + entries.len() * 20),
        memo: 0,
    };
    p.out.extend_from_slice(&[0x80, 2]); // PROTO 2
    p.out.push(b'}'); // EMPTY_DICT
    p.memoize();
    if let [(id, (row, col), width)] = entries {
        p.entry(*id, *row, *col, *width);
        p.out.push(b's'); // SETITEM
    } else if !entries.is_empty() {
        // Like CPython's batch_dict_exact: a trailing empty batch when the size is a
        // multiple of BATCH.
        let mut rest = entries;
        loop {
            let (batch, tail) = rest.split_at(rest.len().min(BATCH));
            p.out.push(b'('); // MARK
            for (id, (row, col), width) in batch {
                p.entry(*id, *row, *col, *width);
            }
            p.out.push(b'u'); // SETITEMS
            rest = tail;
            if batch.len() < BATCH {
                break;
            }
        }
    }
    p.out.push(b'.'); // STOP
    p.out
}

struct Pickler {
    out: Vec<u8>,
    memo: u32,
}

impl Pickler {
    fn memoize(&mut self) {
        if let Ok(small) = u8::try_from(self.memo) {
            self.out.extend_from_slice(&[b'q', small]); // BINPUT
        } else {
            self.out.push(b'r'); // LONG_BINPUT
            self.out.extend_from_slice(&self.memo.to_le_bytes());
        }
        self.memo += 1;
    }

    fn entry(&mut self, id: i64, row: i64, col: i64, width: i64) {
        self.int(id);
        self.int(row);
        self.int(col);
        self.out.push(0x86); // TUPLE2
        self.memoize();
        self.int(width);
        self.out.push(0x86); // TUPLE2
        self.memoize();
    }

    fn int(&mut self, v: i64) {
        if let Ok(b) = u8::try_from(v) {
            self.out.extend_from_slice(&[b'K', b]); // BININT1
        } else if let Ok(h) = u16::try_from(v) {
            self.out.push(b'M'); // BININT2
            self.out.extend_from_slice(&h.to_le_bytes());
        } else if let Ok(w) = i32::try_from(v) {
            self.out.push(b'J'); // BININT
            self.out.extend_from_slice(&w.to_le_bytes());
        } else {
            let enc = long_bytes(v);
            self.out.extend_from_slice(&[0x8a, enc.len() as u8]); // LONG1
            self.out.extend_from_slice(&enc);
        }
    }
}

/// Python's `pickle.encode_long`: shortest little-endian two's complement.
fn long_bytes(v: i64) -> Vec<u8> {
    let mut b = v.to_le_bytes().to_vec();
    while let [.., hi2, hi] = b.as_slice() {
        let redundant = (*hi == 0 && hi2 & 0x80 == 0) || (*hi == 0xff && hi2 & 0x80 != 0);
        if !redundant {
            break;
        }
        b.pop();
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_encoding_matches_python() {
        // Values from pickle.encode_long in CPython.
        assert_eq!(long_bytes(1 << 31), [0, 0, 0, 0x80, 0]);
        assert_eq!(long_bytes(-(1 << 31) - 1), [0xff, 0xff, 0xff, 0x7f, 0xff]);
        assert_eq!(long_bytes(1 << 40), [0, 0, 0, 0, 0, 1]);
        assert_eq!(
            long_bytes(i64::MAX),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
        );
        assert_eq!(long_bytes(i64::MIN), [0, 0, 0, 0, 0, 0, 0, 0x80]);
        assert_eq!(long_bytes(-1), [0xff]);
        assert_eq!(long_bytes(0x80), [0x80, 0]);
    }

    #[test]
    fn pickles_match_cpython() {
        // From pickle.dumps(d, protocol=2) in CPython 3.
        assert_eq!(centers_pickle(&[]), b"\x80\x02}q\x00.");
        assert_eq!(
            centers_pickle(&[(1, (32, 32), 64)]),
            b"\x80\x02}q\x00K\x01K K \x86q\x01K@\x86q\x02s."
        );
        assert_eq!(
            centers_pickle(&[(1, (32, 32), 64), (2, (-5, 1 << 40), 3)]),
            b"\x80\x02}q\x00(K\x01K K \x86q\x01K@\x86q\x02K\x02J\xfb\xff\xff\xff\x8a\x06\x00\x00\x00\x00\x00\x01\x86q\x03K\x03\x86q\x04u."
        );
    }

    #[test]
    fn big_dicts_batch_and_use_long_binput() {
        let entries: Vec<_> = (0..1000).map(|i| (i, (i, i), i)).collect();
        let p = centers_pickle(&entries);
        assert!(
            p.ends_with(b"\x86r\xd0\x07\x00\x00u(u."),
            "{:?}",
            &p[p.len() - 12..]
        );
        let entries: Vec<_> = (0..1001).map(|i| (i, (i, i), i)).collect();
        let p = centers_pickle(&entries);
        assert!(p.ends_with(
            b"u(M\xe8\x03M\xe8\x03M\xe8\x03\x86r\xd1\x07\x00\x00M\xe8\x03\x86r\xd2\x07\x00\x00u."
        ));
    }
}
