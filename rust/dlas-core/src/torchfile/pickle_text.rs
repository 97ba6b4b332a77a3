//! Decoders for the arguments of pickle opcodes: text numbers (protocol 0), the
//! little-endian two's complement longs of `LONG1`/`LONG4`, and the escaped string
//! forms of `STRING` and `UNICODE`. Errors are plain messages; the machine adds the
//! offset.

use super::value::PickleValue;

/// Argument of `INT`: decimal text, or `00`/`01` for False/True (protocol 0 bools).
pub(crate) fn int_text(line: &[u8]) -> Result<PickleValue, String> {
    match line {
        b"00" => Ok(PickleValue::Bool(false)),
        b"01" => Ok(PickleValue::Bool(true)),
        _ => decimal_i64(line).map(PickleValue::Int),
    }
}

/// Argument of `LONG`: decimal text with an optional trailing `L`.
pub(crate) fn long_text(line: &[u8]) -> Result<i64, String> {
    let digits = line.strip_suffix(b"L").unwrap_or(line);
    decimal_i64(digits)
}

fn decimal_i64(text: &[u8]) -> Result<i64, String> {
    let s = std::str::from_utf8(text).map_err(|_| "integer text is not ASCII".to_string())?;
    let t = s.trim();
    let unsigned = t.strip_prefix(['-', '+']).unwrap_or(t);
    if unsigned.is_empty() || !unsigned.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("invalid integer text {:?}", truncate(s)));
    }
    t.parse::<i64>()
        .map_err(|_| format!("integer {} does not fit in 64 bits", truncate(t)))
}

/// Argument of `FLOAT`: Python `repr`/`str` of a float (also `inf`, `nan`).
pub(crate) fn float_text(line: &[u8]) -> Result<f64, String> {
    let s = std::str::from_utf8(line).map_err(|_| "float text is not ASCII".to_string())?;
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("invalid float text {:?}", truncate(s)))
}

/// Little-endian two's complement integer of `LONG1`/`LONG4` (empty means 0).
pub(crate) fn long_le(bytes: &[u8]) -> Result<i64, String> {
    if bytes.len() > 8 {
        return Err(format!(
            "integer of {} bytes does not fit in 64 bits (only i64 is supported)",
            bytes.len()
        ));
    }
    let Some(&last) = bytes.last() else {
        return Ok(0);
    };
    let mut buf = if last & 0x80 != 0 { [0xff; 8] } else { [0; 8] };
    buf[..bytes.len()].copy_from_slice(bytes);
    Ok(i64::from_le_bytes(buf))
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Argument of `STRING`: a Python 2 `repr` of a byte string, quotes included,
/// decoded like `codecs.escape_decode`.
pub(crate) fn quoted_string(line: &[u8]) -> Result<Vec<u8>, String> {
    let inner = match line {
        [q, inner @ .., q2] if q == q2 && (*q == b'\'' || *q == b'"') => inner,
        _ => return Err("STRING argument must be quoted".to_string()),
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let c = inner[i];
        i += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let Some(&e) = inner.get(i) else {
            return Err("trailing backslash in STRING argument".to_string());
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(e),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'x' => {
                let hex = inner.get(i..i + 2).ok_or("truncated \\x escape")?;
                let v = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or("invalid \\x escape")?;
                out.push(v);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match inner.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

/// Argument of `UNICODE`: `raw-unicode-escape` text (latin-1 plus `\uXXXX`,
/// `\UXXXXXXXX`).
pub(crate) fn raw_unicode_escape(line: &[u8]) -> Result<String, String> {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        let width = match (c, line.get(i + 1)) {
            (b'\\', Some(b'u')) => 4,
            (b'\\', Some(b'U')) => 8,
            _ => 0,
        };
        // An odd run of backslashes escapes; `\\u` is a backslash then `u`.
        let escaped =
            width > 0 && line[..i].iter().rev().take_while(|&&b| b == b'\\').count() & 1 == 0;
        if !escaped {
            out.push(char::from(c));
            i += 1;
            continue;
        }
        let hex = line
            .get(i + 2..i + 2 + width)
            .ok_or("truncated \\u escape in UNICODE argument")?;
        let code = std::str::from_utf8(hex)
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or("invalid \\u escape in UNICODE argument")?;
        let ch = char::from_u32(code)
            .ok_or_else(|| format!("code point U+{code:X} cannot be represented"))?;
        out.push(ch);
        i += 2 + width;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_and_bools() {
        assert_eq!(int_text(b"01"), Ok(PickleValue::Bool(true)));
        assert_eq!(int_text(b"00"), Ok(PickleValue::Bool(false)));
        assert_eq!(int_text(b"-17"), Ok(PickleValue::Int(-17)));
        assert_eq!(int_text(b"0"), Ok(PickleValue::Int(0)));
        assert!(int_text(b"12a").is_err());
        assert!(int_text(b"").is_err());
        assert!(int_text(b"99999999999999999999")
            .unwrap_err()
            .contains("64 bits"));
        assert_eq!(long_text(b"1099511627776L"), Ok(1 << 40));
        assert_eq!(long_text(b"-5"), Ok(-5));
    }

    #[test]
    fn little_endian_longs() {
        assert_eq!(long_le(b""), Ok(0));
        assert_eq!(long_le(&[0xff]), Ok(-1));
        assert_eq!(long_le(&[0x00, 0x80]), Ok(32768 - 65536));
        assert_eq!(long_le(&[0x00, 0x80, 0x00]), Ok(32768));
        assert_eq!(long_le(&[0, 0, 0, 0, 0, 1]), Ok(1 << 40));
        assert_eq!(long_le(&i64::MIN.to_le_bytes()), Ok(i64::MIN));
        assert!(long_le(&[0; 9]).unwrap_err().contains("9 bytes"));
    }

    #[test]
    fn floats() {
        assert_eq!(float_text(b"1.5"), Ok(1.5));
        assert_eq!(float_text(b"-1e3"), Ok(-1000.0));
        assert!(float_text(b"inf").unwrap().is_infinite());
        assert!(float_text(b"x").is_err());
    }

    #[test]
    fn string_escapes() {
        assert_eq!(quoted_string(b"'a\\'b'").unwrap(), b"a'b");
        assert_eq!(
            quoted_string(b"\"x\\n\\x41\\101\\\\\"").unwrap(),
            b"x\nAA\\"
        );
        assert_eq!(quoted_string(b"'\\q'").unwrap(), b"\\q");
        assert!(quoted_string(b"'abc").is_err());
        assert!(quoted_string(b"'\\x4'").is_err());
    }

    #[test]
    fn unicode_escapes() {
        assert_eq!(raw_unicode_escape(b"caf\xe9").unwrap(), "caf\u{e9}");
        assert_eq!(raw_unicode_escape(b"\\u20ac!").unwrap(), "\u{20ac}!");
        assert_eq!(raw_unicode_escape(b"\\U0001f600").unwrap(), "\u{1f600}");
        assert_eq!(raw_unicode_escape(b"\\\\u").unwrap(), "\\\\u");
        assert!(raw_unicode_escape(b"\\u12").is_err());
        assert!(raw_unicode_escape(b"\\ud800").is_err());
    }
}
