//! Baseline JPEG entropy coding of tiles from DCT blocks shared by a whole image.
//!
//! Extraction's tiles overlap (step = crop / 2), so every pixel of a level image lies in
//! about four tiles, and libjpeg-turbo would transform, quantise and Huffman-code each
//! 8x8 block once per tile. Here each block of the image's YCbCr 4:2:0 planes is
//! transformed and quantised once, and its 63 AC coefficients are Huffman-coded once
//! into a bit string. A tile then only codes its blocks' DC differences (they depend
//! on the tile's scan order) and copies their AC bit strings.
//!
//! The result is byte for byte what libjpeg-turbo writes for the same tile (tested at
//! many qualities and sizes): the transform is the accurate integer DCT with libjpeg's
//! 13-bit fixed-point constants and its two descaling points, quantisation rounds half
//! away from zero, and the headers, quantisation tables and Huffman tables are read
//! from libjpeg-turbo's own output at the same quality. No crate or libjpeg-turbo API
//! encodes from coefficients, hence this module.

use std::sync::Arc;

use rayon::prelude::*;

use super::dct::fdct_quant;
#[cfg(target_arch = "x86_64")]
use super::dct_avx2 as x86;
use super::encoder_tables::{Comp, Huff, Tables};
use super::markers::NATURAL;

/// One plane's row of blocks: DC values and AC bit strings.
#[derive(Default)]
struct BlockRow {
    dc: Vec<i16>,
    /// Per block: first byte in `bytes` and number of bits.
    start: Vec<u32>,
    bits: Vec<u16>,
    /// Each block's AC codes, big-endian bits starting on a byte; 4 spare bytes at the
    /// end so that a tile can always read whole 32-bit words.
    bytes: Vec<u8>,
}

/// Every whole 8x8 block of the three planes, transformed, quantised and AC-coded.
pub(crate) struct Blocks {
    tables: Arc<Tables>,
    /// Y, Cb, Cr.
    planes: [Vec<BlockRow>; 3],
}

/// A plane of 8-bit samples.
pub(crate) struct Plane<'a> {
    pub data: &'a [u8],
    pub stride: usize,
}

impl Blocks {
    /// Codes the blocks of 16x16-aligned tiles of a `width x height` image's 4:2:0
    /// planes (luma, then the two half-size chroma planes).
    pub(crate) fn new(
        tables: Arc<Tables>,
        planes: [Plane<'_>; 3],
        width: usize,
        height: usize,
    ) -> Blocks {
        let (mx, my) = (width / 16, height / 16);
        let coded: Vec<Vec<BlockRow>> = planes
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (bx, by) = if i == 0 { (2 * mx, 2 * my) } else { (mx, my) };
                assert!(by == 0 || p.data.len() >= (8 * by - 1) * p.stride + 8 * bx);
                let comp = &tables.comps[i];
                (0..by)
                    .into_par_iter()
                    .map(|r| code_row(p, r, bx, comp))
                    .collect()
            })
            .collect();
        let planes: [Vec<BlockRow>; 3] = coded.try_into().ok().expect("three planes");
        Blocks { tables, planes }
    }

    /// Appends the JPEG of the tile at luma `(row, col)`, `height x width`, all
    /// multiples of 16 and inside the image the blocks were made for.
    pub(crate) fn encode(
        &self,
        row: usize,
        col: usize,
        height: usize,
        width: usize,
        out: &mut Vec<u8>,
    ) {
        debug_assert!([row, col, height, width].iter().all(|v| v % 16 == 0));
        assert!(height > 0 && width > 0 && height <= u16::MAX as usize);
        assert!(width <= u16::MAX as usize);
        let t = &*self.tables;
        out.reserve(t.header.len() + height * width / 2);
        let at = out.len() + t.sof_dims;
        out.extend_from_slice(&t.header);
        out[at..at + 2].copy_from_slice(&(height as u16).to_be_bytes());
        out[at + 2..at + 4].copy_from_slice(&(width as u16).to_be_bytes());
        let mut w = BitWriter::new(out);
        let mut last = [0i32; 3];
        let (by0, bx0) = (row / 8, col / 8);
        for my in 0..height / 16 {
            let luma = [
                &self.planes[0][by0 + 2 * my],
                &self.planes[0][by0 + 2 * my + 1],
            ];
            let cb = &self.planes[1][by0 / 2 + my];
            let cr = &self.planes[2][by0 / 2 + my];
            for mx in 0..width / 16 {
                let x = bx0 + 2 * mx;
                for r in luma {
                    w.block(r, x, &t.comps[0].dc, &mut last[0]);
                    w.block(r, x + 1, &t.comps[0].dc, &mut last[0]);
                }
                w.block(cb, bx0 / 2 + mx, &t.comps[1].dc, &mut last[1]);
                w.block(cr, bx0 / 2 + mx, &t.comps[2].dc, &mut last[2]);
            }
        }
        w.finish();
        out.extend_from_slice(&[0xFF, 0xD9]);
    }
}

