//! Unit tests of the safe pickle machine. Byte strings marked "CPython" were produced
//! by `pickle.dumps(obj, protocol)` in CPython 3.

use super::*;
use PickleValue as V;

fn parse(b: &[u8]) -> Result<PickleValue, TorchFileError> {
    parse_pickle(b).map(|(v, _)| v)
}

fn err(b: &[u8]) -> String {
    parse(b).unwrap_err().to_string()
}

fn s(x: &str) -> V {
    V::Str(x.into())
}

/// `{1: ((32, -32), 64), 'k': [None, True, False, -1.5, 'é\n\\', 2**40, -2**40, 300,
/// 70000, -1, 2**63-1, -2**63], 'e': (), 't3': (1, 2, 3), 'a': s, 'b': s, 'd': {}}`
/// with `s = [7]` shared.
fn expected() -> V {
    let ints = [1 << 40, -(1 << 40), 300, 70000, -1, i64::MAX, i64::MIN].map(V::Int);
    let mut k = vec![
        V::None,
        V::Bool(true),
        V::Bool(false),
        V::Float(-1.5),
        s("é\n\\"),
    ];
    k.extend(ints);
    let shared = V::List(vec![V::Int(7)]);
    V::Dict(vec![
        (
            V::Int(1),
            V::Tuple(vec![V::Tuple(vec![V::Int(32), V::Int(-32)]), V::Int(64)]),
        ),
        (s("k"), V::List(k)),
        (s("e"), V::Tuple(vec![])),
        (s("t3"), V::Tuple(vec![V::Int(1), V::Int(2), V::Int(3)])),
        (s("a"), shared.clone()),
        (s("b"), shared),
        (s("d"), V::Dict(vec![])),
    ])
}

const CPYTHON: [&[u8]; 5] = [
    b"(dp0\x0aI1\x0a((I32\x0aI-32\x0atp1\x0aI64\x0atp2\x0asVk\x0ap3\x0a(lp4\x0aNaI01\x0aaI00\x0aaF-1.5\x0aaV\xe9\x5cu000a\x5cu005c\x0ap5\x0aaL1099511627776L\x0aaL-1099511627776L\x0aaI300\x0aaI70000\x0aaI-1\x0aaL9223372036854775807L\x0aaL-9223372036854775808L\x0aasVe\x0ap6\x0a(tsVt3\x0ap7\x0a(I1\x0aI2\x0aI3\x0atp8\x0asVa\x0ap9\x0a(lp10\x0aI7\x0aasVb\x0ap11\x0ag10\x0asVd\x0ap12\x0a(dp13\x0as.",
    b"}q\x00(K\x01((K J\xe0\xff\xff\xfftq\x01K@tq\x02X\x01\x00\x00\x00kq\x03]q\x04(NI01\x0aI00\x0aG\xbf\xf8\x00\x00\x00\x00\x00\x00X\x04\x00\x00\x00\xc3\xa9\x0a\x5cq\x05L1099511627776L\x0aL-1099511627776L\x0aM,\x01Jp\x11\x01\x00J\xff\xff\xff\xffL9223372036854775807L\x0aL-9223372036854775808L\x0aeX\x01\x00\x00\x00eq\x06)X\x02\x00\x00\x00t3q\x07(K\x01K\x02K\x03tq\x08X\x01\x00\x00\x00aq\x09]q\x0aK\x07aX\x01\x00\x00\x00bq\x0bh\x0aX\x01\x00\x00\x00dq\x0c}q\x0du.",
    b"\x80\x02}q\x00(K\x01K J\xe0\xff\xff\xff\x86q\x01K@\x86q\x02X\x01\x00\x00\x00kq\x03]q\x04(N\x88\x89G\xbf\xf8\x00\x00\x00\x00\x00\x00X\x04\x00\x00\x00\xc3\xa9\x0a\x5cq\x05\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x06\x00\x00\x00\x00\x00\xffM,\x01Jp\x11\x01\x00J\xff\xff\xff\xff\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80eX\x01\x00\x00\x00eq\x06)X\x02\x00\x00\x00t3q\x07K\x01K\x02K\x03\x87q\x08X\x01\x00\x00\x00aq\x09]q\x0aK\x07aX\x01\x00\x00\x00bq\x0bh\x0aX\x01\x00\x00\x00dq\x0c}q\x0du.",
    b"\x80\x03}q\x00(K\x01K J\xe0\xff\xff\xff\x86q\x01K@\x86q\x02X\x01\x00\x00\x00kq\x03]q\x04(N\x88\x89G\xbf\xf8\x00\x00\x00\x00\x00\x00X\x04\x00\x00\x00\xc3\xa9\x0a\x5cq\x05\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x06\x00\x00\x00\x00\x00\xffM,\x01Jp\x11\x01\x00J\xff\xff\xff\xff\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80eX\x01\x00\x00\x00eq\x06)X\x02\x00\x00\x00t3q\x07K\x01K\x02K\x03\x87q\x08X\x01\x00\x00\x00aq\x09]q\x0aK\x07aX\x01\x00\x00\x00bq\x0bh\x0aX\x01\x00\x00\x00dq\x0c}q\x0du.",
    b"\x80\x05\x95\x87\x00\x00\x00\x00\x00\x00\x00}\x94(K\x01K J\xe0\xff\xff\xff\x86\x94K@\x86\x94\x8c\x01k\x94]\x94(N\x88\x89G\xbf\xf8\x00\x00\x00\x00\x00\x00\x8c\x04\xc3\xa9\x0a\x5c\x94\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x06\x00\x00\x00\x00\x00\xffM,\x01Jp\x11\x01\x00J\xff\xff\xff\xff\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80e\x8c\x01e\x94)\x8c\x02t3\x94K\x01K\x02K\x03\x87\x94\x8c\x01a\x94]\x94K\x07a\x8c\x01b\x94h\x0a\x8c\x01d\x94}\x94u.",
];

