//! A JPEG file's marker segments (ITU-T T.81 annex B), read in one place: the block
//! coder's tables ([`super::encoder_tables`]), our decoder's headers
//! ([`super::baseline`]) and the frame size that `inspect` reads ([`frame_size`]) all
//! walk the segments here.
//!
//! A file starts with SOI (0xFF 0xD8). Each marker after it is 0xFF and a code byte
//! (after any number of 0xFF fill bytes), and all but a few codes are followed by a
//! segment: a 16-bit big-endian length that counts itself, then the body. [`Markers`]
//! walks them; the functions below read the bodies of the segments the readers use.
//! What each reader accepts is its own decision.

/// Zig-zag position -> natural (row-major) index in an 8x8 block (JPEG figure A.6).
pub(crate) const NATURAL: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Baseline frame header.
pub(crate) const SOF0: u8 = 0xC0;
/// Extended sequential frame header, Huffman-coded.
pub(crate) const SOF1: u8 = 0xC1;
/// Huffman tables.
pub(crate) const DHT: u8 = 0xC4;
/// Start of image.
pub(crate) const SOI: u8 = 0xD8;
/// End of image.
pub(crate) const EOI: u8 = 0xD9;
/// Scan header; the entropy-coded data follows it.
pub(crate) const SOS: u8 = 0xDA;
/// Quantisation tables.
pub(crate) const DQT: u8 = 0xDB;
/// Restart interval.
pub(crate) const DRI: u8 = 0xDD;
/// Application segment 0 (JFIF).
pub(crate) const APP0: u8 = 0xE0;
/// Application segment 14 (Adobe).
pub(crate) const APP14: u8 = 0xEE;

/// Whether `code` is an application segment (APP0-APP15) or a comment: data for other
/// programs, which a decoder may skip.
pub(crate) fn is_app_or_comment(code: u8) -> bool {
    matches!(code, 0xE0..=0xEF | 0xFE)
}

/// Whether `code` is a frame header: SOF0-SOF15, which leave out DHT (0xC4), JPG
/// (0xC8) and DAC (0xCC).
pub(crate) fn is_frame_header(code: u8) -> bool {
    matches!(code, 0xC0..=0xCF) && ![DHT, 0xC8, 0xCC].contains(&code)
}

/// Whether `code` stands alone, without a segment: TEM, RST0-RST7, SOI, EOI.
pub(crate) fn stands_alone(code: u8) -> bool {
    matches!(code, 0x01 | 0xD0..=0xD9)
}

/// Why [`Markers`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The bytes end first (more of the file may go on).
    End,
    /// The file does not start with SOI.
    NoSoi,
    /// This byte stands where a marker should start.
    NotMarker(u8),
    /// A segment declares this length, below the 2 bytes of the length itself.
    Length(u16),
}

/// A marker's code, and the 0xFF fill bytes before it.
pub(crate) struct Marker {
    pub code: u8,
    pub fill: usize,
}

/// Walks a JPEG's markers and segments from its start.
pub(crate) struct Markers<'a> {
    jpeg: &'a [u8],
    /// The next byte to read.
    pos: usize,
}

impl<'a> Markers<'a> {
    /// A walk of `jpeg`, after its SOI marker.
    pub(crate) fn new(jpeg: &'a [u8]) -> Result<Markers<'a>, Stop> {
        match jpeg.get(..2) {
            None => Err(Stop::End),
            Some([0xFF, SOI]) => Ok(Markers { jpeg, pos: 2 }),
            Some(_) => Err(Stop::NoSoi),
        }
    }

    /// The next marker, after any fill bytes. Its segment, if it has one, is read next
    /// with [`Markers::segment`].
    pub(crate) fn marker(&mut self) -> Result<Marker, Stop> {
        let first = *self.jpeg.get(self.pos).ok_or(Stop::End)?;
        if first != 0xFF {
            return Err(Stop::NotMarker(first));
        }
        let mut at = self.pos + 1;
        loop {
            let code = *self.jpeg.get(at).ok_or(Stop::End)?;
            at += 1;
            if code != 0xFF {
                let fill = at - self.pos - 2;
                self.pos = at;
                return Ok(Marker { code, fill });
            }
        }
    }

    /// The body of the segment after the marker just read (its bytes after the
    /// length), moving past it.
    pub(crate) fn segment(&mut self) -> Result<&'a [u8], Stop> {
        let len = match self.jpeg.get(self.pos..self.pos + 2) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => return Err(Stop::End),
        };
        if len < 2 {
            return Err(Stop::Length(len));
        }
        let end = self.pos + len as usize;
        let body = self.jpeg.get(self.pos + 2..end).ok_or(Stop::End)?;
        self.pos = end;
        Ok(body)
    }

    /// The next marker's code and its segment's body, for readers of the files an
    /// encoder writes: `None` for fill bytes, a marker without a segment, or a file
    /// that ends or goes wrong first.
    pub(crate) fn next_segment(&mut self) -> Option<(u8, &'a [u8])> {
        let marker = self.marker().ok()?;
        if marker.fill > 0 || stands_alone(marker.code) {
            return None;
        }
        Some((marker.code, self.segment().ok()?))
    }

    /// Offset of the next byte: just past the last segment (or marker) read.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// The bytes from [`Markers::offset`] on, however few.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.jpeg[self.pos..]
    }
}

