//! What libjpeg-turbo's encoder writes at one quality: its headers, quantisation
//! tables and Huffman codes, read from a small JPEG it encoded. The block coder
//! ([`super::blocks`]) writes tiles with them, and [`super::requantise`] quantises
//! with them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Zig-zag position -> natural (row-major) index in an 8x8 block (JPEG figure A.6).
pub(super) const NATURAL: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// A Huffman table: per symbol, its code shifted left by 8 bits and its length in
/// the low 8 bits (length 0: symbol absent).
#[derive(Clone)]
pub(super) struct Huff {
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
    pub(super) fn with_value(&self, sym: usize, value: u32, extra: u32) -> (u32, u32) {
        let e = self.entry[sym];
        debug_assert!(e != 0, "symbol {sym} missing from the Huffman table");
        (((e >> 8) << extra) | value, (e & 0xFF) + extra)
    }
}

/// What one component is coded with.
#[derive(Clone)]
pub(super) struct Comp {
    /// Quantisation step times 8 (the DCT's output scale), natural order.
    pub(super) divisor: [f32; 64],
    pub(super) dc: Huff,
    pub(super) ac: Huff,
}

/// Everything libjpeg-turbo's output at one quality fixes: headers and tables.
pub(crate) struct Tables {
    /// SOI to the end of SOS.
    pub(super) header: Vec<u8>,
    /// Offset of the frame's height (then width) in `header`.
    pub(super) sof_dims: usize,
    pub(super) comps: [Comp; 3],
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
    pub(crate) fn at(
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
