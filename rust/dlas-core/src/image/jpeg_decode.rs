//! Decoding the JPEGs tiles are made of, with libjpeg-turbo's exact pixels, faster.
//!
//! Chunk tiles (ours and DLAS's) and most photos are baseline, Huffman-coded YCbCr
//! 4:2:0 JPEGs, and decoding them is most of what loading a sample costs. About a
//! third of libjpeg-turbo's time on a tile goes to Huffman decoding, which it does a
//! symbol at a time through 8-bit lookups, reading bytes one by one to check each for
//! a marker. This module does that part itself:
//!
//! * the entropy-coded segment is unstuffed once (`0xFF 0x00` -> `0xFF`) into a buffer
//!   with zero padding, then read 8 bytes at a time into a 64-bit bit buffer with the
//!   branch-free refill;
//! * one lookup of 10 bits gives, for most AC codes, the zero run, the coefficient's
//!   value and the total length of code and value bits (the "fast AC" table of
//!   stb_image's decoder), and an end-of-block flag;
//!
//! and hands the coefficients to libjpeg-turbo's own AVX2 routines, linked from the
//! static library the `turbojpeg` crate builds: the accurate integer inverse DCT, the
//! "fancy" chroma upsampling and the YCbCr -> RGB conversion its decoder runs on this
//! CPU. The pixels are therefore libjpeg-turbo's by construction once the
//! coefficients are (tested against it on many sizes and qualities and on damaged
//! files), and no per-image setup is paid. Pure-Rust JPEG decoders use other
//! transforms and upsampling, so their pixels differ from OpenCV's (DLAS's).
//!
//! Anything else or unusual returns `None` and the caller decodes the file with
//! libjpeg-turbo, so that its errors and warnings still decide what a damaged file
//! gives: progressive or arithmetic coding, other sampling factors, 16-bit tables,
//! restart markers, Adobe or RGB colour, a JFIF version libjpeg warns about, a scan
//! that runs past its data or leaves bytes over, anything but EOI after the scan, a
//! code missing from its table, a run past the 64th coefficient. It needs AVX2 (the
//! routines are the AVX2 ones).

use super::Rgb8;

/// Bits looked up at once.
const FAST: u32 = 10;
/// End-of-block flag of a combined AC entry.
const EOB: i32 = 1 << 12;

