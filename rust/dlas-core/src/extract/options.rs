//! Options of the extraction job (docs/spec.md §2), named after DLAS's option keys.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};
use crate::image::{check_max_pixels, DEFAULT_MAX_PIXELS};

/// The most worker threads a run may ask for.
pub const MAX_THREADS: usize = 1024;
/// The widest JPEG (tiles and refs are JPEGs).
pub const MAX_JPEG_SIDE: usize = 65535;

/// Everything that decides what the extraction writes, plus how it runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtractOptions {
    /// Side of the square crop per scale level.
    pub crop_sz: Vec<usize>,
    /// Stride of the sliding window per level.
    pub step: Vec<usize>,
    /// A leftover edge strip wider than this earns one extra crop flush with the edge.
    pub thres_sz: usize,
    /// Per level, each crop is area-resized by this factor before saving.
    pub resize_final_img: Vec<f64>,
    /// Per level, a source whose path contains any of these strings skips the level.
    pub exclusions: Vec<Vec<String>>,
    /// JPEG quality of tiles and ref (1-100).
    pub compression_level: u8,
    /// A source whose larger side exceeds this is area-halved first.
    pub input_image_max_size_before_being_halved: usize,
    /// A source whose smaller side is below this (after halving) is skipped.
    pub min_size: usize,
    /// Stereo pairs: the left and right halves are two sources.
    pub vertical_split: bool,
    /// Folder of per-source masks `<mask_path>/<file name>.png`; `None` disables masking.
    pub mask_path: Option<PathBuf>,
    /// Sources declaring more pixels than this are refused as decompression bombs.
    pub max_pixels: u64,
    /// Worker threads (DLAS: `n_thread`).
    pub n_thread: usize,
    /// Keep finished chunks of an interrupted run of the same job and redo the rest.
    #[serde(skip)]
    pub resume: bool,
    /// Replace chunks of an earlier run in DST.
    #[serde(skip)]
    pub overwrite: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            crop_sz: vec![256, 512],
            step: vec![128, 256],
            thres_sz: 128,
            resize_final_img: vec![1.0, 0.5],
            // No exclusions at any level, however many levels crop_sz gives.
            exclusions: Vec::new(),
            compression_level: 95,
            input_image_max_size_before_being_halved: 5500,
            min_size: 512,
            vertical_split: false,
            mask_path: None,
            max_pixels: DEFAULT_MAX_PIXELS,
            n_thread: 8,
            resume: false,
            overwrite: false,
        }
    }
}

/// One scale level, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Level {
    pub crop: usize,
    pub step: usize,
    /// Side of the saved tile: `int(crop * factor)`.
    pub out: usize,
    pub exclusions: Vec<String>,
}

