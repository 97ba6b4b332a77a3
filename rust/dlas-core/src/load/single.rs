//! The loader of the chunked datasets (SingleImageDataset, MultiFrameDataset;
//! docs/spec.md §4-6): tiles with their chunk's ref, resized, shrunk to LQ and
//! corrupted, stacked under DLAS's item keys.

use serde::Deserialize;

use super::contract::{self, Batch, Draws, Given, OutputKeys, OutputSpec};
use super::options::one;
use super::refs::{RefCache, TileSpec};
use super::{Corruption, Geometry, Images, Layout, Shape, Wanted, MAX_BATCH_ITEMS};
use crate::error::{CoreError, Result};

/// The options of a chunked dataset's loader, by DLAS's names (normalised by the
/// dataset: `scale` is 1 in eval mode).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SingleOptions {
    /// HQ side after `resize_hq` (None: keep the tile's size).
    #[serde(default)]
    pub target_size: Option<usize>,
    /// The LQ side must be a multiple of it.
    #[serde(default = "one")]
    pub force_multiple: usize,
    /// HQ side / LQ side.
    #[serde(default = "one")]
    pub scale: usize,
    /// LQ = HQ, no corruption.
    #[serde(default)]
    pub eval: bool,
    /// Corrupt the HQ image, then shrink it (else shrink, then corrupt).
    #[serde(default)]
    pub corrupt_before_downsize: bool,
    /// Items carry their chunk's ref (else the ref outputs are zeros).
    #[serde(default)]
    pub need_ref: bool,
    /// Tiles per item (MultiFrameDataset's frames, corrupted together); 1 for
    /// SingleImageDataset.
    #[serde(default = "one")]
    pub num_frames: usize,
    /// Also output the HQ images sharpened as Real-ESRGAN's ground truth (`hq_usm`).
    #[serde(default)]
    pub gt_usm: bool,
}

/// The chunked datasets' item keys.
pub const KEYS: OutputKeys = OutputKeys {
    images: Images {
        hq: Some("hq"),
        hq_ref: Some("gt_fullsize_ref"),
        lq: Some("lq"),
        lq_ref: Some("lq_fullsize_ref"),
        alt_hq: None,
        alt_lq: None,
        hq_usm: Some("hq_usm"),
    },
    hq_centres: Some("gt_center"),
    lq_centres: Some("lq_center"),
    entropy: None,
};

/// A chunked dataset's loader: its options, checked once, and its recently used refs.
pub struct SingleLoader {
    pub opts: SingleOptions,
    shape: Shape,
    refs: RefCache,
}

impl SingleLoader {
    pub fn new(opts: SingleOptions) -> Result<SingleLoader> {
        let shape = Shape {
            target_size: opts.target_size,
            multiple: opts.force_multiple,
            scale: opts.scale,
            eval: opts.eval,
        };
        shape.validate()?;
        if !(1..=MAX_BATCH_ITEMS).contains(&opts.num_frames) {
            return Err(CoreError::option(
                "num_frames",
                format!(
                    "must be an integer from 1 to {MAX_BATCH_ITEMS}, got {}",
                    opts.num_frames
                ),
            ));
        }
        Ok(SingleLoader {
            opts,
            shape,
            refs: RefCache::new(8),
        })
    }

    /// The batch axes of `n` items.
    fn lead(&self, n: usize) -> Vec<usize> {
        match self.opts.num_frames {
            1 => vec![n],
            f => vec![n, f],
        }
    }

    /// The outputs of a batch of `n` items when `target_size` fixes their sizes (else
    /// None): the ref outputs are zeros without `need_ref`.
    fn wanted(&self) -> Wanted {
        Wanted {
            hq_usm: self.opts.gt_usm,
            ..Wanted::default()
        }
    }

    pub fn outputs(&self, n: usize) -> Option<Vec<OutputSpec>> {
        let t = self.opts.target_size?;
        let geo = Geometry::new((t, t), &self.shape);
        if geo.lq.0 == 0 {
            return None;
        }
        let layout = Layout::new(&geo, self.opts.need_ref, false, None, self.wanted());
        Some(contract::specs(&KEYS, &layout, &geo, &self.lead(n), false))
    }

    /// Loads `tiles` (`num_frames` per item, item after item) on `threads` threads;
    /// `indices` are the items' dataset indices, which key their corruptions. Into
    /// `given`'s buffers when there are some.
    pub fn load(
        &self,
        tiles: &[TileSpec],
        indices: &[u64],
        draws: Option<Draws<'_>>,
        threads: usize,
        given: Option<Given<'_>>,
    ) -> Result<Batch> {
        let frames = self.opts.num_frames;
        if tiles.is_empty() || tiles.len() != indices.len() * frames {
            return Err(CoreError::option(
                "items",
                format!(
                    "{} tiles for {} items of {frames} frames",
                    tiles.len(),
                    indices.len()
                ),
            ));
        }
        super::check_batch_len(tiles.len())?;
        let mut loaded = self.refs.load_all(tiles, &self.shape, threads)?;
        let paths: Vec<_> = tiles.iter().map(|t| t.0.clone()).collect();
        contract::check_one_size(&loaded, &paths)?;
        let corruption = draws.map(|d| {
            for (group, &index) in loaded.chunks_mut(frames).zip(indices) {
                // The group is corrupted with its first frame's key.
                group[0].key = d.keys.key(d.epoch, index);
            }
            Corruption {
                group: frames,
                ..Corruption::single(d.corruptor, self.opts.corrupt_before_downsize)
            }
        });
        let outputs = contract::stack_named(
            &loaded,
            threads,
            corruption,
            self.wanted(),
            &KEYS,
            &self.lead(indices.len()),
            given,
        )?;
        Ok(Batch { outputs, paths })
    }
}
