//! The opcode dispatch loop of the safe pickle machine (split from `pickle.rs`).

use super::{text, Machine, Node, PickleValue, Slot, TorchFileError, FORBIDDEN, HIGHEST_PROTOCOL};

impl Machine<'_> {
    /// Runs opcodes until `STOP`; returns the arena id of the result.
    pub(super) fn run(&mut self) -> Result<usize, TorchFileError> {
        loop {
            let at = self.pos;
            let op = *self
                .data
                .get(at)
                .ok_or_else(|| TorchFileError::malformed(at, "truncated pickle: no STOP opcode"))?;
            self.pos += 1;
            if let Some(&(_, name)) = FORBIDDEN.iter().find(|(b, _)| *b == op) {
                return Err(self.forbidden(op, name, at));
            }
            match op {
                b'.' => return self.pop(at),
                0x80 => {
                    let v = self.uint(1, at)? as u8;
                    if v > HIGHEST_PROTOCOL {
                        return Err(TorchFileError::malformed(
                            at,
                            format!("unsupported pickle protocol {v}"),
                        ));
                    }
                }
                0x95 => {
                    let n = self.uint(8, at)?;
                    let remaining = (self.data.len() - self.pos) as u64;
                    if n > remaining {
                        return Err(TorchFileError::malformed(
                            at,
                            format!("declared FRAME length {n} exceeds the {remaining} bytes left"),
                        ));
                    }
                }
                b'(' => self.stack.push(Slot::Mark),
                b'0' => {
                    self.stack
                        .pop()
                        .ok_or_else(|| TorchFileError::malformed(at, "POP on empty stack"))?;
                }
                b'1' => {
                    self.pop_mark(at)?;
                }
                b'2' => {
                    let id = self.top(at)?;
                    self.stack.push(Slot::Node(id));
                }
                b'N' => self.leaf(PickleValue::None),
                0x88 => self.leaf(PickleValue::Bool(true)),
                0x89 => self.leaf(PickleValue::Bool(false)),
                b'I' => {
                    let line = self.line(at)?;
                    let v = text::int_text(line).map_err(|e| TorchFileError::malformed(at, e))?;
                    self.leaf(v);
                }
                b'L' => {
                    let line = self.line(at)?;
                    let v = text::long_text(line).map_err(|e| TorchFileError::malformed(at, e))?;
                    self.leaf(PickleValue::Int(v));
                }
                b'J' => {
                    let v = self.uint(4, at)? as u32 as i32;
                    self.leaf(PickleValue::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.uint(1, at)?;
                    self.leaf(PickleValue::Int(v as i64));
                }
                b'M' => {
                    let v = self.uint(2, at)?;
                    self.leaf(PickleValue::Int(v as i64));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.uint(1, at)?
                    } else {
                        let n = self.uint(4, at)? as u32 as i32;
                        u64::try_from(n).map_err(|_| {
                            TorchFileError::malformed(at, "LONG4 with negative byte count")
                        })?
                    };
                    let bytes = self.take(n, at)?;
                    let v = text::long_le(bytes).map_err(|e| TorchFileError::malformed(at, e))?;
                    self.leaf(PickleValue::Int(v));
                }
                b'F' => {
                    let line = self.line(at)?;
                    let v = text::float_text(line).map_err(|e| TorchFileError::malformed(at, e))?;
                    self.leaf(PickleValue::Float(v));
                }
                b'G' => {
                    let b = self.take(8, at)?;
                    let v = f64::from_be_bytes(b.try_into().expect("took 8 bytes"));
                    self.leaf(PickleValue::Float(v));
                }
                b'X' | 0x8c | 0x8d => {
                    let width = match op {
                        b'X' => 4,
                        0x8c => 1,
                        _ => 8,
                    };
                    let n = self.uint(width, at)?;
                    let s = Self::utf8(self.take(n, at)?, at)?;
                    self.leaf(PickleValue::Str(s));
                }
                b'V' => {
                    let line = self.line(at)?;
                    let s = text::raw_unicode_escape(line)
                        .map_err(|e| TorchFileError::malformed(at, e))?;
                    self.leaf(PickleValue::Str(s));
                }
                b'S' => {
                    let line = self.line(at)?;
                    let b =
                        text::quoted_string(line).map_err(|e| TorchFileError::malformed(at, e))?;
                    let s = Self::utf8(&b, at)?;
                    self.leaf(PickleValue::Str(s));
                }
                b'T' | b'U' => {
                    let n = if op == b'U' {
                        self.uint(1, at)?
                    } else {
                        let n = self.uint(4, at)? as u32 as i32;
                        u64::try_from(n).map_err(|_| {
                            TorchFileError::malformed(at, "BINSTRING with negative length")
                        })?
                    };
                    let s = Self::utf8(self.take(n, at)?, at)?;
                    self.leaf(PickleValue::Str(s));
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    let width = match op {
                        b'B' => 4,
                        b'C' => 1,
                        _ => 8,
                    };
                    let n = self.uint(width, at)?;
                    let b = self.take(n, at)?.to_vec();
                    self.leaf(if op == 0x96 {
                        PickleValue::ByteArray(b)
                    } else {
                        PickleValue::Bytes(b)
                    });
                }
                0x97 | 0x98 => {
                    return Err(TorchFileError::malformed(
                        at,
                        "out-of-band buffers (NEXT_BUFFER/READONLY_BUFFER) are not supported",
                    ))
                }
                b'}' => self.push(Node::Dict(Vec::new())),
                b']' => self.push(Node::List(Vec::new())),
                b')' => self.push(Node::Tuple(Vec::new())),
                0x8f => self.push(Node::Set(Vec::new())),
                b'd' => {
                    let items = self.pop_mark(at)?;
                    let pairs = Self::pairs(items, at)?;
                    self.push(Node::Dict(pairs));
                }
                b'l' => {
                    let items = self.pop_mark(at)?;
                    self.push(Node::List(items));
                }
                b't' => {
                    let items = self.pop_mark(at)?;
                    self.push(Node::Tuple(items));
                }
                0x91 => {
                    let items = self.pop_mark(at)?;
                    self.push(Node::FrozenSet(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop(at)?);
                    }
                    items.reverse();
                    self.push(Node::Tuple(items));
                }
                b'a' => {
                    let v = self.pop(at)?;
                    if let Node::List(l) = self.container(at, "list")? {
                        l.push(v);
                    }
                }
                b'e' => {
                    let items = self.pop_mark(at)?;
                    if let Node::List(l) = self.container(at, "list")? {
                        l.extend(items);
                    }
                }
                b's' => {
                    let v = self.pop(at)?;
                    let k = self.pop(at)?;
                    if let Node::Dict(d) = self.container(at, "dict")? {
                        d.push((k, v));
                    }
                }
                b'u' => {
                    let items = self.pop_mark(at)?;
                    let pairs = Self::pairs(items, at)?;
                    if let Node::Dict(d) = self.container(at, "dict")? {
                        d.extend(pairs);
                    }
                }
                0x90 => {
                    let items = self.pop_mark(at)?;
                    if let Node::Set(s) = self.container(at, "set")? {
                        s.extend(items);
                    }
                }
                b'p' => {
                    let key = self.decimal_arg(at)?;
                    self.memo_put(key, at)?;
                }
                b'q' => {
                    let key = self.uint(1, at)?;
                    self.memo_put(key, at)?;
                }
                b'r' => {
                    let key = self.uint(4, at)?;
                    self.memo_put(key, at)?;
                }
                0x94 => {
                    let key = self.memo.len() as u64;
                    self.memo_put(key, at)?;
                }
                b'g' => {
                    let key = self.decimal_arg(at)?;
                    self.memo_get(key, at)?;
                }
                b'h' => {
                    let key = self.uint(1, at)?;
                    self.memo_get(key, at)?;
                }
                b'j' => {
                    let key = self.uint(4, at)?;
                    self.memo_get(key, at)?;
                }
                other => {
                    return Err(TorchFileError::malformed(
                        at,
                        format!("unknown pickle opcode 0x{other:02x}"),
                    ))
                }
            }
        }
    }
}