impl ExtractOptions {
    /// Checks the options and resolves the scale levels.
    pub fn levels(&self) -> Result<Vec<Level>> {
        let n = self.crop_sz.len();
        if n == 0 {
            return Err(CoreError::option("crop_sz", "needs at least one level"));
        }
        if self.step.len() != n {
            return Err(CoreError::option(
                "step",
                format!("has {} entries but crop_sz has {n}", self.step.len()),
            ));
        }
        if self.resize_final_img.len() != n {
            return Err(CoreError::option(
                "resize_final_img",
                format!(
                    "has {} entries but crop_sz has {n}",
                    self.resize_final_img.len()
                ),
            ));
        }
        if self.exclusions.len() > n {
            return Err(CoreError::option(
                "exclusions",
                format!("has {} entries but crop_sz has {n}", self.exclusions.len()),
            ));
        }
        if !(1..=100).contains(&self.compression_level) {
            return Err(CoreError::option(
                "compression_level",
                format!("must be in 1..=100, got {}", self.compression_level),
            ));
        }
        if !(1..=MAX_THREADS).contains(&self.n_thread) {
            return Err(CoreError::option(
                "n_thread",
                format!("must be in 1..={MAX_THREADS}, got {}", self.n_thread),
            ));
        }
        check_max_pixels("max_pixels", self.max_pixels)?;
        let max_crop = self.max_crop();
        if self.resume && self.overwrite {
            return Err(CoreError::option(
                "resume",
                "cannot be combined with overwrite",
            ));
        }
        (0..n)
            .map(|i| {
                let (crop, step, factor) =
                    (self.crop_sz[i], self.step[i], self.resize_final_img[i]);
                if !(1..=max_crop).contains(&crop) {
                    return Err(CoreError::option(
                        "crop_sz",
                        format!(
                            "entries must be in 1..={max_crop}, got {crop} (a crop must fit in \
                             an image of at most max_pixels = {} pixels, and in a JPEG tile, \
                             at most {MAX_JPEG_SIDE} wide)",
                            self.max_pixels
                        ),
                    ));
                }
                if step == 0 {
                    return Err(CoreError::option("step", "entries must be >= 1, got 0"));
                }
                if !(factor > 0.0 && factor <= 1.0) {
                    return Err(CoreError::option(
                        "resize_final_img",
                        format!("entries must be in (0, 1], got {factor:e}"),
                    ));
                }
                let out = (crop as f64 * factor) as usize;
                if out == 0 {
                    return Err(CoreError::option(
                        "resize_final_img",
                        format!(
                            "level {i}: crop {crop} x {factor:e} gives a 0px tile; entries \
                             must be in (0, 1] and leave at least 1px"
                        ),
                    ));
                }
                Ok(Level {
                    crop,
                    step,
                    out,
                    exclusions: self.exclusions.get(i).cloned().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The largest crop side allowed: one whose square fits within the pixel limit, and
    /// in a JPEG tile. (The ref of the first level is a square of up to this side, made
    /// for every source: a larger one could not be allocated.)
    pub fn max_crop(&self) -> usize {
        // The integer square root: the float one, corrected by a step either way.
        let mut side = (self.max_pixels as f64).sqrt() as u64;
        while side.saturating_mul(side) > self.max_pixels {
            side -= 1;
        }
        while (side + 1).saturating_mul(side + 1) <= self.max_pixels {
            side += 1;
        }
        (side as usize).min(MAX_JPEG_SIDE)
    }

    /// Side of ref.jpg: `int(crop_sz[0] * resize_final_img[0])`.
    pub fn tile_dim(&self) -> usize {
        (self.crop_sz[0] as f64 * self.resize_final_img[0]) as usize
    }

    /// A stable hex key of the options that decide the output (not threads, resume or
    /// overwrite): two runs with the same key write the same files.
    pub fn job_key(&self) -> String {
        // Missing trailing levels of `exclusions` mean "none": the same job either way.
        let mut exclusions = self.exclusions.clone();
        exclusions.resize(self.crop_sz.len().max(exclusions.len()), Vec::new());
        let canonical = serde_json::to_string(&KeyView {
            crop_sz: &self.crop_sz,
            step: &self.step,
            thres_sz: self.thres_sz,
            resize_final_img: &self.resize_final_img,
            exclusions: &exclusions,
            compression_level: self.compression_level,
            halve_above: self.input_image_max_size_before_being_halved,
            min_size: self.min_size,
            vertical_split: self.vertical_split,
            mask_path: &self.mask_path,
            max_pixels: self.max_pixels,
        })
        .expect("options serialise");
        format!("{:016x}", crate::fnv1a64(canonical.as_bytes()))
    }
}

#[derive(Serialize)]
struct KeyView<'a> {
    crop_sz: &'a [usize],
    step: &'a [usize],
    thres_sz: usize,
    resize_final_img: &'a [f64],
    exclusions: &'a [Vec<String>],
    compression_level: u8,
    halve_above: usize,
    min_size: usize,
    vertical_split: bool,
    mask_path: &'a Option<PathBuf>,
    max_pixels: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve_to_two_levels() {
        let o = ExtractOptions::default();
        let l = o.levels().unwrap();
        assert_eq!(
            (l[0].crop, l[0].out, l[1].crop, l[1].out),
            (256, 256, 512, 256)
        );
        assert_eq!(o.tile_dim(), 256);
    }

    #[test]
    fn bad_options_name_the_option() {
        let o = ExtractOptions {
            step: vec![128],
            ..Default::default()
        };
        assert!(o.levels().unwrap_err().to_string().contains("`step`"));
        let o = ExtractOptions {
            compression_level: 0,
            ..Default::default()
        };
        assert!(o
            .levels()
            .unwrap_err()
            .to_string()
            .contains("compression_level"));
    }

    #[test]
    fn sizes_no_allocation_could_hold_are_refused_with_their_range() {
        let refused = |o: ExtractOptions, option: &str, range: &str| {
            let err = o.levels().unwrap_err().to_string();
            assert!(err.contains(option) && err.contains(range), "{err}");
        };
        let d = ExtractOptions::default;
        refused(
            ExtractOptions {
                crop_sz: vec![100_000, 512],
                ..d()
            },
            "`crop_sz`",
            "1..=14142",
        );
        refused(
            ExtractOptions {
                crop_sz: vec![256, 0],
                ..d()
            },
            "`crop_sz`",
            "1..=14142",
        );
        refused(
            ExtractOptions {
                max_pixels: 100_000,
                ..d()
            },
            "`crop_sz`",
            "1..=316",
        );
        refused(
            ExtractOptions {
                max_pixels: u64::MAX,
                ..d()
            },
            "`max_pixels`",
            "1..=4294967296",
        );
        refused(
            ExtractOptions {
                max_pixels: 0,
                ..d()
            },
            "`max_pixels`",
            "1..=4294967296",
        );
        refused(
            ExtractOptions {
                step: vec![0, 256],
                ..d()
            },
            "`step`",
            ">= 1",
        );
        refused(
            ExtractOptions {
                n_thread: 100_000,
                ..d()
            },
            "`n_thread`",
            "1..=1024",
        );
        for f in [1e300, f64::INFINITY, f64::NAN, 0.0, -1.0, 1.0000001] {
            refused(
                ExtractOptions {
                    resize_final_img: vec![1.0, f],
                    ..d()
                },
                "`resize_final_img`",
                "(0, 1]",
            );
        }
        refused(
            ExtractOptions {
                resize_final_img: vec![1.0, 1e-300],
                ..d()
            },
            "`resize_final_img`",
            "0px",
        );
        // The largest values allowed are accepted.
        let max = ExtractOptions {
            crop_sz: vec![14142],
            step: vec![usize::MAX],
            thres_sz: usize::MAX,
            resize_final_img: vec![1.0],
            n_thread: 1024,
            ..d()
        };
        assert_eq!(max.levels().unwrap()[0].out, 14142);
        let huge = ExtractOptions {
            max_pixels: 1 << 32,
            ..d()
        };
        assert_eq!(huge.max_crop(), 65535);
        assert_eq!(
            ExtractOptions {
                max_pixels: 1,
                ..d()
            }
            .max_crop(),
            1
        );
        assert_eq!(
            ExtractOptions {
                max_pixels: 15,
                ..d()
            }
            .max_crop(),
            3
        );
        assert_eq!(
            ExtractOptions {
                max_pixels: 16,
                ..d()
            }
            .max_crop(),
            4
        );
    }

    #[test]
    fn job_key_ignores_threads_but_not_output_options() {
        let a = ExtractOptions::default();
        let b = ExtractOptions {
            n_thread: 1,
            resume: true,
            ..Default::default()
        };
        let c = ExtractOptions {
            compression_level: 90,
            ..Default::default()
        };
        assert_eq!(a.job_key(), b.job_key());
        assert_ne!(a.job_key(), c.job_key());
    }
}