/// A table of a DQT segment.
pub(crate) struct QuantTable {
    /// Its slot, as stored (0-3 in a valid file).
    pub id: u8,
    /// Whether its values have 16 bits (precision 1) rather than 8.
    pub wide: bool,
    /// The quantisation steps, in natural order.
    pub steps: [u16; 64],
}

/// The tables of a DQT segment's body, in order; an item `None`, the last, for a
/// table of an unknown precision or one cut short.
pub(crate) fn quant_tables(body: &[u8]) -> impl Iterator<Item = Option<QuantTable>> + '_ {
    let mut rest = body;
    std::iter::from_fn(move || {
        let (&pq_tq, values) = rest.split_first()?;
        rest = &[];
        let wide = match pq_tq >> 4 {
            0 => false,
            1 => true,
            _ => return Some(None),
        };
        let size = if wide { 128 } else { 64 };
        let Some(raw) = values.get(..size) else {
            return Some(None);
        };
        let mut steps = [0u16; 64];
        for (k, &natural) in NATURAL.iter().enumerate() {
            steps[natural as usize] = match wide {
                false => raw[k] as u16,
                true => u16::from_be_bytes([raw[2 * k], raw[2 * k + 1]]),
            };
        }
        rest = &values[size..];
        Some(Some(QuantTable {
            id: pq_tq & 15,
            wide,
            steps,
        }))
    })
}

/// A table of a DHT segment.
pub(crate) struct HuffmanTable<'a> {
    /// 0 for DC, 1 for AC, as stored (0-15).
    pub class: u8,
    /// Its slot, as stored (0-3 in a valid file).
    pub id: u8,
    /// How many codes have each length, 1 to 16 bits.
    pub counts: [u8; 16],
    /// The symbols, in the order of their codes.
    pub symbols: &'a [u8],
}

/// The tables of a DHT segment's body, in order; an item `None`, the last, for a
/// table cut short.
pub(crate) fn huffman_tables(body: &[u8]) -> impl Iterator<Item = Option<HuffmanTable<'_>>> {
    let mut rest = body;
    std::iter::from_fn(move || {
        let (&tc_th, after) = rest.split_first()?;
        rest = &[];
        let Some(counts) = after.get(..16) else {
            return Some(None);
        };
        let counts: [u8; 16] = counts.try_into().expect("16 bytes");
        let n: usize = counts.iter().map(|&c| c as usize).sum();
        let Some(symbols) = after.get(16..16 + n) else {
            return Some(None);
        };
        rest = &after[16 + n..];
        Some(Some(HuffmanTable {
            class: tc_th >> 4,
            id: tc_th & 15,
            counts,
            symbols,
        }))
    })
}

/// A frame header (the body of an SOF segment).
pub(crate) struct Frame<'a> {
    /// Bits per sample.
    pub precision: u8,
    pub height: u16,
    pub width: u16,
    /// The component count and the components, as stored.
    components: &'a [u8],
}

/// A component of a frame.
#[derive(Clone, Copy)]
pub(crate) struct Component {
    pub id: u8,
    /// Sampling factors: horizontal << 4 | vertical.
    pub sampling: u8,
    /// Its quantisation table's slot.
    pub table: u8,
}

