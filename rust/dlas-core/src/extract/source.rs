//! One source image → its chunk(s): docs/spec.md §2 steps 1-5, without touching DST.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::grid::{centre, positions, ref_factor, width};
use super::options::{ExtractOptions, Level};
use crate::error::{CoreError, Result};
use crate::image::{
    decode_file, decode_file_region, encode_jpeg, resize_area, DecodeOptions, Region, Rgb8,
    Rgb8View, TileSource,
};

/// One encoded tile and its place in the ref image.
#[derive(Debug)]
pub struct Tile {
    pub jpeg: Vec<u8>,
    pub centre: (i64, i64),
    pub width: i64,
}

/// Everything one chunk folder will hold.
#[derive(Debug)]
pub struct Chunk {
    /// Index of the chunk among the source's parts (0, or 0/1 for left/right halves).
    pub part: usize,
    pub ref_jpeg: Vec<u8>,
    pub tiles: Vec<Tile>,
}

/// What became of one source.
#[derive(Debug)]
pub enum Outcome {
    /// At least one chunk with tiles.
    Extracted { chunks: Vec<Chunk>, pixels: u64 },
    /// Skipped by a rule (too small, excluded, masked out): not a failure.
    Skipped { reason: String, pixels: u64 },
    /// Could not be read or decoded.
    Failed { reason: String },
}

/// Processes one source. Never panics on bad input; failures are in the outcome.
pub fn process_source(path: &Path, opts: &ExtractOptions, levels: &[Level]) -> Outcome {
    process_source_until(path, opts, levels, &|| false)
}

/// [`process_source`], giving up between tiles once `stop()` is true (the outcome is
/// then a failure to be discarded).
pub fn process_source_until(
    path: &Path,
    opts: &ExtractOptions,
    levels: &[Level],
    stop: &(dyn Fn() -> bool + Sync),
) -> Outcome {
    match try_process(path, opts, levels, stop) {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Failed {
            reason: e.to_string(),
        },
    }
}

fn try_process(
    path: &Path,
    opts: &ExtractOptions,
    levels: &[Level],
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Outcome> {
    let decode = DecodeOptions {
        max_pixels: opts.max_pixels,
    };
    // The header alone decides halving, the size rule and the squares; only the
    // squares' pixels are then decoded (a decoder may return more).
    let mut layout = None;
    let decoded = decode_file_region(path, &decode, |w, h| {
        let l = Layout::new(w, h, opts);
        let region = l.as_ref().ok().map(Layout::region);
        layout = Some(l);
        region
    })?;
    let (layout, decoded) = match (layout.expect("the header was read"), decoded) {
        (Ok(layout), Some(decoded)) => (layout, decoded),
        (Err(skip), _) => {
            return Ok(Outcome::Skipped {
                reason: skip.reason,
                pixels: skip.pixels,
            })
        }
        (Ok(_), None) => unreachable!("a region was asked for"),
    };
    let pixels = layout.pixels;
    // Level-0 pixels of the region: the decoded ones, or their 2x2 means when halving
    // (the region starts on even full-frame coordinates, so its blocks are the ones
    // halving the whole frame would average).
    let region = layout.region();
    let halved;
    let (work, origin) = if layout.halve {
        halved = resize_area(decoded.view(region), region.width / 2, region.height / 2);
        (halved.view(), (region.top / 2, region.left / 2))
    } else {
        (decoded.view(region), (region.top, region.left))
    };
    let mask = match &opts.mask_path {
        Some(dir) => Some(load_mask(dir, path, &decode)?),
        None => None,
    };
    let path_str = path.to_string_lossy();
    let active: Vec<&Level> = levels
        .iter()
        .filter(|l| !l.exclusions.iter().any(|e| path_str.contains(e.as_str())))
        .collect();
    if active.is_empty() {
        return Ok(Outcome::Skipped {
            reason: "excluded at every level".into(),
            pixels,
        });
    }
    let mut chunks = Vec::new();
    for (part, sq) in layout.squares.iter().enumerate() {
        if stop() {
            return Err(CoreError::Interrupted);
        }
        let square = work.crop(sq.top - origin.0, sq.left - origin.1, sq.dim, sq.dim);
        let mask_sums = mask.as_ref().map(|m| MaskSums::new(m, square.width));
        let tiles = tiles_of(square, &active, opts, mask_sums.as_ref(), stop)?;
        if tiles.is_empty() {
            continue;
        }
        let tile_dim = opts.tile_dim();
        let mut ref_jpeg = Vec::new();
        encode_jpeg(
            resize_area(square, tile_dim, tile_dim).view(),
            opts.compression_level,
            &mut ref_jpeg,
        )?;
        chunks.push(Chunk {
            part,
            ref_jpeg,
            tiles,
        });
    }
    if chunks.is_empty() {
        let reason = if mask.is_some() {
            "every tile masked out"
        } else {
            "smaller than every crop size"
        };
        return Ok(Outcome::Skipped {
            reason: reason.into(),
            pixels,
        });
    }
    Ok(Outcome::Extracted { chunks, pixels })
}

/// A square to tile, in level-0 coordinates (after any halving).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Square {
    top: usize,
    left: usize,
    dim: usize,
}

