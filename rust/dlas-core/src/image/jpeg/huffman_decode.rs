//! Huffman decoding of a baseline scan, faster than libjpeg-turbo's, which decodes a
//! symbol at a time through 8-bit lookups, reading bytes one by one to check each for
//! a marker. Here:
//!
//! * the entropy-coded segment is unstuffed once (`0xFF 0x00` -> `0xFF`) into a buffer
//!   with zero padding, then read 8 bytes at a time into a 64-bit bit buffer with the
//!   branch-free refill;
//! * one lookup of 10 bits gives, for most AC codes, the zero run, the coefficient's
//!   value and the total length of code and value bits (the "fast AC" table of
//!   stb_image's decoder), and an end-of-block flag.

use super::markers::NATURAL;

/// Bits looked up at once.
const FAST: u32 = 10;
/// End-of-block flag of a combined AC entry.
const EOB: i32 = 1 << 12;

/// A decoding table built from a DHT segment.
pub(super) struct Huff {
    /// Per `FAST`-bit prefix: `length << 8 | symbol` of the code it starts with, 0 when
    /// that code is longer than `FAST` bits (or there is none).
    look: Box<[u16; 1 << FAST]>,
    /// AC use: per prefix, `value << 16 | run << 8 | total length` when the code and
    /// its value bits fit in `FAST` bits, `EOB | length` for an end of block, else 0.
    ac: Box<[i32; 1 << FAST]>,
    /// Canonical decoding of longer codes (JPEG annex F.2.2.3): the largest code of
    /// each length (-1: none), and what to add to a code of that length to get its
    /// index in `symbols`.
    maxcode: [i32; 17],
    offset: [i32; 17],
    symbols: [u8; 256],
}