impl<'a> Frame<'a> {
    /// The frame header at the start of `body`; `None` if it ends before the width
    /// (the components are read by [`Frame::components`]).
    pub(crate) fn parse(body: &'a [u8]) -> Option<Frame<'a>> {
        let head = body.get(..5)?;
        Some(Frame {
            precision: head[0],
            height: u16::from_be_bytes([head[1], head[2]]),
            width: u16::from_be_bytes([head[3], head[4]]),
            components: &body[5..],
        })
    }

    /// Its components, if it declares `N` and the segment holds exactly those.
    pub(crate) fn components<const N: usize>(&self) -> Option<[Component; N]> {
        let (&n, specs) = self.components.split_first()?;
        if n as usize != N || specs.len() != 3 * N {
            return None;
        }
        Some(std::array::from_fn(|i| Component {
            id: specs[3 * i],
            sampling: specs[3 * i + 1],
            table: specs[3 * i + 2],
        }))
    }
}

/// A scan header (the body of an SOS segment).
pub(crate) struct Scan<'a> {
    /// Per component: its id, then its DC << 4 | AC Huffman table slots.
    components: &'a [u8],
    /// Spectral selection start and end, and successive approximation (Ah << 4 | Al).
    spectral: [u8; 3],
}

/// A component of a scan.
#[derive(Clone, Copy)]
pub(crate) struct ScanComponent {
    /// The frame component's id.
    pub id: u8,
    /// Its DC Huffman table's slot.
    pub dc: u8,
    /// Its AC Huffman table's slot.
    pub ac: u8,
}