/// Number of bits of `|v|` (JPEG's magnitude category) and `v`'s low bits as coded
/// (one's complement for negative values), without branches.
#[inline(always)]
fn category(v: i32) -> (u32, u32) {
    let n = 32 - v.unsigned_abs().leading_zeros();
    let bits = (v + (v >> 31)) as u32 & ((1u32 << n) - 1);
    (bits, n)
}

/// Transforms, quantises and AC-codes the `blocks` blocks of block row `r`.
fn code_row(p: &Plane<'_>, r: usize, blocks: usize, comp: &Comp) -> BlockRow {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::features().avx2_bmi {
        #[target_feature(enable = "avx2,bmi1,bmi2,lzcnt")]
        fn fast(p: &Plane<'_>, r: usize, blocks: usize, comp: &Comp) -> BlockRow {
            code_row_impl(p, r, blocks, comp, |src, stride, out| {
                // SAFETY: AVX2 is enabled here; `src` holds 8 rows `stride` apart.
                unsafe { x86::fdct_quant(src, stride, &comp.divisor, out) }
            })
        }
        // SAFETY: the CPU supports these features (checked at run time).
        return unsafe { fast(p, r, blocks, comp) };
    }
    code_row_impl(p, r, blocks, comp, |src, stride, out| {
        fdct_quant(src, stride, &comp.divisor, out)
    })
}

#[inline(always)]
fn code_row_impl(
    p: &Plane<'_>,
    r: usize,
    blocks: usize,
    comp: &Comp,
    fdct: impl Fn(&[u8], usize, &mut [i32; 64]),
) -> BlockRow {
    // Longest AC string: 63 codes of at most 16 + 11 bits; 8 bytes of room for the
    // writer's whole-word stores.
    const MAX_BLOCK_BYTES: usize = 63 * 27 / 8 + 1 + 8;
    let mut row = BlockRow {
        dc: Vec::with_capacity(blocks),
        start: Vec::with_capacity(blocks),
        bits: Vec::with_capacity(blocks),
        bytes: vec![0; blocks * 64 + MAX_BLOCK_BYTES],
    };
    let mut pos = 0usize;
    let mut coef = [0i32; 64];
    for b in 0..blocks {
        let src = &p.data[8 * r * p.stride + 8 * b..];
        fdct(src, p.stride, &mut coef);
        let mut zz = [0i32; 64];
        let mut nonzero = 0u64;
        for k in 0..64 {
            zz[k] = coef[NATURAL[k] as usize];
            nonzero |= ((zz[k] != 0) as u64) << k;
        }
        row.dc.push(zz[0] as i16);
        row.start.push(pos as u32);
        if row.bytes.len() < pos + MAX_BLOCK_BYTES {
            row.bytes.resize(2 * row.bytes.len() + MAX_BLOCK_BYTES, 0);
        }
        let mut w = AcWriter {
            bytes: &mut row.bytes[pos..pos + MAX_BLOCK_BYTES],
            at: 0,
            acc: 0,
            n: 0,
            total: 0,
        };
        let mut mask = nonzero & !1;
        let mut prev = 0u32;
        while mask != 0 {
            let k = mask.trailing_zeros();
            let mut run = k - prev - 1;
            while run > 15 {
                let (c, s) = comp.ac.with_value(0xF0, 0, 0);
                w.put(c, s);
                run -= 16;
            }
            let (bits, n) = category(zz[k as usize]);
            let (c, s) = comp.ac.with_value(((run << 4) | n) as usize, bits, n);
            w.put(c, s);
            prev = k;
            mask &= mask - 1;
        }
        if prev != 63 {
            let (c, s) = comp.ac.with_value(0x00, 0, 0);
            w.put(c, s);
        }
        let (used, total) = w.finish();
        pos += used;
        row.bits.push(total as u16);
    }
    row.bytes.truncate(pos + 4);
    row
}

