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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

/// Zig-zag position -> natural (row-major) index in an 8x8 block (JPEG figure A.6).
const NATURAL: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// A Huffman table: per symbol, its code shifted left by 8 bits and its length in
/// the low 8 bits (length 0: symbol absent).
#[derive(Clone)]
struct Huff {
    entry: [u32; 256],
}

impl Huff {
    /// Canonical codes from a DHT segment's 16 counts and its symbols (JPEG annex C).
    fn new(counts: &[u8], symbols: &[u8]) -> Option<Huff> {
        let mut h = Huff { entry: [0; 256] };
        let (mut code, mut k) = (0u32, 0usize);
        for (len, &n) in (1..=16u32).zip(counts) {
            for _ in 0..n {
                let sym = *symbols.get(k)? as usize;
                if h.entry[sym] != 0 || code >= 1 << len {
                    return None;
                }
                h.entry[sym] = (code << 8) | len;
                code += 1;
                k += 1;
            }
            code <<= 1;
        }
        Some(h)
    }

    /// Code of `sym` followed by the `extra` low bits of `value`, as (bits, length).
    #[inline(always)]
    fn with_value(&self, sym: usize, value: u32, extra: u32) -> (u32, u32) {
        let e = self.entry[sym];
        debug_assert!(e != 0, "symbol {sym} missing from the Huffman table");
        (((e >> 8) << extra) | value, (e & 0xFF) + extra)
    }
}

/// What one component is coded with.
#[derive(Clone)]
struct Comp {
    /// Quantisation step times 8 (the DCT's output scale), natural order.
    divisor: [f32; 64],
    dc: Huff,
    ac: Huff,
}

/// Everything libjpeg-turbo's output at one quality fixes: headers and tables.
pub(super) struct Tables {
    /// SOI to the end of SOS.
    header: Vec<u8>,
    /// Offset of the frame's height (then width) in `header`.
    sof_dims: usize,
    comps: [Comp; 3],
}

impl Tables {
    /// Reads a baseline 3-component 4:2:0 JPEG's headers; `None` for anything else
    /// (restart intervals, other subsampling or marker kinds).
    pub(super) fn parse(jpeg: &[u8]) -> Option<Tables> {
        if jpeg.get(..2)? != [0xFF, 0xD8] {
            return None;
        }
        let mut qt: [Option<[u16; 64]>; 4] = [None; 4];
        let mut dht: [[Option<Huff>; 4]; 2] = Default::default();
        let mut frame: Option<([u8; 3], [u8; 3], usize)> = None;
        let mut pos = 2;
        loop {
            if *jpeg.get(pos)? != 0xFF {
                return None;
            }
            let marker = *jpeg.get(pos + 1)?;
            let len = u16::from_be_bytes([*jpeg.get(pos + 2)?, *jpeg.get(pos + 3)?]) as usize;
            let body = jpeg.get(pos + 4..pos + 2 + len.max(2))?;
            match marker {
                0xE0..=0xEF | 0xFE => {}
                0xDB => {
                    let mut b = body;
                    while let Some((&pq_tq, rest)) = b.split_first() {
                        let (pq, tq) = (pq_tq >> 4, (pq_tq & 15) as usize);
                        let mut vals = [0u16; 64];
                        let n = match pq {
                            0 => 64,
                            1 => 128,
                            _ => return None,
                        };
                        let raw = rest.get(..n)?;
                        for (k, v) in vals.iter_mut().enumerate() {
                            *v = match pq {
                                0 => raw[k] as u16,
                                _ => u16::from_be_bytes([raw[2 * k], raw[2 * k + 1]]),
                            };
                        }
                        *qt.get_mut(tq)? = Some(vals);
                        b = &rest[n..];
                    }
                }
                0xC0 => {
                    let (&p, rest) = body.split_first()?;
                    if p != 8 || rest.get(4) != Some(&3) || rest.len() != 14 {
                        return None;
                    }
                    let c = &rest[5..];
                    let ids = [c[0], c[3], c[6]];
                    if [c[1], c[4], c[7]] != [0x22, 0x11, 0x11] {
                        return None;
                    }
                    frame = Some((ids, [c[2], c[5], c[8]], pos + 5));
                }
                0xC4 => {
                    let mut b = body;
                    while let Some((&tc_th, rest)) = b.split_first() {
                        let counts = rest.get(..16)?;
                        let n: usize = counts.iter().map(|&c| c as usize).sum();
                        let symbols = rest.get(16..16 + n)?;
                        let (tc, th) = ((tc_th >> 4) as usize, (tc_th & 15) as usize);
                        *dht.get_mut(tc)?.get_mut(th)? = Some(Huff::new(counts, symbols)?);
                        b = &rest[16 + n..];
                    }
                }
                0xDA => {
                    let (ids, tqs, sof_dims) = frame?;
                    if body.len() != 10 || body[0] != 3 || body[7..] != [0, 63, 0] {
                        return None;
                    }
                    let mut comps = Vec::with_capacity(3);
                    for i in 0..3 {
                        let (id, tables) = (body[1 + 2 * i], body[2 + 2 * i]);
                        if id != ids[i] {
                            return None;
                        }
                        let q = qt.get(tqs[i] as usize)?.as_ref()?;
                        let mut divisor = [0f32; 64];
                        for k in 0..64 {
                            if q[k] == 0 {
                                return None;
                            }
                            divisor[NATURAL[k]] = 8.0 * q[k] as f32;
                        }
                        let comp = Comp {
                            divisor,
                            dc: dht[0].get((tables >> 4) as usize)?.clone()?,
                            ac: dht[1].get((tables & 15) as usize)?.clone()?,
                        };
                        // Every symbol 8-bit samples can need: DC categories 0-11;
                        // EOB, ZRL and every run/category pair up to category 10.
                        let ac_symbols = (0..16).flat_map(|r| (1..=10).map(move |n| r << 4 | n));
                        if (0..=11).any(|n| comp.dc.entry[n] == 0)
                            || [0x00, 0xF0]
                                .into_iter()
                                .chain(ac_symbols)
                                .any(|s| comp.ac.entry[s] == 0)
                        {
                            return None;
                        }
                        comps.push(comp);
                    }
                    let comps: [Comp; 3] = comps.try_into().ok()?;
                    return Some(Tables {
                        header: jpeg[..pos + 2 + len].to_vec(),
                        sof_dims,
                        comps,
                    });
                }
                _ => return None,
            }
            pos += 2 + len;
        }
    }

