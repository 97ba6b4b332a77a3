//! One source image → its chunk(s): SPEC §2 steps 1-5, without touching DST.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::grid::{centre, positions, ref_factor, width};
use super::options::{ExtractOptions, Level};
use crate::error::Result;
use crate::image::{decode_file, encode_jpeg, resize_area, DecodeOptions, Rgb8, Rgb8View};

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
    match try_process(path, opts, levels) {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Failed {
            reason: e.to_string(),
        },
    }
}

fn try_process(path: &Path, opts: &ExtractOptions, levels: &[Level]) -> Result<Outcome> {
    let decode = DecodeOptions {
        max_pixels: opts.max_pixels,
    };
    let mut img = decode_file(path, &decode)?;
    let pixels = (img.width * img.height) as u64;
    if img.width.max(img.height) > opts.input_image_max_size_before_being_halved {
        img = resize_area(img.view(), img.width / 2, img.height / 2);
    }
    let (h, w) = (img.height, img.width);
    if h.min(w) < opts.min_size {
        return Ok(Outcome::Skipped {
            reason: format!(
                "smaller side {} is under the minimum {}",
                h.min(w),
                opts.min_size
            ),
            pixels,
        });
    }
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
    for (part, square) in squares(&img, opts.vertical_split).into_iter().enumerate() {
        let mask_sums = mask.as_ref().map(|m| MaskSums::new(m, square.width));
        let tiles = tiles_of(square, &active, opts, mask_sums.as_ref())?;
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

/// The square(s) to tile: the centred square, or in split mode each half squared
/// toward the seam (left half: its bottom-right square, right half: its top-left one,
/// as DLAS crops them).
fn squares(img: &Rgb8, split: bool) -> Vec<Rgb8View<'_>> {
    let (h, w) = (img.height, img.width);
    if !split {
        let dim = h.min(w);
        return vec![img.crop((h - dim) / 2, (w - dim) / 2, dim, dim)];
    }
    let left_w = w / 2;
    let right_w = w - left_w;
    let dl = h.min(left_w);
    let dr = h.min(right_w);
    vec![
        img.crop(h - dl, left_w - dl, dl, dl),
        img.crop(0, left_w, dr, dr),
    ]
}

/// Every tile of every active level, row-major per level, encoded in parallel.
fn tiles_of(
    square: Rgb8View<'_>,
    levels: &[&Level],
    opts: &ExtractOptions,
    mask: Option<&MaskSums>,
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
    jobs.par_iter()
        .map(|&(r, c, li)| {
            let level = levels[li];
            let k = level.crop / level.out;
            let mut jpeg = Vec::with_capacity(level.out * level.out / 2);
            match &shrunk[li] {
                Some(small) if r.is_multiple_of(k) && c.is_multiple_of(k) => {
                    let tile = small.crop(r / k, c / k, level.out, level.out);
                    encode_jpeg(tile, opts.compression_level, &mut jpeg)?;
                }
                _ => {
                    let crop = square.crop(r, c, level.crop, level.crop);
                    if level.out == level.crop {
                        encode_jpeg(crop, opts.compression_level, &mut jpeg)?;
                    } else {
                        let small = resize_area(crop, level.out, level.out);
                        encode_jpeg(small.view(), opts.compression_level, &mut jpeg)?;
                    }
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
    decode_file(&path, decode).map_err(|e| crate::CoreError::Decode {
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
