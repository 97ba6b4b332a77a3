//! A safe pickle reader: a stack machine for the plain-data opcodes of protocols 0-5.
//!
//! Nothing is ever imported, resolved or called: every opcode that could do so
//! (`GLOBAL`, `REDUCE`, `PERSID`, ...) stops the read with
//! [`TorchFileError::ForbiddenOpcode`]. Objects are built in an arena so that memo
//! references share mutable containers the way Python does (a list memoized while
//! empty and filled later is seen filled through the memo); the result tree is then
//! materialized under a depth limit (which also rejects self-referencing data) and a
//! size budget proportional to the input (which defeats "billion laughs" memo bombs).
//! Every declared length is checked against the remaining input before allocating,
//! and the stack, arena and memo grow by at most one slot per input byte.

use std::collections::HashMap;

use super::error::TorchFileError;
use super::pickle_text as text;
use super::value::PickleValue;

/// Deepest nesting of containers accepted in the result.
pub(crate) const MAX_DEPTH: usize = 256;

/// Highest pickle protocol understood.
const HIGHEST_PROTOCOL: u8 = 5;

/// Opcodes that can import, call or resolve external objects; always refused.
const FORBIDDEN: &[(u8, &str)] = &[
    (b'c', "GLOBAL"),
    (0x93, "STACK_GLOBAL"),
    (b'R', "REDUCE"),
    (b'b', "BUILD"),
    (b'i', "INST"),
    (b'o', "OBJ"),
    (0x81, "NEWOBJ"),
    (0x92, "NEWOBJ_EX"),
    (b'P', "PERSID"),
    (b'Q', "BINPERSID"),
    (0x82, "EXT1"),
    (0x83, "EXT2"),
    (0x84, "EXT4"),
];

/// Parses one pickle starting at the beginning of `data`, up to and including its
/// `STOP` opcode, and returns the value and the number of bytes consumed (trailing
/// bytes are left alone, as Python's `pickle.load` does).
///
/// Error offsets are byte offsets into `data`.
pub fn parse_pickle(data: &[u8]) -> Result<(PickleValue, usize), TorchFileError> {
    let mut m = Machine {
        data,
        pos: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        memo: HashMap::new(),
    };
    let root = m.run()?;
    let mut budget = 4 * data.len() + 65_536;
    let value = m.materialize(root, 0, &mut budget)?;
    Ok((value, m.pos))
}

#[derive(Clone, Copy)]
enum Slot {
    Mark,
    Node(usize),
}

enum Node {
    Leaf(PickleValue),
    Tuple(Vec<usize>),
    List(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    Set(Vec<usize>),
    FrozenSet(Vec<usize>),
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    stack: Vec<Slot>,
    memo: HashMap<u64, usize>,
}

impl Machine<'_> {
    fn take(&mut self, n: u64, at: usize) -> Result<&[u8], TorchFileError> {
        let remaining = self.data.len() - self.pos;
        if n > remaining as u64 {
            return Err(TorchFileError::malformed(
                at,
                format!("declared length {n} exceeds the {remaining} bytes left"),
            ));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.data[start..self.pos])
    }

    fn uint(&mut self, n: usize, at: usize) -> Result<u64, TorchFileError> {
        let b = self.take(n as u64, at)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// A text argument: the bytes up to (not including) the next `\n`.
    fn line(&mut self, at: usize) -> Result<&[u8], TorchFileError> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(|| TorchFileError::malformed(at, "text argument without newline"))?;
        self.pos += n + 1;
        Ok(&rest[..n])
    }

    fn push(&mut self, node: Node) {
        self.nodes.push(node);
        self.stack.push(Slot::Node(self.nodes.len() - 1));
    }

    fn leaf(&mut self, v: PickleValue) {
        self.push(Node::Leaf(v));
    }

    fn pop(&mut self, at: usize) -> Result<usize, TorchFileError> {
        match self.stack.pop() {
            Some(Slot::Node(id)) => Ok(id),
            Some(Slot::Mark) => Err(TorchFileError::malformed(at, "unexpected MARK on stack")),
            None => Err(TorchFileError::malformed(at, "stack underflow")),
        }
    }

    fn top(&self, at: usize) -> Result<usize, TorchFileError> {
        match self.stack.last() {
            Some(Slot::Node(id)) => Ok(*id),
            _ => Err(TorchFileError::malformed(
                at,
                "stack empty (or MARK on top)",
            )),
        }
    }

