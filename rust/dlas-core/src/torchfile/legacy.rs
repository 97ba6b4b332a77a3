//! The legacy `torch.save` format (torch < 1.6, or `_use_new_zipfile_serialization=
//! False`): five pickles back to back — the magic number
//! `0x1950a86a20f9469cfc6c`, the protocol version `1001`, a `sys_info` dict, the
//! object, and the list of storage keys (followed by raw storage data, none for plain
//! data).

use super::error::TorchFileError;
use super::pickle::parse_pickle;
use super::value::PickleValue;

/// Torch's magic number, little-endian as `LONG1` encodes it.
const MAGIC_LE: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// The same number as protocol 0/1 `LONG` text.
const MAGIC_TEXT: &[u8] = b"L119547037146038801333356L\n";
const PROTOCOL_VERSION: i64 = 1001;

/// Length of the pickle holding the magic number at the start of `b`, if it is one.
/// (It needs 80 bits, beyond what the generic reader accepts, so it is matched here.)
fn magic_len(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    if b.first() == Some(&0x80) {
        i += 2; // PROTO n
    }
    if b.get(i) == Some(&0x95) {
        i += 9; // FRAME len
    }
    let rest = b.get(i..)?;
    let body = if rest.starts_with(&[0x8a, 10]) && rest.get(2..12) == Some(&MAGIC_LE[..]) {
        12
    } else if rest.starts_with(MAGIC_TEXT) {
        MAGIC_TEXT.len()
    } else {
        return None;
    };
    (rest.get(body) == Some(&b'.')).then_some(i + body + 1)
}

/// Parses the pickle at `bytes[pos..]`, with error offsets relative to the file.
fn next(bytes: &[u8], pos: &mut usize, what: &str) -> Result<PickleValue, TorchFileError> {
    if *pos >= bytes.len() {
        return Err(TorchFileError::not_torch(format!(
            "legacy torch.save stream ends before its {what}"
        )));
    }
    let (value, used) = parse_pickle(&bytes[*pos..]).map_err(|e| match e {
        TorchFileError::MalformedPickle { path, offset, what } => TorchFileError::MalformedPickle {
            path,
            offset: offset + *pos,
            what,
        },
        TorchFileError::ForbiddenOpcode {
            path,
            opcode,
            detail,
            offset,
        } => TorchFileError::ForbiddenOpcode {
            path,
            opcode,
            detail,
            offset: offset + *pos,
        },
        other => other,
    })?;
    *pos += used;
    Ok(value)
}

/// Decodes the object of a legacy `torch.save` stream.
pub(crate) fn read_legacy(bytes: &[u8]) -> Result<PickleValue, TorchFileError> {
    if bytes.is_empty() {
        return Err(TorchFileError::not_torch("the file is empty"));
    }
    let mut pos = magic_len(bytes).ok_or_else(|| {
        TorchFileError::not_torch(
            "neither a zip archive nor a legacy torch.save stream (no torch magic number)",
        )
    })?;
    let version = next(bytes, &mut pos, "protocol version")?;
    if version != PickleValue::Int(PROTOCOL_VERSION) {
        return Err(TorchFileError::not_torch(format!(
            "unsupported legacy protocol version {version} (expected {PROTOCOL_VERSION})"
        )));
    }
    let sys_info = next(bytes, &mut pos, "sys_info")?;
    if !matches!(sys_info, PickleValue::Dict(_)) {
        return Err(TorchFileError::not_torch(format!(
            "legacy sys_info should be a dict, found {}",
            sys_info.describe(40)
        )));
    }
    let object = next(bytes, &mut pos, "object")?;
    let keys = next(bytes, &mut pos, "storage key list")?;
    if !matches!(keys, PickleValue::List(_)) {
        return Err(TorchFileError::not_torch(format!(
            "legacy storage keys should be a list, found {}",
            keys.describe(40)
        )));
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header as written by torch 2.x `torch.save(..., _use_new_zipfile_serialization=False)`.
    const HEADER: &[u8] = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.\x80\x02}q\x00(X\x10\x00\x00\x00protocol_versionq\x01M\xe9\x03X\x0d\x00\x00\x00little_endianq\x02\x88X\x0a\x00\x00\x00type_sizesq\x03}q\x04(X\x05\x00\x00\x00shortq\x05K\x02X\x03\x00\x00\x00intq\x06K\x04X\x04\x00\x00\x00longq\x07K\x04uu.";

    fn header() -> Vec<u8> {
        HEADER.to_vec()
    }

    #[test]
    fn reads_object_between_header_and_keys() {
        let mut b = header();
        b.extend_from_slice(b"\x80\x02}q\x00K\x01K K \x86q\x01K@\x86q\x02s.\x80\x02]q\x00.");
        let v = read_legacy(&b).unwrap();
        assert_eq!(v.to_string(), "{1: ((32, 32), 64)}");
    }

    #[test]
    fn protocol0_magic_is_accepted() {
        assert_eq!(magic_len(b"L119547037146038801333356L\n.rest"), Some(28));
        assert_eq!(magic_len(b"\x80\x04\x95\x0c\x00\x00\x00\x00\x00\x00\x00\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."), Some(24));
        assert_eq!(
            magic_len(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x18."),
            None
        );
    }

    #[test]
    fn errors_are_located_and_specific() {
        let e = read_legacy(b"hello").unwrap_err().to_string();
        assert!(e.contains("no torch magic number"), "{e}");
        assert!(read_legacy(b"").unwrap_err().to_string().contains("empty"));
        let h = header();
        let e = read_legacy(&h).unwrap_err().to_string();
        assert!(e.contains("ends before its object"), "{e}");
        let mut b = h.clone();
        b.extend_from_slice(b"\x80\x02cos\nsystem\n.");
        let e = read_legacy(&b).unwrap_err();
        match e {
            TorchFileError::ForbiddenOpcode { offset, .. } => assert_eq!(offset, h.len() + 2),
            other => panic!("{other}"),
        }
        let mut b = h.clone();
        b.extend_from_slice(b"\x80\x02}.\x80\x02}.");
        assert!(read_legacy(&b)
            .unwrap_err()
            .to_string()
            .contains("should be a list"));
    }
}
