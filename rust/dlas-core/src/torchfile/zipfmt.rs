//! Torch's zip container: writing (a small deterministic stored-zip writer) and
//! reading the `*/data.pkl` entry (through the `zip` crate).
//!
//! `torch.save` (PyTorchStreamWriter) writes, all stored (uncompressed), in order:
//! `<prefix>/data.pkl`, `.format_version` (`1`), `.storage_alignment` (`64`),
//! `byteorder` (`little`), `version` (`3\n`) and `.data/serialization_id` (40
//! digits). Each local header carries an extra field `FB<len>` of `Z` padding so that
//! every entry's data starts at a multiple of 64. We write the same records and
//! padding, with CRC and sizes in the local header instead of trailing data
//! descriptors, a 1980-01-01 timestamp, and no zip64 records (never needed here).

use std::io::{Cursor, Read};

use super::error::TorchFileError;

const ALIGN: usize = 64;
const LOCAL_HEADER_LEN: usize = 30;
/// 1980-01-01 in MS-DOS date format (time is 00:00:00).
const DOS_DATE: u16 = (1 << 5) | 1;
const VERSION: u16 = 20;

/// A complete torch zip holding `data_pkl` as `<prefix>/data.pkl`.
pub(crate) fn torch_zip(prefix: &str, data_pkl: &[u8]) -> Vec<u8> {
    let mut records: Vec<(&str, Vec<u8>)> = vec![
        ("data.pkl", data_pkl.to_vec()),
        (".format_version", b"1".to_vec()),
        (".storage_alignment", b"64".to_vec()),
        ("byteorder", b"little".to_vec()),
        ("version", b"3\n".to_vec()),
    ];
    let id = serialization_id(&records);
    records.push((".data/serialization_id", id.into_bytes()));
    let named: Vec<(String, &[u8])> = records
        .iter()
        .map(|(n, d)| (format!("{prefix}/{n}"), d.as_slice()))
        .collect();
    stored_zip(&named)
}

/// 20 digits of a hash of the record names, then 20 of a hash of their data (torch
/// also uses 40 digits, from a name hash and a combined CRC).
fn serialization_id(records: &[(&str, Vec<u8>)]) -> String {
    let fnv = |parts: &mut dyn Iterator<Item = &[u8]>| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for &b in part.iter().chain(&[0xffu8]) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    };
    let names = fnv(&mut records.iter().map(|(n, _)| n.as_bytes()));
    let data = fnv(&mut records.iter().map(|(_, d)| d.as_slice()));
    format!("{names:020}{data:020}")
}