#[test]
fn cpython_protocols_0_to_5() {
    for (i, b) in CPYTHON.iter().enumerate() {
        let (v, used) = parse_pickle(b).unwrap_or_else(|e| panic!("vector {i}: {e}"));
        assert_eq!(v, expected(), "vector {i}");
        assert_eq!(used, b.len(), "vector {i}");
    }
}

#[test]
fn cpython_sets_bytes_bytearray() {
    // CPython protocol 5: {'s': {5}, 'f': frozenset([3]), 'b': b'\0b', 'ba': bytearray(b'ab'), 'big': b'x' * 300}
    let mut b = b"\x80\x05\x95j\x01\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01s\x94\x8f\x94(K\x05\x90\x8c\x01f\x94(K\x03\x91\x94\x8c\x01b\x94C\x02\x00b\x94\x8c\x02ba\x94\x96\x02\x00\x00\x00\x00\x00\x00\x00ab\x94\x8c\x03big\x94B,\x01\x00\x00".to_vec();
    b.extend([b'x'; 300]);
    b.extend(b"\x94u.");
    let want = V::Dict(vec![
        (s("s"), V::Set(vec![V::Int(5)])),
        (s("f"), V::FrozenSet(vec![V::Int(3)])),
        (s("b"), V::Bytes(b"\0b".to_vec())),
        (s("ba"), V::ByteArray(b"ab".to_vec())),
        (s("big"), V::Bytes(vec![b'x'; 300])),
    ]);
    assert_eq!(parse(&b).unwrap(), want);
}

#[test]
fn python2_strings_and_text_opcodes() {
    let b = b"(S'a\\'b'\nU\x02cdT\x01\x00\x00\x00eI01\nI00\nL5L\nF2.5\nB\x01\x00\x00\x00zt.";
    let want = V::Tuple(vec![
        s("a'b"),
        s("cd"),
        s("e"),
        V::Bool(true),
        V::Bool(false),
        V::Int(5),
        V::Float(2.5),
        V::Bytes(b"z".to_vec()),
    ]);
    assert_eq!(parse(b).unwrap().to_string(), want.to_string());
    assert_eq!(parse(b).unwrap(), want);
}

#[test]
fn stack_opcodes() {
    // DUP, POP, POP_MARK, MEMOIZE + GET, DICT, LIST, EMPTY_TUPLE, TUPLE1, NONE.
    let b = b"\x80\x04K\x01\x942\x86(K\x09K\x081K\x070(K\x02K\x03dh\x00\x87]N\x85a.";
    let v = parse(b).unwrap();
    assert_eq!(v.to_string(), "[(None,)]");
    let b = b"K\x01\x94(K\x02K\x03dh\x00\x87.";
    assert_eq!(parse(b).unwrap().to_string(), "(1, {2: 3}, 1)");
    // Trailing bytes are not consumed.
    assert_eq!(parse_pickle(b"N.garbage").unwrap().1, 2);
}

#[test]
fn shared_list_filled_after_memoize() {
    // l = []; memoized while empty, then appended to; a later GET sees [1].
    let b = b"(]q\x00K\x01ah\x00t.";
    assert_eq!(parse(b).unwrap().to_string(), "([1], [1])");
}