impl<'a> Scan<'a> {
    /// The scan header in `body`; `None` unless the body holds exactly the components
    /// it declares.
    pub(crate) fn parse(body: &'a [u8]) -> Option<Scan<'a>> {
        let (&n, rest) = body.split_first()?;
        let n = n as usize;
        if rest.len() != 2 * n + 3 {
            return None;
        }
        Some(Scan {
            components: &rest[..2 * n],
            spectral: [rest[2 * n], rest[2 * n + 1], rest[2 * n + 2]],
        })
    }

    /// Whether it codes whole blocks in one pass, as a sequential scan does: spectral
    /// selection 0 to 63, no successive approximation.
    pub(crate) fn is_sequential(&self) -> bool {
        self.spectral == [0, 63, 0]
    }

    /// Its components, if it has exactly `N`.
    pub(crate) fn components<const N: usize>(&self) -> Option<[ScanComponent; N]> {
        if self.components.len() != 2 * N {
            return None;
        }
        Some(std::array::from_fn(|i| {
            let tables = self.components[2 * i + 1];
            ScanComponent {
                id: self.components[2 * i],
                dc: tables >> 4,
                ac: tables & 15,
            }
        }))
    }
}

/// The JFIF version `(major, minor)` an APP0 segment's body declares, if it is a JFIF
/// header.
pub(crate) fn jfif_version(body: &[u8]) -> Option<(u8, u8)> {
    (body.len() >= 14 && body.starts_with(b"JFIF\0")).then(|| (body[5], body[6]))
}

/// Whether an APP14 segment's body is Adobe's, whose colour transform flag can make
/// libjpeg read a three-component frame as RGB.
pub(crate) fn is_adobe(body: &[u8]) -> bool {
    body.starts_with(b"Adobe")
}

/// The frame size `(width, height)` a JPEG's first frame header (any of SOF0-SOF15)
/// declares, from the file's first bytes `head` and reading no further: the segments
/// before it are skipped, not parsed, its own length is not checked, and no scan is
/// read (the decoder checks the rest). `Ok(None)` when `head` ends first: more of the
/// file may hold it.
pub(crate) fn frame_size(head: &[u8]) -> Result<Option<(u32, u32)>, String> {
    let mut markers = match Markers::new(head) {
        Ok(markers) => markers,
        Err(Stop::End) => return Ok(None),
        Err(_) => return Err("no start-of-image marker".into()),
    };
    loop {
        let code = match markers.marker() {
            Ok(marker) => marker.code,
            Err(Stop::NotMarker(b)) => {
                return Err(format!("0x{b:02X} where a marker should start"))
            }
            Err(_) => return Ok(None),
        };
        match code {
            SOI => return Err("a second start-of-image marker".into()),
            EOI | SOS => return Err("no frame header before the scan".into()),
            // TEM, RST0-RST7.
            _ if stands_alone(code) => continue,
            _ if is_frame_header(code) => {
                // Past its length: precision, height, width.
                let frame = markers.rest().get(2..).and_then(Frame::parse);
                return Ok(frame.map(|f| (f.width as u32, f.height as u32)));
            }
            _ => match markers.segment() {
                Ok(_) => {}
                Err(Stop::Length(len)) => {
                    return Err(format!("marker 0x{code:02X} has a segment of length {len}"))
                }
                Err(_) => return Ok(None),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A libjpeg-turbo file reads back as it was written: JFIF, two 8-bit tables,
    /// a 4:2:0 baseline frame, four Huffman tables, one sequential scan.
    #[test]
    fn an_encoders_segments_read_back() {
        let img = crate::image::Rgb8::new(24, 16, (0..24 * 16 * 3).map(|i| i as u8).collect());
        let mut jpeg = Vec::new();
        crate::image::encode_jpeg(img.view(), 75, &mut jpeg).unwrap();
        let mut markers = Markers::new(&jpeg).unwrap();
        let (mut quant, mut huffman) = (0, 0);
        loop {
            let (code, body) = markers.next_segment().unwrap();
            match code {
                APP0 => assert_eq!(jfif_version(body).map(|v| v.0), Some(1)),
                DQT => {
                    for t in quant_tables(body) {
                        let t = t.unwrap();
                        assert!(!t.wide && t.id < 2 && t.steps.iter().all(|&s| s > 0));
                        quant += 1;
                    }
                }
                SOF0 => {
                    let frame = Frame::parse(body).unwrap();
                    assert_eq!((frame.precision, frame.width, frame.height), (8, 24, 16));
                    let c = frame.components::<3>().unwrap();
                    assert_eq!(c.map(|c| c.sampling), [0x22, 0x11, 0x11]);
                    assert!(frame.components::<1>().is_none());
                }
                DHT => {
                    for t in huffman_tables(body) {
                        let t = t.unwrap();
                        let n: usize = t.counts.iter().map(|&c| c as usize).sum();
                        assert!(t.class < 2 && t.id < 2 && t.symbols.len() == n);
                        huffman += 1;
                    }
                }
                SOS => {
                    let scan = Scan::parse(body).unwrap();
                    assert!(scan.is_sequential() && scan.components::<3>().is_some());
                    break;
                }
                other => panic!("marker 0x{other:02X}"),
            }
        }
        assert_eq!((quant, huffman), (2, 4));
        assert_eq!(
            jpeg[markers.offset() - 14..markers.offset() - 12],
            [0xFF, SOS]
        );
    }

    /// Fill bytes and markers without a segment are read as such; damage stops the
    /// walk with its reason.
    #[test]
    fn walks_stop_with_their_reason() {
        let mut m = Markers::new(&[0xFF, SOI, 0xFF, 0xFF, 0xD3, 0xFF, 0xFE, 0, 3, 7]).unwrap();
        let rst = m.marker().unwrap();
        assert_eq!((rst.code, rst.fill), (0xD3, 1));
        assert!(stands_alone(rst.code));
        assert_eq!(m.marker().unwrap().code, 0xFE);
        assert_eq!(m.segment(), Ok(&[7u8][..]));
        assert_eq!(m.marker().err(), Some(Stop::End));
        assert_eq!(Markers::new(&[0xFF]).err(), Some(Stop::End));
        assert_eq!(Markers::new(&[0xFF, 0xD9]).err(), Some(Stop::NoSoi));
        let mut m = Markers::new(&[0xFF, SOI, 0x12]).unwrap();
        assert_eq!(m.marker().err(), Some(Stop::NotMarker(0x12)));
        let mut m = Markers::new(&[0xFF, SOI, 0xFF, 0xE1, 0, 1]).unwrap();
        m.marker().unwrap();
        assert_eq!(m.segment(), Err(Stop::Length(1)));
        let mut m = Markers::new(&[0xFF, SOI, 0xFF, 0xFF, 0xE1, 0, 2]).unwrap();
        assert!(m.next_segment().is_none(), "fill bytes");
    }
}
