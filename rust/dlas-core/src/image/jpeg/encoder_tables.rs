//! What libjpeg-turbo's encoder writes at one quality: its headers, quantisation
//! tables and Huffman codes, read from a small JPEG it encoded. The block coder
//! ([`super::blocks`]) writes tiles with them, and [`super::requantise`] quantises
//! with them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::markers::{self, Component, Markers};

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
        let mut qt: [Option<[u16; 64]>; 4] = [None; 4];
        let mut dht: [[Option<Huff>; 4]; 2] = Default::default();
        let mut frame: Option<([Component; 3], usize)> = None;
        let mut segments = Markers::new(jpeg).ok()?;
        loop {
            let (marker, body) = segments.next_segment()?;
            match marker {
                _ if markers::is_app_or_comment(marker) => {}
                markers::DQT => {
                    for table in markers::quant_tables(body) {
                        let table = table?;
                        *qt.get_mut(table.id as usize)? = Some(table.steps);
                    }
                }
                markers::SOF0 => {
                    let f = markers::Frame::parse(body)?;
                    let c = f.components::<3>()?;
                    if f.precision != 8 || c.map(|c| c.sampling) != [0x22, 0x11, 0x11] {
                        return None;
                    }
                    // The height, then the width, follow the precision.
                    let dims = segments.offset() - body.len() + 1;
                    frame = Some((c, dims));
                }
                markers::DHT => {
                    for table in markers::huffman_tables(body) {
                        let t = table?;
                        let slot = dht.get_mut(t.class as usize)?.get_mut(t.id as usize)?;
                        *slot = Some(Huff::new(&t.counts, t.symbols)?);
                    }
                }
                markers::SOS => {
                    let (c, sof_dims) = frame?;
                    let scan = markers::Scan::parse(body)?;
                    let selectors = scan.components::<3>()?;
                    if !scan.is_sequential() {
                        return None;
                    }
                    let mut comps = Vec::with_capacity(3);
                    for (frame_comp, scan_comp) in c.iter().zip(selectors) {
                        if scan_comp.id != frame_comp.id {
                            return None;
                        }
                        let q = qt.get(frame_comp.table as usize)?.as_ref()?;
                        let mut divisor = [0f32; 64];
                        for (d, &step) in divisor.iter_mut().zip(q) {
                            if step == 0 {
                                return None;
                            }
                            *d = 8.0 * step as f32;
                        }
                        let comp = Comp {
                            divisor,
                            dc: dht[0].get(scan_comp.dc as usize)?.clone()?,
                            ac: dht[1].get(scan_comp.ac as usize)?.clone()?,
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
                        header: jpeg[..segments.offset()].to_vec(),
                        sof_dims,
                        comps,
                    });
                }
                _ => return None,
            }
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