#[test]
fn forbidden_opcodes_are_refused_by_name() {
    let e = err(b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00id\x85R.");
    assert_eq!(
        e,
        "torch data contains pickle opcode GLOBAL ('posix system') at byte 2; refusing to load code"
    );
    let e = err(b"\x80\x04\x8c\x02os\x8c\x06system\x93.");
    assert!(e.contains("STACK_GLOBAL ('os system') at byte 14"), "{e}");
    let cases: [(&[u8], &str); 11] = [
        (b"N)R.", "REDUCE"),
        (b"}}b.", "BUILD"),
        (b"(ios\nsystem\n.", "INST ('os system')"),
        (b"(No.", "OBJ"),
        (b"N)\x81.", "NEWOBJ"),
        (b"N)}\x92.", "NEWOBJ_EX"),
        (b"P0\n.", "PERSID"),
        (b"NQ.", "BINPERSID"),
        (b"\x82\x01.", "EXT1"),
        (b"\x83\x01\x00.", "EXT2"),
        (b"\x84\x01\x00\x00\x00.", "EXT4"),
    ];
    for (b, name) in cases {
        let e = parse(b).unwrap_err();
        assert!(
            matches!(e, TorchFileError::ForbiddenOpcode { .. }),
            "{name}: {e}"
        );
        assert!(
            e.to_string().contains(&format!("opcode {name}")),
            "{name}: {e}"
        );
    }
}

#[test]
fn truncated_input_is_refused_at_every_length() {
    for b in CPYTHON {
        for n in 0..b.len() {
            assert!(parse(&b[..n]).is_err(), "prefix of {n} bytes accepted");
        }
    }
    assert!(err(b"").contains("no STOP"));
    assert!(err(b"I12").contains("without newline"));
}

#[test]
fn declared_lengths_beyond_input_are_refused() {
    let cases: [&[u8]; 8] = [
        b"X\xff\xff\xff\xffab.",
        b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff.",
        b"\x8e\x00\x00\x00\x00\x00\x00\x00\x01.",
        b"\x96\x10\x00\x00\x00\x00\x00\x00\x00.",
        b"C\x05ab.",
        b"\x8b\x00\x00\x00\x10.",
        b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N.",
        b"T\xff\xff\xff\x7f.",
    ];
    for b in cases {
        let e = err(b);
        assert!(e.contains("exceeds the"), "{b:?}: {e}");
    }
    assert!(err(b"T\xff\xff\xff\xff.").contains("negative"));
    assert!(err(b"\x8b\xff\xff\xff\xff.").contains("negative"));
}

#[test]
fn big_ints_and_bad_values_are_refused() {
    let e = err(b"\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.");
    assert!(e.contains("9 bytes does not fit in 64 bits"), "{e}");
    let e = err(b"\x8b\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01.");
    assert!(e.contains("9 bytes"), "{e}");
    assert!(err(b"L99999999999999999999L\n.").contains("64 bits"));
    assert!(err(b"X\x01\x00\x00\x00\xff.").contains("UTF-8"));
    assert!(err(b"\x80\x06N.").contains("unsupported pickle protocol 6"));
}

#[test]
fn unknown_opcode_names_byte_and_offset() {
    let e = err(b"\x80\x02N\xff.");
    assert_eq!(
        e,
        "torch data: malformed pickle at byte 3: unknown pickle opcode 0xff"
    );
    assert!(err(b"\x97.").contains("out-of-band"));
}

#[test]
fn inconsistent_stacks_are_refused() {
    assert!(err(b".").contains("stack underflow"));
    assert!(err(b"(.").contains("MARK"));
    assert!(err(b"K\x01K\x02a.").contains("expected a list to add items to, found a int"));
    assert!(err(b")K\x01K\x02s.").contains("found a tuple"));
    assert!(err(b"}(K\x01u.").contains("odd number"));
    assert!(err(b"K\x01t.").contains("no MARK"));
    assert!(err(b"h\x05.").contains("memo key 5 not found"));
    assert!(err(b"q\x00.").contains("stack empty"));
    assert!(err(b"0.").contains("POP on empty stack"));
}

#[test]
fn recursion_and_memo_bombs_are_bounded() {
    // l = [l]: a self-referencing list.
    let e = err(b"]q\x00h\x00a.");
    assert!(e.contains("self-referencing"), "{e}");
    // Deep nesting.
    let mut b = vec![b']'; 300];
    b.extend(vec![b'a'; 299]);
    b.push(b'.');
    assert!(err(&b).contains("deeper than 256"));
    // Billion laughs: each level is a list holding the previous one ten times.
    let mut b = b"K\x00".to_vec();
    for i in 0..30u8 {
        b.extend([b'q', i, b'(']);
        b.extend([b'h', i].repeat(10));
        b.push(b'l');
    }
    b.push(b'.');
    assert!(err(&b).contains("beyond the size limit"));
}

#[test]
fn random_bytes_never_panic() {
    let mut x: u64 = 0x1234_5678;
    let alphabet: &[u8] = b"().012NIJKLMFGXVSTUBCabdeghjlpqrstu}])\x80\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x94\x95\x96\x00\x01\x02\n\xff";
    for _ in 0..20_000 {
        let len = (x % 24) as usize;
        let mut b = Vec::with_capacity(len);
        for _ in 0..len {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            b.push(alphabet[(x >> 33) as usize % alphabet.len()]);
        }
        let _ = parse_pickle(&b);
    }
}