    /// Pops everything above the topmost MARK, and the MARK.
    fn pop_mark(&mut self, at: usize) -> Result<Vec<usize>, TorchFileError> {
        let mark = (self.stack.iter().rposition(|s| matches!(s, Slot::Mark)))
            .ok_or_else(|| TorchFileError::malformed(at, "no MARK on stack"))?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items
            .into_iter()
            .map(|s| match s {
                Slot::Node(id) => id,
                Slot::Mark => unreachable!("rposition found the topmost MARK"),
            })
            .collect())
    }

    fn pairs(items: Vec<usize>, at: usize) -> Result<Vec<(usize, usize)>, TorchFileError> {
        if items.len() & 1 != 0 {
            return Err(TorchFileError::malformed(at, "odd number of dict items"));
        }
        Ok(items.chunks(2).map(|c| (c[0], c[1])).collect())
    }

    fn container(&mut self, at: usize, what: &str) -> Result<&mut Node, TorchFileError> {
        let id = self.top(at)?;
        let found = match &self.nodes[id] {
            Node::List(_) if what == "list" => None,
            Node::Dict(_) if what == "dict" => None,
            Node::Set(_) if what == "set" => None,
            Node::Leaf(v) => Some(v.type_name()),
            Node::Tuple(_) => Some("tuple"),
            Node::List(_) => Some("list"),
            Node::Dict(_) => Some("dict"),
            Node::Set(_) => Some("set"),
            Node::FrozenSet(_) => Some("frozenset"),
        };
        match found {
            None => Ok(&mut self.nodes[id]),
            Some(found) => Err(TorchFileError::malformed(
                at,
                format!("expected a {what} to add items to, found a {found}"),
            )),
        }
    }

    fn memo_put(&mut self, key: u64, at: usize) -> Result<(), TorchFileError> {
        let id = self.top(at)?;
        self.memo.insert(key, id);
        Ok(())
    }

    fn memo_get(&mut self, key: u64, at: usize) -> Result<(), TorchFileError> {
        let id = *self
            .memo
            .get(&key)
            .ok_or_else(|| TorchFileError::malformed(at, format!("memo key {key} not found")))?;
        self.stack.push(Slot::Node(id));
        Ok(())
    }

    fn decimal_arg(&mut self, at: usize) -> Result<u64, TorchFileError> {
        let line = self.line(at)?;
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or_else(|| TorchFileError::malformed(at, "invalid memo index text"))
    }

    fn utf8(bytes: &[u8], at: usize) -> Result<String, TorchFileError> {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| TorchFileError::malformed(at, "string is not valid UTF-8"))
    }

    fn forbidden(&mut self, op: u8, name: &'static str, at: usize) -> TorchFileError {
        let detail = match op {
            b'c' | b'i' => {
                let module = self.line(at).map(<[u8]>::to_vec).unwrap_or_default();
                let attr = self.line(at).map(<[u8]>::to_vec).unwrap_or_default();
                quote(&format!(
                    "{} {}",
                    String::from_utf8_lossy(&module),
                    String::from_utf8_lossy(&attr)
                ))
            }
            0x93 => match self.stack.as_slice() {
                [.., Slot::Node(m), Slot::Node(n)] => match (&self.nodes[*m], &self.nodes[*n]) {
                    (Node::Leaf(PickleValue::Str(m)), Node::Leaf(PickleValue::Str(n))) => {
                        quote(&format!("{m} {n}"))
                    }
                    _ => String::new(),
                },
                _ => String::new(),
            },
            _ => String::new(),
        };
        TorchFileError::ForbiddenOpcode {
            path: None,
            opcode: name,
            detail,
            offset: at,
        }
    }

    fn materialize(
        &self,
        id: usize,
        depth: usize,
        budget: &mut usize,
    ) -> Result<PickleValue, TorchFileError> {
        let end = self.pos;
        if depth > MAX_DEPTH {
            return Err(TorchFileError::malformed(
                end,
                format!("nesting deeper than {MAX_DEPTH} levels (or a self-referencing object)"),
            ));
        }
        let node = &self.nodes[id];
        let cost = 1 + match node {
            Node::Leaf(PickleValue::Str(s)) => s.len() / 32,
            Node::Leaf(PickleValue::Bytes(b) | PickleValue::ByteArray(b)) => b.len() / 32,
            _ => 0,
        };
        *budget = budget.checked_sub(cost).ok_or_else(|| {
            TorchFileError::malformed(end, "shared objects expand beyond the size limit")
        })?;
        let seq = |ids: &[usize], budget: &mut usize| {
            ids.iter()
                .map(|&c| self.materialize(c, depth + 1, budget))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match node {
            Node::Leaf(v) => v.clone(),
            Node::Tuple(ids) => PickleValue::Tuple(seq(ids, budget)?),
            Node::List(ids) => PickleValue::List(seq(ids, budget)?),
            Node::Set(ids) => PickleValue::Set(seq(ids, budget)?),
            Node::FrozenSet(ids) => PickleValue::FrozenSet(seq(ids, budget)?),
            Node::Dict(pairs) => {
                let mut out = Vec::with_capacity(pairs.len());
                for &(k, v) in pairs {
                    let k = self.materialize(k, depth + 1, budget)?;
                    out.push((k, self.materialize(v, depth + 1, budget)?));
                }
                PickleValue::Dict(out)
            }
        })
    }
}

/// ` ('text')`, with control characters escaped and the text cut to 80 chars.
fn quote(s: &str) -> String {
    let shown: String = s.escape_debug().take(80).collect();
    format!(" ('{shown}')")
}

#[path = "pickle_ops.rs"]
mod ops;

#[cfg(test)]
#[path = "pickle_tests.rs"]
mod tests;