impl Huff {
    /// `None` for a table libjpeg-turbo would refuse (or one this decoder does not
    /// expect): more than 256 symbols, codes that overflow their length, DC symbols
    /// above 15.
    pub(super) fn new(counts: &[u8; 16], syms: &[u8], dc: bool) -> Option<Huff> {
        let mut h = Huff {
            look: Box::new([0; 1 << FAST]),
            ac: Box::new([0; 1 << FAST]),
            maxcode: [-1; 17],
            offset: [0; 17],
            symbols: [0; 256],
        };
        if syms.len() > 256 || (dc && syms.iter().any(|&s| s > 15)) {
            return None;
        }
        h.symbols[..syms.len()].copy_from_slice(syms);
        let (mut code, mut k) = (0u32, 0usize);
        for len in 1..=16u32 {
            let n = counts[len as usize - 1] as usize;
            h.offset[len as usize] = k as i32 - code as i32;
            for _ in 0..n {
                if code >= 1 << len {
                    return None;
                }
                let sym = *syms.get(k)?;
                if len <= FAST {
                    let first = (code << (FAST - len)) as usize;
                    for p in first..first + (1 << (FAST - len)) {
                        h.look[p] = ((len as u16) << 8) | sym as u16;
                        h.ac[p] = ac_entry(p as u32, len, sym);
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                h.maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        Some(h)
    }
}

/// The combined AC entry for prefix `p` starting with a code of `len` bits for `sym`.
fn ac_entry(p: u32, len: u32, sym: u8) -> i32 {
    let (run, size) = ((sym >> 4) as u32, (sym & 15) as u32);
    if size == 0 {
        // libjpeg ends the block on any run but 15 with no value (EOB is run 0).
        return if run == 15 {
            (15 << 8) | len as i32
        } else {
            EOB | len as i32
        };
    }
    if len + size > FAST {
        return 0;
    }
    let bits = (p >> (FAST - len - size)) & ((1 << size) - 1);
    (extend(bits, size) << 16) | (run << 8) as i32 | (len + size) as i32
}

/// JPEG's sign extension of `size` value bits (F.2.2.1's EXTEND).
#[inline(always)]
fn extend(bits: u32, size: u32) -> i32 {
    if bits < 1 << (size - 1) {
        bits as i32 - (1 << size) + 1
    } else {
        bits as i32
    }
}

/// Bytes of zeros after the unstuffed data: a block reads at most 64 codes of 31 bits
/// (250 bytes) past the point where the data is seen to run out.
pub(super) const PAD: usize = 512;

/// Reads the unstuffed entropy-coded data most significant bit first.
pub(super) struct Bits<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pub(super) pos: usize,
    /// Bits not yet consumed, in the high end; the bits below `cnt` are zero or the
    /// bits that follow.
    buf: u64,
    cnt: u32,
}

impl<'a> Bits<'a> {
    /// A reader of `data`, which ends with at least 8 bytes of padding.
    pub(super) fn new(data: &'a [u8]) -> Bits<'a> {
        Bits {
            data,
            pos: 0,
            buf: 0,
            cnt: 0,
        }
    }

    /// Tops the buffer up to 56..=63 bits without a branch on the count (the next
    /// load overlaps the bytes already counted, which OR onto themselves).
    #[inline(always)]
    fn refill(&mut self) {
        // Past the end of the padding the same last 8 bytes are read again: the data
        // has run out by then, which the caller sees from `consumed`.
        let at = self.pos.min(self.data.len() - 8);
        let word = u64::from_be_bytes(self.data[at..at + 8].try_into().unwrap());
        self.buf |= word >> self.cnt;
        self.pos += ((63 - self.cnt) >> 3) as usize;
        self.cnt |= 56;
    }

    #[inline(always)]
    fn ensure(&mut self) {
        if self.cnt < 32 {
            self.refill();
        }
    }

    #[inline(always)]
    fn peek(&self, n: u32) -> u32 {
        (self.buf >> (64 - n)) as u32
    }

    #[inline(always)]
    fn drop(&mut self, n: u32) {
        self.buf <<= n;
        self.cnt -= n;
    }

    /// Bits consumed so far.
    pub(super) fn consumed(&self) -> usize {
        self.pos * 8 - self.cnt as usize
    }

    /// The next symbol of `h` (at least 16 bits must be in the buffer); `None` for a
    /// bit pattern that is no code of the table.
    #[inline(always)]
    fn symbol(&mut self, h: &Huff) -> Option<u32> {
        let e = h.look[self.peek(FAST) as usize];
        if e != 0 {
            self.drop((e >> 8) as u32);
            return Some((e & 0xFF) as u32);
        }
        for len in FAST + 1..=16 {
            let code = self.peek(len) as i32;
            if code <= h.maxcode[len as usize] {
                self.drop(len);
                let i = (code + h.offset[len as usize]) as usize;
                return h.symbols.get(i).map(|&s| s as u32);
            }
        }
        None
    }

    /// `size` value bits, sign-extended (at least `size` bits must be in the buffer).
    #[inline(always)]
    fn value(&mut self, size: u32) -> i32 {
        if size == 0 {
            return 0;
        }
        let bits = self.peek(size);
        self.drop(size);
        extend(bits, size)
    }
}

/// One block's quantised coefficients (natural order) into `coef`, which must be all
/// zero; updates the component's DC predictor. Says whether any AC coefficient was
/// stored; `None` for a code missing from a table or a run past the end of the block.
#[inline(always)]
pub(super) fn block(
    bits: &mut Bits<'_>,
    dc: &Huff,
    ac: &Huff,
    pred: &mut i32,
    coef: &mut [i16; 64],
) -> Option<bool> {
    bits.ensure();
    let size = bits.symbol(dc)?;
    let diff = bits.value(size);
    *pred = pred.wrapping_add(diff);
    // libjpeg stores coefficients as 16-bit JCOEFs.
    coef[0] = *pred as i16;
    let mut k = 1usize;
    let mut any = false;
    while k < 64 {
        bits.ensure();
        let e = ac.ac[bits.peek(FAST) as usize];
        if e != 0 {
            bits.drop((e & 31) as u32);
            if e & EOB != 0 {
                break;
            }
            k += ((e >> 8) & 15) as usize;
            let v = e >> 16;
            if k > 63 {
                // A ZRL (no value) past the end ends the block, as in libjpeg;
                // a value past the end is damage libjpeg-turbo should judge.
                if v != 0 {
                    return None;
                }
                break;
            }
            coef[NATURAL[k] as usize & 63] = v as i16;
            any = true;
            k += 1;
        } else {
            let sym = bits.symbol(ac)?;
            let (run, size) = ((sym >> 4) as usize, sym & 15);
            if size == 0 {
                if run != 15 {
                    break;
                }
                k += 16;
                continue;
            }
            k += run;
            if k > 63 {
                return None;
            }
            // At most 15 value bits: within i16.
            coef[NATURAL[k] as usize & 63] = bits.value(size) as i16;
            any = true;
            k += 1;
        }
    }
    Some(any)
}

/// The scan's entropy-coded bytes unstuffed, with [`PAD`] zero bytes after them, and
/// their count; `None` unless the scan ends with EOI directly after it.
pub(super) fn unstuff(data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::with_capacity(data.len() + PAD);
    let mut rest = data;
    loop {
        let i = rest.iter().position(|&b| b == 0xFF)?;
        out.extend_from_slice(&rest[..i]);
        match *rest.get(i + 1)? {
            0x00 => {
                out.push(0xFF);
                rest = &rest[i + 2..];
            }
            0xD9 => break,
            _ => return None,
        }
    }
    let n = out.len();
    out.resize(n + PAD, 0);
    Some((out, n))
}