/// Zig-zag position -> natural (row-major) index in an 8x8 block (JPEG figure A.6).
const NATURAL: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// A decoding table built from a DHT segment.
struct Huff {
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
    fn new(counts: &[u8; 16], syms: &[u8], dc: bool) -> Option<Huff> {
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
const PAD: usize = 512;

/// Reads the unstuffed entropy-coded data most significant bit first.
struct Bits<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pos: usize,
    /// Bits not yet consumed, in the high end; the bits below `cnt` are zero or the
    /// bits that follow.
    buf: u64,
    cnt: u32,
}

impl Bits<'_> {
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
    fn consumed(&self) -> usize {
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
fn block(
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

/// 64 coefficients or quantisation steps (natural order) as libjpeg-turbo's SIMD
/// transform reads them: 16-bit, 16-byte aligned (it loads some with `movdqa`).
#[repr(C, align(32))]
struct Coefs([i16; 64]);

extern "C" {
    /// libjpeg-turbo's AVX2 accurate inverse DCT (simd/x86_64/jidctint-avx2.asm),
    /// the transform its decoder runs on this CPU: linked from the same static
    /// library the `turbojpeg` crate builds, not part of its public API (the
    /// vendored version is pinned in Cargo.lock; a release without it fails to link).
    /// Writes 8 samples at `output_col` of each of the 8 rows `output_buf` points to.
    fn jsimd_idct_islow_avx2(
        dct_table: *const i16,
        coef_block: *const i16,
        output_buf: *const *mut u8,
        output_col: u32,
    );
}

extern "C" {
    /// libjpeg-turbo's AVX2 "fancy" 2x2 chroma upsampling (jdsample-avx2.asm): row
    /// `input_data[0]` with its neighbours `input_data[-1]` and `input_data[1]` into
    /// the two rows `(*output_data_ptr)[0..2]`. It reads and writes whole 32-sample
    /// blocks and stores one sample past `downsampled_width` in each input row.
    fn jsimd_h2v2_fancy_upsample_avx2(
        max_v_samp_factor: i32,
        downsampled_width: u32,
        input_data: *const *mut u8,
        output_data_ptr: *const *const *mut u8,
    );
    /// libjpeg-turbo's AVX2 YCbCr -> RGB conversion (jdcolext-avx2.asm): row
    /// `input_row` of the three component row arrays into `num_rows` RGB rows. It
    /// reads whole 32-sample blocks and writes exactly `out_width` pixels.
    fn jsimd_ycc_extrgb_convert_avx2(
        out_width: u32,
        input_buf: *const *const *mut u8,
        input_row: u32,
        output_buf: *const *mut u8,
        num_rows: i32,
    );
}

/// One block's samples into `out` (8 rows `stride` apart), by libjpeg-turbo's own
/// transform: the same samples for any coefficients.
#[inline(always)]
fn idct(coef: &Coefs, steps: &Coefs, out: &mut [u8], stride: usize) {
    assert!(out.len() >= 7 * stride + 8, "block outside its plane");
    let base = out.as_mut_ptr();
    // SAFETY: each row pointer is inside `out` with 8 bytes after it (asserted).
    let rows: [*mut u8; 8] = std::array::from_fn(|i| unsafe { base.add(i * stride) });
    // SAFETY: AVX2 was checked before decoding; both tables are 64 aligned i16s; the
    // transform writes 8 bytes at each row pointer (column 0) and nothing else.
    unsafe { jsimd_idct_islow_avx2(steps.0.as_ptr(), coef.0.as_ptr(), rows.as_ptr(), 0) };
}

/// The one sample libjpeg-turbo's AVX2 transform gives a block whose only non-zero
/// coefficient is its DC term, `coef` times `step`: dequantised and scaled in 16-bit
/// arithmetic (wrapping, as its `pmullw` and `psllw` do), descaled, clamped to the
/// signed byte range and centred. Equal to the transform's output for every 16-bit
/// product (tested exhaustively), so such blocks (flat areas: many chroma blocks) are
/// filled without running it.
#[inline(always)]
fn dc_sample(coef: i16, step: i16) -> u8 {
    let scaled = coef.wrapping_mul(step).wrapping_shl(2) as i32;
    (((scaled + 16) >> 5).clamp(-128, 127) + 128) as u8
}

/// One block of `dc_sample` into `out` (8 rows `stride` apart).
#[inline(always)]
fn fill_block(v: u8, out: &mut [u8], stride: usize) {
    for row in out.chunks_mut(stride).take(8) {
        row[..8].fill(v);
    }
}

/// One block's samples: the transform's, or its flat block when no AC coefficient
/// was stored (`ac` false).
#[inline(always)]
fn samples(ac: bool, coef: &Coefs, steps: &Coefs, out: &mut [u8], stride: usize) {
    if ac {
        idct(coef, steps, out, stride);
    } else {
        assert!(out.len() >= 7 * stride + 8, "block outside its plane");
        fill_block(dc_sample(coef.0[0], steps.0[0]), out, stride);
    }
}

/// What the headers say, for the one layout decoded here.
struct Frame {
    width: usize,
    height: usize,
    /// Quantisation steps of Y, Cb, Cr in natural order.
    steps: [[i32; 64]; 3],
    /// (DC, AC) table of Y, Cb, Cr.
    tables: [(usize, usize); 3],
    /// Offset of the entropy-coded segment.
    scan: usize,
}

/// Reads the markers up to the first scan; `None` for anything but a baseline (or
/// extended sequential Huffman) 8-bit YCbCr 4:2:0 frame with one interleaved scan of
/// all three components, no restart interval, no Adobe marker.
fn headers(bytes: &[u8], huff: &mut [[Option<Huff>; 4]; 2]) -> Option<Frame> {
    if bytes.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut quant: [Option<[i32; 64]>; 4] = [None; 4];
    // (id, quantisation table) of each frame component.
    let mut comps: Option<[(u8, usize); 3]> = None;
    let (mut width, mut height) = (0, 0);
    let mut at = 2;
    loop {
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        let marker = *bytes.get(at + 1)?;
        let len = u16::from_be_bytes([*bytes.get(at + 2)?, *bytes.get(at + 3)?]) as usize;
        let seg = bytes.get(at + 4..(at + 2 + len).max(at + 4))?;
        if len < 2 {
            return None;
        }
        match marker {
            // SOF0 / SOF1: 8-bit, three components: Y 2x2, Cb 1x1, Cr 1x1.
            0xC0 | 0xC1 => {
                if comps.is_some() || seg.len() != 6 + 3 * 3 || seg[0] != 8 || seg[5] != 3 {
                    return None;
                }
                height = u16::from_be_bytes([seg[1], seg[2]]) as usize;
                width = u16::from_be_bytes([seg[3], seg[4]]) as usize;
                let c = |i: usize| &seg[6 + 3 * i..9 + 3 * i];
                let sampling = [c(0)[1], c(1)[1], c(2)[1]];
                // Component ids R, G, B make libjpeg read the frame as RGB.
                let ids = [c(0)[0], c(1)[0], c(2)[0]];
                // libjpeg refuses sides above 65500 (JPEG_MAX_DIMENSION).
                let sides = (1..=65500).contains(&height) && (1..=65500).contains(&width);
                if sampling != [0x22, 0x11, 0x11] || ids == [b'R', b'G', b'B'] || !sides {
                    return None;
                }
                let mut cs = [(0u8, 0usize); 3];
                for (i, slot) in cs.iter_mut().enumerate() {
                    let t = c(i)[2] as usize;
                    if t > 3 || ids[..i].contains(&ids[i]) {
                        return None;
                    }
                    *slot = (ids[i], t);
                }
                comps = Some(cs);
            }
            0xC4 => {
                let mut s = seg;
                while !s.is_empty() {
                    let (class, id) = ((s[0] >> 4) as usize, (s[0] & 15) as usize);
                    if class > 1 || id > 3 || s.len() < 17 {
                        return None;
                    }
                    let counts: [u8; 16] = s[1..17].try_into().ok()?;
                    let n: usize = counts.iter().map(|&c| c as usize).sum();
                    let syms = s.get(17..17 + n)?;
                    huff[class][id] = Some(Huff::new(&counts, syms, class == 0)?);
                    s = &s[17 + n..];
                }
            }
            0xDB => {
                let mut s = seg;
                while !s.is_empty() {
                    // 16-bit tables are left to libjpeg-turbo.
                    if s[0] >> 4 != 0 || s[0] & 15 > 3 || s.len() < 65 {
                        return None;
                    }
                    let mut q = [0i32; 64];
                    for (zz, &v) in s[1..65].iter().enumerate() {
                        q[NATURAL[zz] as usize] = v as i32;
                    }
                    quant[(s[0] & 15) as usize] = Some(q);
                    s = &s[65..];
                }
            }
            // DRI: a zero interval is no restart interval.
            0xDD => {
                if seg.len() != 2 || seg != [0, 0] {
                    return None;
                }
            }
            // APP14 "Adobe" can make libjpeg read the frame as RGB.
            0xEE if seg.starts_with(b"Adobe") => return None,
            // A JFIF version other than 1.x is a libjpeg warning.
            0xE0 if seg.len() >= 14 && seg.starts_with(b"JFIF\0") && seg[5] != 1 => return None,
            0xE0..=0xEF | 0xFE => {}
            0xDA => {
                let cs = comps?;
                if seg.len() != 1 + 2 * 3 + 3 || seg[0] != 3 || seg[7..] != [0, 63, 0] {
                    return None;
                }
                let mut steps = [[0i32; 64]; 3];
                let mut tables = [(0, 0); 3];
                for i in 0..3 {
                    let (id, sel) = (seg[1 + 2 * i], seg[2 + 2 * i]);
                    let (d, a) = ((sel >> 4) as usize, (sel & 15) as usize);
                    if id != cs[i].0 || d > 3 || a > 3 {
                        return None;
                    }
                    huff[0][d].as_ref()?;
                    huff[1][a].as_ref()?;
                    steps[i] = quant[cs[i].1]?;
                    tables[i] = (d, a);
                }
                return Some(Frame {
                    width,
                    height,
                    steps,
                    tables,
                    scan: at + 2 + len,
                });
            }
            _ => return None,
        }
        at += 2 + len;
    }
}

/// The scan's entropy-coded bytes unstuffed, with [`PAD`] zero bytes after them, and
/// their count; `None` unless the scan ends with EOI directly after it.
fn unstuff(data: &[u8]) -> Option<(Vec<u8>, usize)> {
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

/// `bytes` decoded to RGB as libjpeg-turbo would with its default (accurate) settings,
/// or `None` when this decoder leaves the file to libjpeg-turbo (see the module
/// documentation). Once the headers are read and taken, `go(width, height)` is asked
/// whether to decode at all (it checks the pixel limit and the region wanted); it is
/// not called when the headers are left to libjpeg-turbo.
pub(super) fn decode(bytes: &[u8], go: impl FnOnce(usize, usize) -> bool) -> Option<Rgb8> {
    if !std::arch::is_x86_feature_detected!("avx2") {
        return None;
    }
    decode_420(bytes, go)
}

fn decode_420(bytes: &[u8], go: impl FnOnce(usize, usize) -> bool) -> Option<Rgb8> {
    let mut huff: [[Option<Huff>; 4]; 2] = Default::default();
    let f = headers(bytes, &mut huff)?;
    if !go(f.width, f.height) {
        return None;
    }
    let (data, real) = unstuff(&bytes[f.scan..])?;
    let mut bits = Bits {
        data: &data,
        pos: 0,
        buf: 0,
        cnt: 0,
    };
    let (mx, my) = (f.width.div_ceil(16), f.height.div_ceil(16));
    let (w, h) = (f.width, f.height);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    // Rows with room for libjpeg-turbo's whole 32-sample blocks (and the upsampler's
    // extra sample) past the MCUs, zeroed: those routines read that padding too.
    let ys = 16 * mx + 32;
    let cs = (8 * mx).next_multiple_of(32) + 32;
    let mut y = vec![0u8; ys * 16 * my];
    let mut cb = vec![0u8; cs * 8 * my];
    let mut cr = vec![0u8; cs * 8 * my];
    let tab = |i: usize| {
        let (d, a) = f.tables[i];
        (huff[0][d].as_ref().unwrap(), huff[1][a].as_ref().unwrap())
    };
    let t = [tab(0), tab(1), tab(2)];
    let mut pred = [0i32; 3];
    let steps = f.steps.map(|q| Coefs(q.map(|v| v as i16)));
    let mut coef = Coefs([0; 64]);
    for r in 0..my {
        for c in 0..mx {
            if bits.pos > real + 8 {
                // Decoding zeros past the end: libjpeg-turbo warns of that.
                return None;
            }
            for (dx, dy) in [(0, 0), (8, 0), (0, 8), (8, 8)] {
                coef.0 = [0; 64];
                let ac = block(&mut bits, t[0].0, t[0].1, &mut pred[0], &mut coef.0)?;
                let out = &mut y[(16 * r + dy) * ys + 16 * c + dx..];
                samples(ac, &coef, &steps[0], out, ys);
            }
            for (k, plane) in [&mut cb, &mut cr].into_iter().enumerate() {
                coef.0 = [0; 64];
                let (dc, ac) = t[k + 1];
                let ac = block(&mut bits, dc, ac, &mut pred[k + 1], &mut coef.0)?;
                samples(
                    ac,
                    &coef,
                    &steps[k + 1],
                    &mut plane[8 * r * cs + 8 * c..],
                    cs,
                );
            }
        }
    }
    // Every bit of the scan used, and none past it: libjpeg-turbo reads no more and
    // no less without a warning (its encoder pads the last byte with ones).
    if bits.consumed() > 8 * real || bits.consumed().div_ceil(8) != real {
        return None;
    }
    let rgb = colour(&mut y, ys, [&mut cb, &mut cr], cs, (w, h), (cw, ch));
    Some(Rgb8::new(w, h, rgb))
}

/// libjpeg-turbo's output stage on the decoded planes, with its own AVX2 routines:
/// each chroma row upsampled into two full-width rows (its neighbours above and
/// below repeated at the top and bottom edges, as libjpeg's context rows do), then
/// converted with its luma rows to packed RGB.
fn colour(
    y: &mut [u8],
    ys: usize,
    chroma: [&mut Vec<u8>; 2],
    cs: usize,
    (w, h): (usize, usize),
    (cw, ch): (usize, usize),
) -> Vec<u8> {
    let up_len = 2 * cs + 64;
    // Two upsampled rows per chroma component.
    let mut up = vec![0u8; 4 * up_len];
    let mut rgb: Vec<u8> = Vec::with_capacity(w * h * 3 + 64);
    let [cb, cr] = chroma;
    let (cb, cr) = (cb.as_mut_ptr(), cr.as_mut_ptr());
    let upp = up.as_mut_ptr();
    let out = rgb.as_mut_ptr();
    for r in 0..ch {
        let near = [r.saturating_sub(1), r, (r + 1).min(ch - 1)];
        // SAFETY: all pointers are rows inside their buffers: chroma rows `cs` bytes
        // apart with at least 32 bytes past the 32-rounded chroma width (the
        // upsampler's blocks and its extra sample); upsampled rows `up_len` apart,
        // room for 2 x that width plus a block; luma rows `ys` apart with 32 bytes
        // past the MCUs; RGB rows `3 w` apart in a buffer of `3 w h` bytes (plus a
        // block), each written whole by the conversion before `set_len`.
        unsafe {
            for (k, plane) in [cb, cr].into_iter().enumerate() {
                let rows = near.map(|i| plane.add(i * cs));
                let outs = [upp.add(2 * k * up_len), upp.add((2 * k + 1) * up_len)];
                jsimd_h2v2_fancy_upsample_avx2(2, cw as u32, rows.as_ptr().add(1), &outs.as_ptr());
            }
            let lines = (h - 2 * r).min(2);
            let luma = [
                y.as_mut_ptr().add(2 * r * ys),
                y.as_mut_ptr().add((2 * r + 1).min(h - 1) * ys),
            ];
            let cbs = [upp, upp.add(up_len)];
            let crs = [upp.add(2 * up_len), upp.add(3 * up_len)];
            let image = [luma.as_ptr(), cbs.as_ptr(), crs.as_ptr()];
            let rows = [
                out.add(2 * r * w * 3),
                out.add((2 * r + 1).min(h - 1) * w * 3),
            ];
            jsimd_ycc_extrgb_convert_avx2(w as u32, image.as_ptr(), 0, rows.as_ptr(), lines as i32);
        }
    }
    // SAFETY: the conversion wrote all `w` pixels of every one of the `h` rows.
    unsafe { rgb.set_len(w * h * 3) };
    rgb
}

#[cfg(test)]
mod tests {
    use turbojpeg::{Compressor, Image, PixelFormat, Subsamp};

    use super::*;
    use crate::image::decode::libjpeg_turbo_only;
    use crate::image::{decode_bytes, DecodeOptions};

    /// Gradients, a 0/255 checkerboard, flat areas and noise (the encoder's test
    /// image): every coefficient magnitude, long zero runs, bytes to unstuff.
    fn picture(w: usize, h: usize, seed: u32) -> Rgb8 {
        crate::image::encode::tests::hard_image(w, h, seed as u64)
    }

    fn jpeg(
        img: &Rgb8,
        quality: i32,
        subsamp: Subsamp,
        tweak: impl Fn(&mut Compressor),
    ) -> Vec<u8> {
        let mut c = Compressor::new().unwrap();
        c.set_quality(quality).unwrap();
        c.set_subsamp(subsamp).unwrap();
        tweak(&mut c);
        c.compress_to_vec(Image {
            pixels: &img.data[..],
            width: img.width,
            pitch: img.width * 3,
            height: img.height,
            format: PixelFormat::RGB,
        })
        .unwrap()
    }

    fn ours(bytes: &[u8]) -> Option<Rgb8> {
        decode(bytes, |_, _| true)
    }

    fn avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    /// Every 4:2:0 file libjpeg-turbo writes, at any size (odd ones included: the
    /// edge chroma is replicated as libjpeg does) and quality, with optimised Huffman
    /// tables too, decodes here to exactly libjpeg-turbo's pixels.
    #[test]
    fn baseline_420_decodes_to_libjpeg_turbos_pixels() {
        if !avx2() {
            return assert!(
                ours(&jpeg(&picture(16, 16, 1), 90, Subsamp::Sub2x2, |_| ())).is_none()
            );
        }
        let sizes = [
            (1, 1),
            (2, 2),
            (7, 5),
            (8, 8),
            (16, 16),
            (17, 33),
            (31, 2),
            (129, 255),
            (256, 256),
            (300, 201),
        ];
        for (i, &(w, h)) in sizes.iter().enumerate() {
            let img = picture(w, h, i as u32);
            for quality in [1, 10, 50, 75, 90, 95, 100] {
                for optimize in [false, true] {
                    let bytes = jpeg(&img, quality, Subsamp::Sub2x2, |c| {
                        c.set_optimize(optimize).unwrap()
                    });
                    let want = libjpeg_turbo_only(&bytes).unwrap();
                    let got = ours(&bytes)
                        .unwrap_or_else(|| panic!("{w}x{h} q{quality} left to libjpeg-turbo"));
                    assert!(
                        got == want,
                        "{w}x{h} at quality {quality} (optimised {optimize}) differs"
                    );
                }
            }
        }
    }

    /// Other layouts and codings are left to libjpeg-turbo.
    #[test]
    fn other_layouts_are_left_to_libjpeg_turbo() {
        let img = picture(40, 24, 3);
        for subsamp in [
            Subsamp::None,
            Subsamp::Sub2x1,
            Subsamp::Sub1x2,
            Subsamp::Gray,
        ] {
            assert!(
                ours(&jpeg(&img, 90, subsamp, |_| ())).is_none(),
                "{subsamp:?}"
            );
        }
        assert!(ours(&jpeg(&img, 90, Subsamp::Sub2x2, |c| c
            .set_progressive(true)
            .unwrap()))
        .is_none());
        // Arithmetic coding, sequential (SOF9) and progressive (SOF10): the same 4:2:0
        // layout, decodable only by libjpeg-turbo.
        for progressive in [false, true] {
            let bytes = jpeg(&img, 90, Subsamp::Sub2x2, |c| {
                c.set_arithmetic(true).unwrap();
                c.set_progressive(progressive).unwrap();
            });
            let sof = if progressive { 0xCA } else { 0xC9 };
            assert!(
                bytes.windows(2).any(|w| w == [0xFF, sof]),
                "no SOF{sof:02X}"
            );
            assert!(
                ours(&bytes).is_none(),
                "arithmetic, progressive {progressive}"
            );
            let ours_or_turbo = decode_bytes(&bytes, &DecodeOptions::default()).unwrap();
            let plain = decode_bytes(
                &jpeg(&img, 90, Subsamp::Sub2x2, |c| {
                    c.set_progressive(progressive).unwrap()
                }),
                &DecodeOptions::default(),
            )
            .unwrap();
            // Entropy coding is lossless: the same coefficients, the same pixels.
            assert!(
                ours_or_turbo == plain,
                "arithmetic, progressive {progressive}"
            );
        }
        // Restart markers every MCU.
        let mut rst = jpeg(&img, 90, Subsamp::Sub2x2, |_| ());
        let sos = rst.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        rst.splice(sos..sos, [0xFF, 0xDD, 0, 4, 0, 1]);
        assert!(ours(&rst).is_none());
    }

    /// Whatever happens to the bytes of a file, a decode here is only ever one that
    /// libjpeg-turbo makes without error or warning, with the same pixels; every
    /// other case is left to it.
    #[test]
    fn damaged_files_decode_here_only_as_libjpeg_turbo_decodes_them() {
        if !avx2() {
            return;
        }
        let good = jpeg(&picture(48, 40, 9), 85, Subsamp::Sub2x2, |_| ());
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for cut in (0..good.len()).step_by(7) {
            cases.push(good[..cut].to_vec());
        }
        let mut state = 12345u32;
        for _ in 0..20000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let mut bad = good.clone();
            let at = state as usize % bad.len();
            bad[at] = match state >> 28 {
                0 => 0xFF,
                1 => 0x00,
                _ => bad[at] ^ (1 << ((state >> 8) % 8)),
            };
            cases.push(bad);
        }
        // Bytes past EOI are never read, by either.
        let mut tail = good.clone();
        tail.extend_from_slice(b"trailing junk");
        cases.push(tail.clone());
        let (mut taken, mut left) = (0, 0);
        for bytes in &cases {
            match ours(bytes) {
                Some(img) => {
                    let want =
                        libjpeg_turbo_only(bytes).expect("decoded here, refused by libjpeg-turbo");
                    assert!(
                        img == want,
                        "decoded here with other pixels than libjpeg-turbo's"
                    );
                    taken += 1;
                }
                None => left += 1,
            }
        }
        assert!(ours(&tail).is_some());
        // Many flips only change pixels (both decode them); many others are damage.
        assert!(taken > 100 && left > 100, "{taken} taken, {left} left");
    }

    /// A block with only a DC term gives `dc_sample` everywhere, for every 16-bit
    /// product of coefficient and step, and the product is all that counts.
    #[test]
    fn dc_only_blocks_are_the_transforms_own_samples() {
        if !avx2() {
            return;
        }
        let transform = |coef: i16, step: i16| {
            let mut c = Coefs([0; 64]);
            c.0[0] = coef;
            let mut q = Coefs([1; 64]);
            q.0[0] = step;
            let mut out = [0u8; 64];
            idct(&c, &q, &mut out, 8);
            out
        };
        for v in i16::MIN..=i16::MAX {
            let want = transform(v, 1);
            assert!(want.iter().all(|&s| s == want[0]), "{v}: not flat");
            assert_eq!(dc_sample(v, 1), want[0], "product {v}");
        }
        let mut state = 99u32;
        for _ in 0..100_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let (coef, step) = (state as i16, (state >> 16) as u8 as i16);
            assert_eq!(
                dc_sample(coef, step),
                transform(coef, step)[0],
                "{coef} x {step}"
            );
        }
    }

    /// Coefficients far past what 8-bit pixels give (a crafted file) still decode to
    /// libjpeg-turbo's samples: the transform is its own, 16-bit wrapping included.
    #[test]
    fn coefficients_out_of_pixel_range_decode_as_libjpeg_turbo_does() {
        if !avx2() {
            return;
        }
        // Quality 100 (all steps 1), then every luma step raised to 255: the same
        // coefficients now dequantise far past the range of real pixels.
        let mut bytes = jpeg(&picture(32, 32, 4), 100, Subsamp::Sub2x2, |_| ());
        let dqt = bytes.windows(2).position(|w| w == [0xFF, 0xDB]).unwrap();
        for b in &mut bytes[dqt + 5..dqt + 5 + 64] {
            *b = 255;
        }
        assert!(ours(&bytes).unwrap() == libjpeg_turbo_only(&bytes).unwrap());
    }
}