/// What the header alone decides about a source (docs/spec.md §2 steps 2-3).
#[derive(Debug, PartialEq)]
struct Layout {
    /// The file's full frame.
    frame: (usize, usize),
    pixels: u64,
    halve: bool,
    /// The centred square, or in split mode each half squared toward the seam (left
    /// half: its bottom-right square, right half: its top-left one, as DLAS crops).
    squares: Vec<Square>,
}

/// A source skipped by the size rule, decided from its header.
#[derive(Debug, PartialEq)]
struct SizeSkip {
    reason: String,
    pixels: u64,
}

impl Layout {
    fn new(w: usize, h: usize, opts: &ExtractOptions) -> std::result::Result<Layout, SizeSkip> {
        let pixels = (w * h) as u64;
        let frame = (w, h);
        let halve = w.max(h) > opts.input_image_max_size_before_being_halved;
        let (w, h) = if halve { (w / 2, h / 2) } else { (w, h) };
        if h.min(w) < opts.min_size {
            return Err(SizeSkip {
                reason: format!(
                    "smaller side {} is under the minimum {}",
                    h.min(w),
                    opts.min_size
                ),
                pixels,
            });
        }
        let squares = if opts.vertical_split {
            let left_w = w / 2;
            let (dl, dr) = (h.min(left_w), h.min(w - left_w));
            vec![
                Square {
                    top: h - dl,
                    left: left_w - dl,
                    dim: dl,
                },
                Square {
                    top: 0,
                    left: left_w,
                    dim: dr,
                },
            ]
        } else {
            let dim = h.min(w);
            vec![Square {
                top: (h - dim) / 2,
                left: (w - dim) / 2,
                dim,
            }]
        };
        Ok(Layout {
            frame,
            pixels,
            halve,
            squares,
        })
    }

    /// The full-frame region that holds every square. Halving an odd side is not a
    /// 2x2 box mean (INTER_AREA then weights fractions of pixels across the whole
    /// frame), so such a frame is needed whole.
    fn region(&self) -> Region {
        let (w, h) = self.frame;
        if self.halve && (w % 2 == 1 || h % 2 == 1) {
            return Region::full(w, h);
        }
        let k = if self.halve { 2 } else { 1 };
        let top = self.squares.iter().map(|s| s.top).min().unwrap_or(0);
        let left = self.squares.iter().map(|s| s.left).min().unwrap_or(0);
        let bottom = self
            .squares
            .iter()
            .map(|s| s.top + s.dim)
            .max()
            .unwrap_or(0);
        let right = self
            .squares
            .iter()
            .map(|s| s.left + s.dim)
            .max()
            .unwrap_or(0);
        Region {
            top: top * k,
            left: left * k,
            height: (bottom - top) * k,
            width: (right - left) * k,
        }
    }
}