/// Collects one block's AC codes as big-endian bits (no byte stuffing: that depends on
/// where the bits land in a tile). Every `put` stores a whole 8-byte word and keeps
/// only the complete bytes, so there is no branch on the word filling up.
struct AcWriter<'a> {
    bytes: &'a mut [u8],
    at: usize,
    acc: u64,
    n: u32,
    total: u32,
}

impl AcWriter<'_> {
    /// Appends the low `len` (1 to 32) bits of `bits`.
    #[inline(always)]
    fn put(&mut self, bits: u32, len: u32) {
        // At most 7 bits wait from before, so the 64-bit accumulator never overflows.
        self.acc = (self.acc << len) | bits as u64;
        self.n += len;
        self.total += len;
        let word = (self.acc << (64 - self.n)).to_be_bytes();
        self.bytes[self.at..self.at + 8].copy_from_slice(&word);
        self.at += (self.n / 8) as usize;
        self.n %= 8;
    }

    /// Returns the bytes used (the last one partly) and the number of bits.
    fn finish(self) -> (usize, u32) {
        (self.at + (self.n > 0) as usize, self.total)
    }
}

/// Writes entropy-coded data with JPEG's byte stuffing (0xFF is followed by 0x00).
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter { out, acc: 0, n: 0 }
    }

    /// Appends the low `len` (at most 32) bits of `bits`.
    #[inline(always)]
    fn put(&mut self, bits: u32, len: u32) {
        self.acc = (self.acc << len) | bits as u64;
        self.n += len;
        if self.n >= 32 {
            self.n -= 32;
            self.word((self.acc >> self.n) as u32);
        }
    }

    #[inline(always)]
    fn word(&mut self, w: u32) {
        // A byte of `w` is 0xFF exactly when the same byte of `!w` is zero.
        let x = !w;
        if x.wrapping_sub(0x0101_0101) & !x & 0x8080_8080 == 0 {
            self.out.extend_from_slice(&w.to_be_bytes());
        } else {
            for b in w.to_be_bytes() {
                self.out.push(b);
                if b == 0xFF {
                    self.out.push(0);
                }
            }
        }
    }

    /// One block: its DC difference, then its AC bit string.
    #[inline(always)]
    fn block(&mut self, row: &BlockRow, x: usize, dc: &Huff, last: &mut i32) {
        let v = row.dc[x] as i32;
        let (bits, n) = category(v - *last);
        *last = v;
        let (c, s) = dc.with_value(n as usize, bits, n);
        self.put(c, s);
        let total = row.bits[x] as usize;
        let bytes = &row.bytes[row.start[x] as usize..];
        let word = |i: usize| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
        for i in 0..total / 32 {
            self.put(word(i), 32);
        }
        let rem = (total % 32) as u32;
        if rem > 0 {
            self.put(word(total / 32) >> (32 - rem), rem);
        }
    }

    /// Pads the last byte with 1 bits, as libjpeg does, and writes what is left.
    fn finish(mut self) {
        let pad = (8 - self.n % 8) % 8;
        self.acc = (self.acc << pad) | ((1u64 << pad) - 1);
        self.n += pad;
        while self.n >= 8 {
            self.n -= 8;
            let b = (self.acc >> self.n) as u8;
            self.out.push(b);
            if b == 0xFF {
                self.out.push(0);
            }
        }
    }
}