    /// The tables at `quality`, from `probe(quality)` (a small JPEG libjpeg-turbo
    /// encoded with the tile path's settings), once per process and quality.
    pub(super) fn at(
        quality: u8,
        probe: impl FnOnce(u8) -> Option<Vec<u8>>,
    ) -> Option<Arc<Tables>> {
        static CACHE: OnceLock<Mutex<HashMap<u8, Option<Arc<Tables>>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(t) = cache.lock().expect("tables cache").get(&quality) {
            return t.clone();
        }
        let tables = probe(quality).and_then(|j| Tables::parse(&j)).map(Arc::new);
        cache
            .lock()
            .expect("tables cache")
            .insert(quality, tables.clone());
        tables
    }
}

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
pub(super) struct Blocks {
    tables: Arc<Tables>,
    /// Y, Cb, Cr.
    planes: [Vec<BlockRow>; 3],
}

/// A plane of 8-bit samples.
pub(super) struct Plane<'a> {
    pub data: &'a [u8],
    pub stride: usize,
}

impl Blocks {
    /// Codes the blocks of 16x16-aligned tiles of a `width x height` image's 4:2:0
    /// planes (luma, then the two half-size chroma planes).
    pub(super) fn new(
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
    pub(super) fn encode(
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
    if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("lzcnt")
    {
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
            zz[k] = coef[NATURAL[k]];
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

/// Forward DCT and quantisation of the 8x8 block whose rows start `stride` bytes apart
/// in `src`; coefficients in natural order. The portable version of
/// [`x86::fdct_quant`].
#[inline(always)]
fn fdct_quant(src: &[u8], stride: usize, divisor: &[f32; 64], out: &mut [i32; 64]) {
    // d[column][row]: each lane is one row of the block.
    let mut d = [[0i32; 8]; 8];
    for y in 0..8 {
        let line = &src[y * stride..][..8];
        for x in 0..8 {
            d[x][y] = line[x] as i32 - 128;
        }
    }
    fdct_pass(&mut d, false);
    transpose(&mut d);
    fdct_pass(&mut d, true);
    // d[v][u] is now coefficient (v, u): natural order when flattened.
    for (i, (o, &x)) in out.iter_mut().zip(d.as_flattened()).enumerate() {
        *o = quantise(x, divisor[i]);
    }
}

/// `x / d` rounded half away from zero, `d` being 8 times the quantisation step (the
/// transform's output scale), as libjpeg quantises.
#[inline(always)]
fn quantise(x: i32, d: f32) -> i32 {
    // |x| + d/2 < 2^20 and d <= 2^19 are exact in f32, and the correctly rounded
    // quotient's floor is the exact integer quotient: if a/d is not an integer it is
    // at least 1/d below the next one, far more than the rounding error (a/d) * 2^-24.
    let a = x.abs() as f32 + 0.5 * d;
    // SAFETY: `a / d` is finite, non-negative and below 2^20.
    let v: i32 = unsafe { (a / d).to_int_unchecked() };
    if x < 0 {
        -v
    } else {
        v
    }
}

/// libjpeg's accurate integer DCT (Loeffler, Ligtenberg and Moschytz, with 13-bit
/// constants): the constants, and one pass over 8 lanes where `d[k]` holds input `k`
/// of every lane and receives output `k`. The first pass keeps 2 extra bits of
/// precision; the second removes them.
mod dct {
    pub const CONST_BITS: i32 = 13;
    pub const PASS1_BITS: i32 = 2;
    pub const F0_298: i32 = 2446;
    pub const F0_390: i32 = 3196;
    pub const F0_541: i32 = 4433;
    pub const F0_765: i32 = 6270;
    pub const F0_899: i32 = 7373;
    pub const F1_175: i32 = 9633;
    pub const F1_501: i32 = 12299;
    pub const F1_847: i32 = 15137;
    pub const F1_961: i32 = 16069;
    pub const F2_053: i32 = 16819;
    pub const F2_562: i32 = 20995;
    pub const F3_072: i32 = 25172;
}

// The lane loop indexes eight arrays at once, which is how it vectorises.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn fdct_pass(d: &mut [[i32; 8]; 8], second: bool) {
    use dct::*;
    let (shift, dc_shift) = if second {
        (CONST_BITS + PASS1_BITS, PASS1_BITS)
    } else {
        (CONST_BITS - PASS1_BITS, 0)
    };
    let round = 1i32 << (shift - 1);
    let dc_round = if second { 1i32 << (PASS1_BITS - 1) } else { 0 };
    for l in 0..8 {
        let tmp0 = d[0][l] + d[7][l];
        let tmp7 = d[0][l] - d[7][l];
        let tmp1 = d[1][l] + d[6][l];
        let tmp6 = d[1][l] - d[6][l];
        let tmp2 = d[2][l] + d[5][l];
        let tmp5 = d[2][l] - d[5][l];
        let tmp3 = d[3][l] + d[4][l];
        let tmp4 = d[3][l] - d[4][l];

        let tmp10 = tmp0 + tmp3;
        let tmp13 = tmp0 - tmp3;
        let tmp11 = tmp1 + tmp2;
        let tmp12 = tmp1 - tmp2;
        if second {
            d[0][l] = (tmp10 + tmp11 + dc_round) >> dc_shift;
            d[4][l] = (tmp10 - tmp11 + dc_round) >> dc_shift;
        } else {
            d[0][l] = (tmp10 + tmp11) << PASS1_BITS;
            d[4][l] = (tmp10 - tmp11) << PASS1_BITS;
        }
        let z1 = (tmp12 + tmp13) * F0_541;
        d[2][l] = (z1 + tmp13 * F0_765 + round) >> shift;
        d[6][l] = (z1 - tmp12 * F1_847 + round) >> shift;

        let z1 = tmp4 + tmp7;
        let z2 = tmp5 + tmp6;
        let z3 = tmp4 + tmp6;
        let z4 = tmp5 + tmp7;
        let z5 = (z3 + z4) * F1_175;
        let tmp4 = tmp4 * F0_298;
        let tmp5 = tmp5 * F2_053;
        let tmp6 = tmp6 * F3_072;
        let tmp7 = tmp7 * F1_501;
        let z1 = -z1 * F0_899;
        let z2 = -z2 * F2_562;
        let z3 = -z3 * F1_961 + z5;
        let z4 = -z4 * F0_390 + z5;
        d[7][l] = (tmp4 + z1 + z3 + round) >> shift;
        d[5][l] = (tmp5 + z2 + z4 + round) >> shift;
        d[3][l] = (tmp6 + z2 + z3 + round) >> shift;
        d[1][l] = (tmp7 + z1 + z4 + round) >> shift;
    }
}

#[inline(always)]
fn transpose(d: &mut [[i32; 8]; 8]) {
    *d = std::array::from_fn(|i| std::array::from_fn(|j| d[j][i]));
}

/// The same transform and quantisation with AVX2: a block is eight vectors of eight
/// 32-bit lanes, transposed with unpack instructions between the two passes.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::dct::*;

    /// See [`super::fdct_quant`].
    ///
    /// # Safety
    /// The CPU must support AVX2, and `src` must hold 8 rows of 8 bytes, `stride`
    /// bytes apart (checked).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn fdct_quant(
        src: &[u8],
        stride: usize,
        divisor: &[f32; 64],
        out: &mut [i32; 64],
    ) {
        assert!(src.len() >= 7 * stride + 8, "block outside its plane");
        let row = |y: usize| {
            // SAFETY: row y's 8 bytes are inside `src` (asserted above).
            unsafe { _mm_loadl_epi64(src.as_ptr().add(y * stride) as *const __m128i) }
        };
        // Transpose the 8x8 bytes: c0 holds columns 0 and 1 (rows 0-7 each), etc.
        let (a01, a23) = (
            _mm_unpacklo_epi8(row(0), row(1)),
            _mm_unpacklo_epi8(row(2), row(3)),
        );
        let (a45, a67) = (
            _mm_unpacklo_epi8(row(4), row(5)),
            _mm_unpacklo_epi8(row(6), row(7)),
        );
        let (b0, b1) = (_mm_unpacklo_epi16(a01, a23), _mm_unpackhi_epi16(a01, a23));
        let (b2, b3) = (_mm_unpacklo_epi16(a45, a67), _mm_unpackhi_epi16(a45, a67));
        let c = [
            _mm_unpacklo_epi32(b0, b2),
            _mm_unpackhi_epi32(b0, b2),
            _mm_unpacklo_epi32(b1, b3),
            _mm_unpackhi_epi32(b1, b3),
        ];
        let centre = _mm256_set1_epi32(128);
        let widen = |v: __m128i| _mm256_sub_epi32(_mm256_cvtepu8_epi32(v), centre);
        let mut d = [
            widen(c[0]),
            widen(_mm_srli_si128::<8>(c[0])),
            widen(c[1]),
            widen(_mm_srli_si128::<8>(c[1])),
            widen(c[2]),
            widen(_mm_srli_si128::<8>(c[2])),
            widen(c[3]),
            widen(_mm_srli_si128::<8>(c[3])),
        ];
        pass::<false>(&mut d);
        transpose(&mut d);
        pass::<true>(&mut d);
        for (v, lanes) in d.iter().enumerate() {
            // SAFETY: 8 floats from 8 * v < 64.
            let div = unsafe { _mm256_loadu_ps(divisor[8 * v..][..8].as_ptr()) };
            let a = _mm256_cvtepi32_ps(_mm256_abs_epi32(*lanes));
            let a = _mm256_add_ps(a, _mm256_mul_ps(div, _mm256_set1_ps(0.5)));
            // Truncation is the floor here: the quotient is non-negative (see
            // `super::quantise` for exactness).
            let q = _mm256_cvttps_epi32(_mm256_div_ps(a, div));
            let q = _mm256_sign_epi32(q, *lanes);
            // SAFETY: 8 lanes to 8 * v < 64.
            unsafe { _mm256_storeu_si256(out[8 * v..][..8].as_mut_ptr() as *mut __m256i, q) };
        }
    }

    /// See [`super::idct_into`]: `coef` are quantised coefficients (natural order),
    /// `step` their quantisation steps.
    ///
    /// # Safety
    /// The CPU must support AVX2; `out` must hold 8 rows of 8 bytes, `stride` apart
    /// (checked).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dequant_idct(
        coef: &[i32; 64],
        step: &[i32; 64],
        out: &mut [u8],
        stride: usize,
    ) {
        assert!(out.len() >= 7 * stride + 8, "block outside its plane");
        let load = |a: &[i32; 64], v: usize| {
            // SAFETY: 8 lanes from 8 * v < 64.
            unsafe { _mm256_loadu_si256(a[8 * v..][..8].as_ptr() as *const __m256i) }
        };
        let mut d: [__m256i; 8] =
            std::array::from_fn(|v| _mm256_mullo_epi32(load(coef, v), load(step, v)));
        idct_pass::<false>(&mut d);
        transpose(&mut d);
        idct_pass::<true>(&mut d);
        transpose(&mut d);
        // d[y] is now row y; plus 128, saturated to bytes.
        let centre = _mm256_set1_epi32(128);
        for (y, row) in d.iter().enumerate() {
            let v = _mm256_add_epi32(*row, centre);
            let words =
                _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
            let bytes = _mm_packus_epi16(words, words);
            // SAFETY: row y's 8 bytes are inside `out` (asserted above).
            unsafe { _mm_storel_epi64(out.as_mut_ptr().add(y * stride) as *mut __m128i, bytes) };
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn idct_pass<const SECOND: bool>(d: &mut [__m256i; 8]) {
        let add = |a, b| _mm256_add_epi32(a, b);
        let sub = |a, b| _mm256_sub_epi32(a, b);
        let mul = |a, k: i32| _mm256_mullo_epi32(a, _mm256_set1_epi32(k));
        let descale = |x| {
            if SECOND {
                let r = _mm256_set1_epi32(1 << (CONST_BITS + PASS1_BITS + 3 - 1));
                _mm256_srai_epi32::<{ CONST_BITS + PASS1_BITS + 3 }>(add(x, r))
            } else {
                let r = _mm256_set1_epi32(1 << (CONST_BITS - PASS1_BITS - 1));
                _mm256_srai_epi32::<{ CONST_BITS - PASS1_BITS }>(add(x, r))
            }
        };
        let z1 = mul(add(d[2], d[6]), F0_541);
        let tmp2 = sub(z1, mul(d[6], F1_847));
        let tmp3 = add(z1, mul(d[2], F0_765));
        let tmp0 = _mm256_slli_epi32::<CONST_BITS>(add(d[0], d[4]));
        let tmp1 = _mm256_slli_epi32::<CONST_BITS>(sub(d[0], d[4]));
        let tmp10 = add(tmp0, tmp3);
        let tmp13 = sub(tmp0, tmp3);
        let tmp11 = add(tmp1, tmp2);
        let tmp12 = sub(tmp1, tmp2);

        let (t0, t1, t2, t3) = (d[7], d[5], d[3], d[1]);
        let z1 = add(t0, t3);
        let z2 = add(t1, t2);
        let z3 = add(t0, t2);
        let z4 = add(t1, t3);
        let z5 = mul(add(z3, z4), F1_175);
        let z1 = mul(z1, -F0_899);
        let z2 = mul(z2, -F2_562);
        let z3 = add(mul(z3, -F1_961), z5);
        let z4 = add(mul(z4, -F0_390), z5);
        let t0 = add(add(mul(t0, F0_298), z1), z3);
        let t1 = add(add(mul(t1, F2_053), z2), z4);
        let t2 = add(add(mul(t2, F3_072), z2), z3);
        let t3 = add(add(mul(t3, F1_501), z1), z4);

        d[0] = descale(add(tmp10, t3));
        d[7] = descale(sub(tmp10, t3));
        d[1] = descale(add(tmp11, t2));
        d[6] = descale(sub(tmp11, t2));
        d[2] = descale(add(tmp12, t1));
        d[5] = descale(sub(tmp12, t1));
        d[3] = descale(add(tmp13, t0));
        d[4] = descale(sub(tmp13, t0));
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn transpose(d: &mut [__m256i; 8]) {
        let t: [__m256i; 8] = std::array::from_fn(|i| {
            let (a, b) = (d[i & !1], d[i | 1]);
            match i % 2 {
                0 => _mm256_unpacklo_epi32(a, b),
                _ => _mm256_unpackhi_epi32(a, b),
            }
        });
        // t[0] = unpacklo(d0, d1), t[1] = unpackhi(d0, d1), t[2] = lo(d2, d3), ...
        let u = [
            _mm256_unpacklo_epi64(t[0], t[2]),
            _mm256_unpackhi_epi64(t[0], t[2]),
            _mm256_unpacklo_epi64(t[1], t[3]),
            _mm256_unpackhi_epi64(t[1], t[3]),
            _mm256_unpacklo_epi64(t[4], t[6]),
            _mm256_unpackhi_epi64(t[4], t[6]),
            _mm256_unpacklo_epi64(t[5], t[7]),
            _mm256_unpackhi_epi64(t[5], t[7]),
        ];
        for i in 0..4 {
            d[i] = _mm256_permute2x128_si256::<0x20>(u[i], u[i + 4]);
            d[i + 4] = _mm256_permute2x128_si256::<0x31>(u[i], u[i + 4]);
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn pass<const SECOND: bool>(d: &mut [__m256i; 8]) {
        let add = |a, b| _mm256_add_epi32(a, b);
        let sub = |a, b| _mm256_sub_epi32(a, b);
        let mul = |a, k: i32| _mm256_mullo_epi32(a, _mm256_set1_epi32(k));
        let descale = |x| {
            if SECOND {
                let r = _mm256_set1_epi32(1 << (CONST_BITS + PASS1_BITS - 1));
                _mm256_srai_epi32::<{ CONST_BITS + PASS1_BITS }>(add(x, r))
            } else {
                let r = _mm256_set1_epi32(1 << (CONST_BITS - PASS1_BITS - 1));
                _mm256_srai_epi32::<{ CONST_BITS - PASS1_BITS }>(add(x, r))
            }
        };
        let tmp0 = add(d[0], d[7]);
        let tmp7 = sub(d[0], d[7]);
        let tmp1 = add(d[1], d[6]);
        let tmp6 = sub(d[1], d[6]);
        let tmp2 = add(d[2], d[5]);
        let tmp5 = sub(d[2], d[5]);
        let tmp3 = add(d[3], d[4]);
        let tmp4 = sub(d[3], d[4]);

        let tmp10 = add(tmp0, tmp3);
        let tmp13 = sub(tmp0, tmp3);
        let tmp11 = add(tmp1, tmp2);
        let tmp12 = sub(tmp1, tmp2);
        if SECOND {
            let r = _mm256_set1_epi32(1 << (PASS1_BITS - 1));
            d[0] = _mm256_srai_epi32::<PASS1_BITS>(add(add(tmp10, tmp11), r));
            d[4] = _mm256_srai_epi32::<PASS1_BITS>(add(sub(tmp10, tmp11), r));
        } else {
            d[0] = _mm256_slli_epi32::<PASS1_BITS>(add(tmp10, tmp11));
            d[4] = _mm256_slli_epi32::<PASS1_BITS>(sub(tmp10, tmp11));
        }
        let z1 = mul(add(tmp12, tmp13), F0_541);
        d[2] = descale(add(z1, mul(tmp13, F0_765)));
        d[6] = descale(sub(z1, mul(tmp12, F1_847)));

        let z1 = add(tmp4, tmp7);
        let z2 = add(tmp5, tmp6);
        let z3 = add(tmp4, tmp6);
        let z4 = add(tmp5, tmp7);
        let z5 = mul(add(z3, z4), F1_175);
        let tmp4 = mul(tmp4, F0_298);
        let tmp5 = mul(tmp5, F2_053);
        let tmp6 = mul(tmp6, F3_072);
        let tmp7 = mul(tmp7, F1_501);
        let z1 = mul(z1, -F0_899);
        let z2 = mul(z2, -F2_562);
        let z3 = add(mul(z3, -F1_961), z5);
        let z4 = add(mul(z4, -F0_390), z5);
        d[7] = descale(add(add(tmp4, z1), z3));
        d[5] = descale(add(add(tmp5, z2), z4));
        d[3] = descale(add(add(tmp6, z2), z3));
        d[1] = descale(add(add(tmp7, z1), z4));
    }
}

/// A JPEG round trip of 4:2:0 planes without entropy coding (which is lossless):
/// every 8x8 block is transformed, quantised, dequantised and inverse-transformed as
/// libjpeg-turbo's encoder and decoder do, in place. Each plane is `(samples, stride,
/// width, height)` with sides that are multiples of 8 (whole blocks: no edge padding
/// to reproduce).
pub(super) fn requantise(tables: &Tables, planes: [(&mut [u8], usize, usize, usize); 3]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(tables: &Tables, planes: [(&mut [u8], usize, usize, usize); 3]) {
            requantise_impl(
                tables,
                planes,
                |src, stride, divisor, out| {
                    // SAFETY: AVX2 is enabled here; `src` holds 8 rows `stride` apart.
                    unsafe { x86::fdct_quant(src, stride, divisor, out) }
                },
                |coef, step, out, stride| {
                    // SAFETY: as above, for `out`.
                    unsafe { x86::dequant_idct(coef, step, out, stride) }
                },
            )
        }
        // SAFETY: the CPU supports AVX2 (checked at run time).
        return unsafe { avx2(tables, planes) };
    }
    requantise_impl(tables, planes, fdct_quant, dequant_idct)
}

#[inline(always)]
fn requantise_impl(
    tables: &Tables,
    planes: [(&mut [u8], usize, usize, usize); 3],
    fdct: impl Fn(&[u8], usize, &[f32; 64], &mut [i32; 64]),
    idct: impl Fn(&[i32; 64], &[i32; 64], &mut [u8], usize),
) {
    let mut coef = [0i32; 64];
    for ((data, stride, w, h), comp) in planes.into_iter().zip(&tables.comps) {
        assert!(w % 8 == 0 && h % 8 == 0, "whole blocks only");
        assert!(h == 0 || data.len() >= (h - 1) * stride + w);
        let mut step = [0i32; 64];
        for (s, d) in step.iter_mut().zip(&comp.divisor) {
            *s = (*d / 8.0) as i32;
        }
        for by in 0..h / 8 {
            for bx in 0..w / 8 {
                let at = 8 * by * stride + 8 * bx;
                fdct(&data[at..], stride, &comp.divisor, &mut coef);
                idct(&coef, &step, &mut data[at..], stride);
            }
        }
    }
}

/// libjpeg's accurate integer inverse DCT of quantised coefficients (natural order)
/// times their quantisation steps, written as 8-bit samples (plus 128, saturated as
/// libjpeg-turbo's SIMD code does; its plain C path, which is never used since the
/// build requires SIMD, wraps values far out of range instead). The portable
/// version of [`x86::dequant_idct`].
#[inline(always)]
fn dequant_idct(coef: &[i32; 64], step: &[i32; 64], out: &mut [u8], stride: usize) {
    // d[v][u]: lanes are columns u; the first pass runs down the columns.
    let mut d: [[i32; 8]; 8] =
        std::array::from_fn(|v| std::array::from_fn(|u| coef[8 * v + u] * step[8 * v + u]));
    idct_pass(&mut d, false);
    transpose(&mut d);
    idct_pass(&mut d, true);
    // d[x][y] is now sample (y, x).
    for y in 0..8 {
        let line = &mut out[y * stride..][..8];
        for (x, px) in line.iter_mut().enumerate() {
            *px = (d[x][y] + 128).clamp(0, 255) as u8;
        }
    }
}

/// One pass of the inverse transform over 8 lanes (see [`fdct_pass`]): the first keeps
/// 2 extra bits, the second removes them and the 3 bits of the 2-D scale.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn idct_pass(d: &mut [[i32; 8]; 8], second: bool) {
    use dct::*;
    let shift = if second {
        CONST_BITS + PASS1_BITS + 3
    } else {
        CONST_BITS - PASS1_BITS
    };
    let round = 1i32 << (shift - 1);
    for l in 0..8 {
        let z2 = d[2][l];
        let z3 = d[6][l];
        let z1 = (z2 + z3) * F0_541;
        let tmp2 = z1 - z3 * F1_847;
        let tmp3 = z1 + z2 * F0_765;
        let tmp0 = (d[0][l] + d[4][l]) << CONST_BITS;
        let tmp1 = (d[0][l] - d[4][l]) << CONST_BITS;
        let tmp10 = tmp0 + tmp3;
        let tmp13 = tmp0 - tmp3;
        let tmp11 = tmp1 + tmp2;
        let tmp12 = tmp1 - tmp2;

        let (t0, t1, t2, t3) = (d[7][l], d[5][l], d[3][l], d[1][l]);
        let z1 = t0 + t3;
        let z2 = t1 + t2;
        let z3 = t0 + t2;
        let z4 = t1 + t3;
        let z5 = (z3 + z4) * F1_175;
        let z1 = -z1 * F0_899;
        let z2 = -z2 * F2_562;
        let z3 = -z3 * F1_961 + z5;
        let z4 = -z4 * F0_390 + z5;
        let t0 = t0 * F0_298 + z1 + z3;
        let t1 = t1 * F2_053 + z2 + z4;
        let t2 = t2 * F3_072 + z2 + z3;
        let t3 = t3 * F1_501 + z1 + z4;

        d[0][l] = (tmp10 + t3 + round) >> shift;
        d[7][l] = (tmp10 - t3 + round) >> shift;
        d[1][l] = (tmp11 + t2 + round) >> shift;
        d[6][l] = (tmp11 - t2 + round) >> shift;
        d[2][l] = (tmp12 + t1 + round) >> shift;
        d[5][l] = (tmp12 - t1 + round) >> shift;
        d[3][l] = (tmp13 + t0 + round) >> shift;
        d[4][l] = (tmp13 - t0 + round) >> shift;
    }
}

/// libjpeg's decoder output for 4:2:0 planes of a `w x h` image (even sides): chroma
/// upsampled by its "fancy" triangle filter (3/4 of the nearer chroma sample and 1/4
/// of the farther, in both directions, with its 8/7 rounding biases; edge samples
/// repeated), then YCbCr converted to RGB with its 16-bit fixed-point tables. Calls
/// `put(row, [r, g, b])` with each row's three channels.
pub(super) fn ycc420_to_rgb(
    planes: [(&[u8], usize); 3],
    w: usize,
    h: usize,
    put: impl FnMut(usize, [&[u8]; 3]),
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(
            planes: [(&[u8], usize); 3],
            w: usize,
            h: usize,
            put: impl FnMut(usize, [&[u8]; 3]),
        ) {
            // The closure is compiled for AVX2 too, so the call needs no unsafe.
            ycc420_to_rgb_impl(planes, w, h, put, |sums, o| upsample_row_avx2(sums, o))
        }
        // SAFETY: the CPU supports AVX2 (checked at run time).
        return unsafe { avx2(planes, w, h, put) };
    }
    ycc420_to_rgb_impl(planes, w, h, put, upsample_row)
}

/// One output row of libjpeg's fancy chroma upsampling, horizontally: from the column
/// sums `s` of a chroma row (`3 * nearer + farther`, with one pad each side), output
/// `2c` is `(3 s[c+1] + s[c] + 8) >> 4` and output `2c + 1` is `(3 s[c+1] + s[c+2] +
/// 7) >> 4`.
#[inline(always)]
fn upsample_row(sums: &[i32], o: &mut [i32]) {
    upsample_row_from(sums, o, 0)
}

#[inline(always)]
fn upsample_row_from(sums: &[i32], o: &mut [i32], from: usize) {
    let cw = o.len() / 2;
    assert!(sums.len() >= cw + 2, "column sums with pads");
    for c in from..cw {
        let (prev, this, next) = (sums[c], sums[c + 1], sums[c + 2]);
        o[2 * c] = (this * 3 + prev + 8) >> 4;
        o[2 * c + 1] = (this * 3 + next + 7) >> 4;
    }
}

/// [`upsample_row`] eight chroma samples (sixteen outputs) at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn upsample_row_avx2(sums: &[i32], o: &mut [i32]) {
    use std::arch::x86_64::*;
    let cw = o.len() / 2;
    assert!(sums.len() >= cw + 2, "column sums with pads");
    let (eight, seven) = (_mm256_set1_epi32(8), _mm256_set1_epi32(7));
    let mut c = 0;
    while c + 8 <= cw {
        // SAFETY: c + 10 <= cw + 2 <= sums.len() and 2c + 16 <= 2 cw <= o.len().
        unsafe {
            let at = sums.as_ptr().add(c);
            let prev = _mm256_loadu_si256(at as *const __m256i);
            let this = _mm256_loadu_si256(at.add(1) as *const __m256i);
            let next = _mm256_loadu_si256(at.add(2) as *const __m256i);
            let t3 = _mm256_add_epi32(_mm256_add_epi32(this, this), this);
            let even = _mm256_srai_epi32::<4>(_mm256_add_epi32(_mm256_add_epi32(t3, prev), eight));
            let odd = _mm256_srai_epi32::<4>(_mm256_add_epi32(_mm256_add_epi32(t3, next), seven));
            // e0 o0 e1 o1 | e4 o4 e5 o5 and e2 o2 e3 o3 | e6 o6 e7 o7 -> in order.
            let lo = _mm256_unpacklo_epi32(even, odd);
            let hi = _mm256_unpackhi_epi32(even, odd);
            let out = o.as_mut_ptr().add(2 * c) as *mut __m256i;
            _mm256_storeu_si256(out, _mm256_permute2x128_si256::<0x20>(lo, hi));
            _mm256_storeu_si256(out.add(1), _mm256_permute2x128_si256::<0x31>(lo, hi));
        }
        c += 8;
    }
    upsample_row_from(sums, o, c);
}

#[inline(always)]
fn ycc420_to_rgb_impl(
    planes: [(&[u8], usize); 3],
    w: usize,
    h: usize,
    mut put: impl FnMut(usize, [&[u8]; 3]),
    upsample: impl Fn(&[i32], &mut [i32]),
) {
    assert!(
        w.is_multiple_of(2) && h.is_multiple_of(2) && w > 0 && h > 0,
        "even sides only"
    );
    const ONE_HALF: i32 = 1 << 15;
    let fix = |x: f64| (x * 65536.0 + 0.5) as i32;
    let (cr_r, cb_b, cr_g, cb_g) = (fix(1.402), fix(1.772), fix(0.71414), fix(0.34414));
    let (cw, ch) = (w / 2, h / 2);
    let [(y, ys), cb, cr] = planes;
    for (p, stride) in [cb, cr] {
        assert!(p.len() >= (ch - 1) * stride + cw, "chroma plane too small");
    }
    assert!(y.len() >= (h - 1) * ys + w, "luma plane too small");
    // Column sums with the edge repeated: s[0] and s[cw + 1] are the pads.
    let mut sums = vec![0i32; cw + 2];
    // up[component][v]: the full-width chroma of output rows 2r and 2r + 1.
    let mut up = [
        [vec![0i32; w], vec![0i32; w]],
        [vec![0i32; w], vec![0i32; w]],
    ];
    let mut rgb = [vec![0u8; w], vec![0u8; w], vec![0u8; w]];
    for r in 0..ch {
        for ((plane, stride), out) in [cb, cr].into_iter().zip(&mut up) {
            let row = |i: usize| &plane[i * stride..][..cw];
            let this = row(r);
            for (v, near) in [r.saturating_sub(1), (r + 1).min(ch - 1)]
                .into_iter()
                .enumerate()
            {
                let near = row(near);
                for ((s, &t), &n) in sums[1..=cw].iter_mut().zip(this).zip(near) {
                    *s = 3 * t as i32 + n as i32;
                }
                // The pads make the edge outputs 4 * s + bias, as libjpeg's edge cases.
                (sums[0], sums[cw + 1]) = (sums[1], sums[cw]);
                upsample(&sums, &mut out[v]);
            }
        }
        let [cb_up, cr_up] = &up;
        for (v, (cb_row, cr_row)) in cb_up.iter().zip(cr_up).enumerate() {
            let yy = 2 * r + v;
            let luma = &y[yy * ys..][..w];
            let [rr, gg, bb] = &mut rgb;
            for x in 0..w {
                let l = luma[x] as i32;
                let b = cb_row[x] - 128;
                let r = cr_row[x] - 128;
                rr[x] = (l + ((cr_r * r + ONE_HALF) >> 16)).clamp(0, 255) as u8;
                gg[x] = (l + ((-cb_g * b + ONE_HALF - cr_g * r) >> 16)).clamp(0, 255) as u8;
                bb[x] = (l + ((cb_b * b + ONE_HALF) >> 16)).clamp(0, 255) as u8;
            }
            put(yy, [&rgb[0], &rgb[1], &rgb[2]]);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avx2_upsampling_matches_the_portable_rows() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            for cw in [1, 7, 8, 9, 16, 33, 64] {
                // Column sums of 3 * nearer + farther bytes: 0 to 1020.
                let sums: Vec<i32> = (0..cw + 2)
                    .map(|i| ((i * 389 + cw) % 1021) as i32)
                    .collect();
                let (mut a, mut b) = (vec![-1; 2 * cw], vec![-1; 2 * cw]);
                upsample_row(&sums, &mut a);
                // SAFETY: the CPU supports AVX2 (checked above).
                unsafe { upsample_row_avx2(&sums, &mut b) };
                assert_eq!(a, b, "{cw} chroma samples");
            }
        }
    }

    #[test]
    fn avx2_transform_matches_the_portable_one() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut s = 0x1234_5678_9abc_def1u64;
            let mut divisor = [0f32; 64];
            for (i, d) in divisor.iter_mut().enumerate() {
                *d = 8.0 * (1 + (i * 37) % 255) as f32;
            }
            for case in 0..2000 {
                let src: Vec<u8> = (0..8 * 11)
                    .map(|i| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        match case % 3 {
                            0 => s as u8,
                            1 => [0u8, 255][(s as usize + i) % 2],
                            _ => (i * 3) as u8,
                        }
                    })
                    .collect();
                let (mut a, mut b) = ([0i32; 64], [0i32; 64]);
                fdct_quant(&src, 11, &divisor, &mut a);
                // SAFETY: AVX2 is present (checked above).
                unsafe { x86::fdct_quant(&src, 11, &divisor, &mut b) };
                assert_eq!(a, b, "case {case}");
                let step: [i32; 64] = std::array::from_fn(|i| (divisor[i] / 8.0) as i32);
                let (mut x, mut y) = ([0u8; 8 * 11], [0u8; 8 * 11]);
                dequant_idct(&a, &step, &mut x, 11);
                // SAFETY: AVX2 is present (checked above).
                unsafe { x86::dequant_idct(&a, &step, &mut y, 11) };
                assert_eq!(x, y, "inverse, case {case}");
            }
        }
    }
}
