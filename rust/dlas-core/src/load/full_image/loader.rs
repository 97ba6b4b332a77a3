//! FullImageDataset's loader: its options read and checked once, one item loaded under
//! the chunked datasets' item keys (its sizes vary from item to item).

use std::path::{Path, PathBuf};

use super::{load_item, FullImageOptions};
use crate::error::Result;
use crate::image::DecodeOptions;
use crate::load::contract::{Batch, Data, Draws, Dtype, OutputSpec};
use crate::load::Planes;

/// A FullImageDataset's loader.
#[derive(Clone, Copy, Debug)]
pub struct FullImageLoader {
    opts: FullImageOptions,
}

impl FullImageLoader {
    pub fn new(opts: FullImageOptions) -> Result<FullImageLoader> {
        opts.validate()?;
        Ok(FullImageLoader { opts })
    }

    /// Loads item `index` (the image at `path`, and the LQ image at `lq_path` when the
    /// dataset has LQ folders) as a batch of one, its draws keyed by `draws`.
    pub fn load(
        &self,
        index: usize,
        path: PathBuf,
        lq_path: Option<&Path>,
        draws: Draws<'_>,
    ) -> Result<Batch> {
        let key = draws.keys.augment_key(draws.epoch, index as u64);
        let item = load_item(&path, lq_path, &self.opts, key, &DecodeOptions::default())?;
        let planes = |key, p: Planes| {
            let spec = OutputSpec {
                key,
                shape: vec![1, p.c, p.h, p.w],
                dtype: Dtype::F32,
                zeros: false,
            };
            (spec, Data::F32(p.data))
        };
        let centre = |key, c: (i64, i64)| {
            let spec = OutputSpec {
                key,
                shape: vec![1, 2],
                dtype: Dtype::I64,
                zeros: false,
            };
            (spec, Data::I64(vec![c.0, c.1]))
        };
        Ok(Batch {
            outputs: vec![
                planes("lq", item.lq),
                planes("hq", item.hq),
                planes("gt_fullsize_ref", item.hq_ref),
                planes("lq_fullsize_ref", item.lq_ref),
                centre("lq_center", item.lq_centre),
                centre("gt_center", item.hq_centre),
            ],
            paths: vec![path],
        })
    }
}
