//! The plain-data values a safe pickle can hold.

use std::fmt;

/// A Python value decoded from a pickle by [`parse_pickle`](super::parse_pickle).
///
/// Only plain data exists here; there is no way to represent a class instance or a
/// callable. Objects shared inside the pickle (memo references) are copied.
#[derive(Debug, Clone, PartialEq)]
pub enum PickleValue {
    /// `None`.
    None,
    /// `True` / `False` (kept distinct from ints).
    Bool(bool),
    /// An `int` that fits in an `i64` (larger ints are refused).
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str` (also what Python 2 `str` pickles decode to, as `torch.load` does).
    Str(String),
    /// A `bytes` object.
    Bytes(Vec<u8>),
    /// A `bytearray` object (protocol 5 `BYTEARRAY8`).
    ByteArray(Vec<u8>),
    /// A `tuple`.
    Tuple(Vec<PickleValue>),
    /// A `list`.
    List(Vec<PickleValue>),
    /// A `dict`, as `(key, value)` pairs in pickle order. A key repeated in the
    /// pickle appears twice; Python would keep the last value.
    Dict(Vec<(PickleValue, PickleValue)>),
    /// A `set`, items in pickle order (not deduplicated).
    Set(Vec<PickleValue>),
    /// A `frozenset`, items in pickle order (not deduplicated).
    FrozenSet(Vec<PickleValue>),
}

impl PickleValue {
    /// The Python type name of the value (`"int"`, `"tuple"`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            PickleValue::None => "NoneType",
            PickleValue::Bool(_) => "bool",
            PickleValue::Int(_) => "int",
            PickleValue::Float(_) => "float",
            PickleValue::Str(_) => "str",
            PickleValue::Bytes(_) => "bytes",
            PickleValue::ByteArray(_) => "bytearray",
            PickleValue::Tuple(_) => "tuple",
            PickleValue::List(_) => "list",
            PickleValue::Dict(_) => "dict",
            PickleValue::Set(_) => "set",
            PickleValue::FrozenSet(_) => "frozenset",
        }
    }

    /// `"<type> <python repr>"`, the repr cut to about `max` characters; for messages.
    pub fn describe(&self, max: usize) -> String {
        let repr = self.to_string();
        let shown = if repr.chars().count() > max {
            let cut: String = repr.chars().take(max).collect();
            format!("{cut}...")
        } else {
            repr
        };
        format!("{} {shown}", self.type_name())
    }
}

fn write_seq(f: &mut fmt::Formatter<'_>, items: &[PickleValue]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

fn write_bytes(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    f.write_str("b'")?;
    for &c in b {
        match c {
            b'\'' | b'\\' => write!(f, "\\{}", c as char)?,
            0x20..=0x7e => write!(f, "{}", c as char)?,
            _ => write!(f, "\\x{c:02x}")?,
        }
    }
    f.write_str("'")
}

/// Python-like `repr` (close enough for error messages).
impl fmt::Display for PickleValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PickleValue::None => f.write_str("None"),
            PickleValue::Bool(true) => f.write_str("True"),
            PickleValue::Bool(false) => f.write_str("False"),
            PickleValue::Int(i) => write!(f, "{i}"),
            PickleValue::Float(x) => write!(f, "{x:?}"),
            PickleValue::Str(s) => write!(f, "'{}'", s.escape_debug()),
            PickleValue::Bytes(b) => write_bytes(f, b),
            PickleValue::ByteArray(b) => {
                f.write_str("bytearray(")?;
                write_bytes(f, b)?;
                f.write_str(")")
            }
            PickleValue::Tuple(items) => {
                f.write_str("(")?;
                write_seq(f, items)?;
                f.write_str(if items.len() == 1 { ",)" } else { ")" })
            }
            PickleValue::List(items) => {
                f.write_str("[")?;
                write_seq(f, items)?;
                f.write_str("]")
            }
            PickleValue::Dict(pairs) => {
                f.write_str("{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            PickleValue::Set(items) if items.is_empty() => f.write_str("set()"),
            PickleValue::Set(items) => {
                f.write_str("{")?;
                write_seq(f, items)?;
                f.write_str("}")
            }
            PickleValue::FrozenSet(items) => {
                f.write_str("frozenset({")?;
                write_seq(f, items)?;
                f.write_str("})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PickleValue as V;

    #[test]
    fn repr_is_python_like() {
        let v = V::Dict(vec![(
            V::Int(1),
            V::Tuple(vec![V::Tuple(vec![V::Int(-2), V::Bool(true)]), V::None]),
        )]);
        assert_eq!(v.to_string(), "{1: ((-2, True), None)}");
        assert_eq!(
            V::Tuple(vec![V::Str("a'b".into())]).to_string(),
            "('a\\'b',)"
        );
        assert_eq!(V::Bytes(b"a\x00'".to_vec()).to_string(), "b'a\\x00\\''");
        assert_eq!(V::Float(1.0).to_string(), "1.0");
        assert_eq!(V::Set(vec![]).to_string(), "set()");
    }

    #[test]
    fn describe_truncates() {
        let v = V::List((0..100).map(V::Int).collect());
        let d = v.describe(10);
        assert_eq!(d, "list [0, 1, 2, ...");
    }
}