/// Every tile of every active level, row-major per level, encoded in parallel.
fn tiles_of(
    square: Rgb8View<'_>,
    levels: &[&Level],
    opts: &ExtractOptions,
    mask: Option<&MaskSums>,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<Tile>> {
    let dim = square.width;
    let f = ref_factor(dim, opts.tile_dim());
    let mut jobs = Vec::new();
    for (li, level) in levels.iter().enumerate() {
        let rows = positions(dim, level.crop, level.step, opts.thres_sz);
        for &r in &rows {
            for &c in &rows {
                if mask.is_some_and(|m| !m.mostly_white(r, c, level.crop)) {
                    continue;
                }
                jobs.push((r, c, li));
            }
        }
    }
    // A level shrunk by an integer factor k is box-filtered once for the whole square:
    // a tile whose offsets are multiples of k is then a plain crop of it, bit-identical
    // to shrinking the crop alone (same k x k blocks, same rounding), and overlapping
    // tiles are not filtered again. Other offsets (an edge crop) shrink their own crop.
    let shrunk: Vec<Option<Rgb8>> = levels
        .par_iter()
        .map(|l| {
            let k = l.crop / l.out;
            (l.out < l.crop && l.crop <= dim && l.crop.is_multiple_of(l.out)).then(|| {
                let side = dim / k * k;
                resize_area(square.crop(0, 0, side, side), dim / k, dim / k)
            })
        })
        .collect();
    // Each level's image (the square itself, or its shrunk copy) feeds a TileSource,
    // which can share the encoder's colour conversion between overlapping tiles.
    let sources: Vec<Option<TileSource<'_>>> = levels
        .iter()
        .enumerate()
        .map(|(li, l)| {
            let img = match &shrunk[li] {
                Some(small) => small.view(),
                None if l.out == l.crop => square,
                None => return Ok(None),
            };
            let k = l.crop / l.out;
            let covered: usize = jobs
                .iter()
                .filter(|&&(r, c, j)| j == li && r % k == 0 && c % k == 0)
                .count()
                * l.out
                * l.out;
            let share = covered >= img.width * img.height;
            TileSource::new(img, opts.compression_level, share).map(Some)
        })
        .collect::<Result<_>>()?;
    jobs.par_iter()
        .map(|&(r, c, li)| {
            if stop() {
                return Err(CoreError::Interrupted);
            }
            let level = levels[li];
            let k = level.crop / level.out;
            // Empty: the encoder reserves what the tile needs, in one allocation.
            let mut jpeg = Vec::new();
            match &sources[li] {
                Some(src) if r.is_multiple_of(k) && c.is_multiple_of(k) => {
                    src.encode(r / k, c / k, level.out, level.out, &mut jpeg)?;
                }
                _ => {
                    let crop = square.crop(r, c, level.crop, level.crop);
                    let small = resize_area(crop, level.out, level.out);
                    encode_jpeg(small.view(), opts.compression_level, &mut jpeg)?;
                }
            }
            Ok(Tile {
                jpeg,
                centre: centre(r, c, level.crop, f),
                width: width(level.crop, f),
            })
        })
        .collect()
}

/// `<mask_path>/<source file name incl. extension>.png`, decoded.
fn load_mask(dir: &Path, source: &Path, decode: &DecodeOptions) -> Result<Rgb8> {
    let mut name = source.file_name().unwrap_or_default().to_os_string();
    name.push(".png");
    let path: PathBuf = dir.join(name);
    decode_file(&path, decode).map_err(|e| CoreError::Decode {
        path: path.clone(),
        reason: format!("mask: {e}"),
    })
}

/// Summed-area table of a mask resized to the square, for O(1) region means.
struct MaskSums {
    dim: usize,
    sums: Vec<u64>,
}

impl MaskSums {
    fn new(mask: &Rgb8, dim: usize) -> Self {
        let m = resize_area(mask.view(), dim, dim);
        let stride = dim + 1;
        let mut sums = vec![0u64; stride * stride];
        for y in 0..dim {
            let row = m.view().row(y);
            let mut run = 0u64;
            for x in 0..dim {
                run += row[x * 3] as u64 + row[x * 3 + 1] as u64 + row[x * 3 + 2] as u64;
                sums[(y + 1) * stride + x + 1] = sums[y * stride + x + 1] + run;
            }
        }
        MaskSums { dim, sums }
    }

    /// DLAS keeps a tile when its mask region averages at least half white.
    fn mostly_white(&self, r: usize, c: usize, side: usize) -> bool {
        let s = self.dim + 1;
        let (r2, c2) = (r + side, c + side);
        let total = self.sums[r2 * s + c2] + self.sums[r * s + c]
            - self.sums[r * s + c2]
            - self.sums[r2 * s + c];
        // mean >= 255/2  <=>  2 * total >= 255 * count
        2 * total >= 255 * (side * side * 3) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(split: bool) -> ExtractOptions {
        ExtractOptions {
            vertical_split: split,
            ..ExtractOptions::default()
        }
    }

    #[test]
    fn layout_of_a_plain_source_is_its_centred_square() {
        let l = Layout::new(2560, 1600, &opts(false)).unwrap();
        assert!(!l.halve);
        let sq = Square {
            top: 0,
            left: 480,
            dim: 1600,
        };
        assert_eq!(l.squares, vec![sq]);
        assert_eq!(
            l.region(),
            Region {
                top: 0,
                left: 480,
                height: 1600,
                width: 1600
            }
        );
    }

    #[test]
    fn halving_an_even_frame_decodes_twice_the_square() {
        let l = Layout::new(6000, 4000, &opts(false)).unwrap();
        assert!(l.halve);
        assert_eq!(
            l.squares,
            vec![Square {
                top: 0,
                left: 500,
                dim: 2000
            }]
        );
        assert_eq!(
            l.region(),
            Region {
                top: 0,
                left: 1000,
                height: 4000,
                width: 4000
            }
        );
    }

    #[test]
    fn halving_an_odd_frame_needs_the_whole_frame() {
        // 6001 -> 3000 is not a 2x2 box: INTER_AREA weights fractions over the frame.
        let l = Layout::new(6001, 4000, &opts(false)).unwrap();
        assert!(l.halve);
        assert_eq!(l.region(), Region::full(6001, 4000));
        let l = Layout::new(6000, 4001, &opts(false)).unwrap();
        assert_eq!(l.region(), Region::full(6000, 4001));
    }

    #[test]
    fn split_mode_squares_each_half_toward_the_seam() {
        let l = Layout::new(1000, 300, &opts(true)).unwrap_err();
        assert!(l.reason.contains("under the minimum 512"), "{}", l.reason);
        let l = Layout::new(2001, 700, &opts(true)).unwrap();
        // left half 1000 wide: its bottom-right 700 square; right half 1001: top-left.
        assert_eq!(
            l.squares,
            vec![
                Square {
                    top: 0,
                    left: 300,
                    dim: 700
                },
                Square {
                    top: 0,
                    left: 1000,
                    dim: 700
                }
            ]
        );
        assert_eq!(
            l.region(),
            Region {
                top: 0,
                left: 300,
                height: 700,
                width: 1400
            }
        );
    }

    #[test]
    fn too_small_sources_are_skipped_from_the_header() {
        let skip = Layout::new(640, 480, &opts(false)).unwrap_err();
        assert_eq!(skip.pixels, 640 * 480);
        assert!(skip.reason.contains("smaller side 480"), "{}", skip.reason);
        // Judged after halving: 11000 x 1000 becomes 5500 x 500.
        assert!(Layout::new(11000, 1000, &opts(false)).is_err());
    }
}