fn u16le(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn u32le(out: &mut Vec<u8>, v: usize) {
    let v = u32::try_from(v).expect("torch zip entries stay below 4 GiB");
    out.extend_from_slice(&v.to_le_bytes());
}

/// A zip of stored entries, data aligned to [`ALIGN`] bytes like torch's.
fn stored_zip(entries: &[(String, &[u8])]) -> Vec<u8> {
    let total: usize = entries
        .iter()
        .map(|(n, d)| 2 * n.len() + d.len() + 200)
        .sum();
    let mut out = Vec::with_capacity(total);
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len();
        let crc = crc32(data);
        let unpadded = offset + LOCAL_HEADER_LEN + name.len() + 4;
        let pad = (ALIGN - unpadded % ALIGN) % ALIGN;
        let fields = |out: &mut Vec<u8>| {
            u16le(out, VERSION); // version needed to extract
            u16le(out, 0); // flags
            u16le(out, 0); // method: stored
            u16le(out, 0); // time
            u16le(out, DOS_DATE);
            u32le(out, crc as usize);
            u32le(out, data.len()); // compressed size
            u32le(out, data.len()); // uncompressed size
            u16le(out, name.len() as u16);
        };
        out.extend_from_slice(b"PK\x03\x04");
        fields(&mut out);
        u16le(&mut out, (pad + 4) as u16); // extra field length
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"FB");
        u16le(&mut out, pad as u16);
        out.resize(out.len() + pad, b'Z');
        debug_assert_eq!(out.len() % ALIGN, 0);
        out.extend_from_slice(data);

        central.extend_from_slice(b"PK\x01\x02");
        u16le(&mut central, VERSION); // version made by
        fields(&mut central);
        central.extend_from_slice(&[0; 12]); // extra, comment, disk, attributes
        u32le(&mut central, offset);
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len();
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06");
    out.extend_from_slice(&[0; 4]); // disk numbers
    u16le(&mut out, entries.len() as u16);
    u16le(&mut out, entries.len() as u16);
    u32le(&mut out, central.len());
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0); // comment length
    out
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The CRC-32 of zip (IEEE, reflected).
fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |c, &b| {
        CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

/// The content of the pickle entry of a torch zip: `<prefix>/data.pkl`, where
/// `<prefix>` is the top directory of the first entry (as torch's reader does), or
/// else the only `*/data.pkl` in the archive.
pub(crate) fn read_data_pkl(bytes: &[u8]) -> Result<Vec<u8>, TorchFileError> {
    let bad =
        |e: &dyn std::fmt::Display| TorchFileError::not_torch(format!("bad zip archive: {e}"));
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(&e))?;
    let is_pkl = |n: &str| matches!(n.split_once('/'), Some((p, "data.pkl")) if !p.is_empty());
    let first_prefix = zip
        .name_for_index(0)
        .and_then(|n| n.split_once('/'))
        .map(|(p, _)| format!("{p}/data.pkl"));
    let index = match first_prefix.and_then(|n| zip.index_for_name(&n)) {
        Some(i) => i,
        None => {
            let found: Vec<usize> = (0..zip.len())
                .filter(|&i| zip.name_for_index(i).is_some_and(is_pkl))
                .collect();
            match found.as_slice() {
                [i] => *i,
                [] => {
                    return Err(TorchFileError::not_torch(
                        "zip archive has no */data.pkl entry",
                    ))
                }
                _ => {
                    return Err(TorchFileError::not_torch(
                        "zip archive has several */data.pkl entries",
                    ))
                }
            }
        }
    };
    let mut entry = zip.by_index(index).map_err(|e| bad(&e))?;
    let size = entry.size();
    if size > bytes.len() as u64 {
        return Err(TorchFileError::not_torch(format!(
            "{} declares {size} bytes, more than the whole file",
            entry.name()
        )));
    }
    let mut out = Vec::with_capacity(size as usize);
    entry
        .read_to_end(&mut out)
        .map_err(|e| TorchFileError::not_torch(format!("cannot read {}: {e}", entry.name())))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_reference() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b"little"), 0x19e3_3d85); // as in a real torch.save zip
    }

    #[test]
    fn entries_are_aligned_and_readable() {
        let pkl = b"\x80\x02}q\x00.";
        let z = torch_zip("archive", pkl);
        assert_eq!(read_data_pkl(&z).unwrap(), pkl);
        let mut zip = zip::ZipArchive::new(Cursor::new(z.as_slice())).unwrap();
        let names: Vec<_> = zip.file_names().map(str::to_string).collect();
        assert_eq!(names.len(), 6);
        for name in names {
            let e = zip.by_name(&name).unwrap();
            assert_eq!(e.data_start() % 64, 0, "{name}");
            assert_eq!(e.compression(), zip::CompressionMethod::Stored);
        }
        let mut id = String::new();
        zip.by_name("archive/.data/serialization_id")
            .unwrap()
            .read_to_string(&mut id)
            .unwrap();
        assert_eq!(id.len(), 40);
        assert!(id.bytes().all(|c| c.is_ascii_digit()));
        assert_ne!(
            torch_zip("archive", b"\x80\x02]q\x00."),
            z,
            "id depends on content"
        );
    }

    #[test]
    fn damaged_zips_are_refused() {
        let mut z = torch_zip("archive", b"\x80\x02}q\x00.");
        assert!(read_data_pkl(&z[..z.len() - 5]).is_err());
        z[64] ^= 0xff; // first byte of data.pkl: CRC mismatch
        let e = read_data_pkl(&z).unwrap_err().to_string();
        assert!(e.contains("data.pkl"), "{e}");
        let other = stored_zip(&[("a/other".to_string(), b"x".as_slice())]);
        assert!(read_data_pkl(&other)
            .unwrap_err()
            .to_string()
            .contains("no */data.pkl"));
    }
}
