//! MultiScaleDataset's loader: its options read and checked once, a batch of items
//! loaded into `hq` and `lq` (every value written).

use serde::Deserialize;

use super::{load_item, MultiScale};
use crate::error::{CoreError, Result};
use crate::image::DecodeOptions;
use crate::index::folder_list::FolderList;
use crate::load::contract::{Batch, Data, Draws, Dtype, Given, OutBuf, OutputSpec};
use crate::load::{pool, room};

/// MultiScaleDataset's options, by DLAS's names.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiScaleOptions {
    pub hq_tile_size: usize,
    pub num_scales: usize,
    pub scale: usize,
    /// Decode every image at full size (DLAS's pixels exactly) instead of reducing a
    /// JPEG in the decoder when the square shrinks to `hq_tile_size * 2^(num_scales - 1)`
    /// by 4x or more.
    #[serde(default)]
    pub exact_decode: bool,
}

/// A MultiScaleDataset's loader.
#[derive(Clone, Copy, Debug)]
pub struct MultiScaleLoader {
    ms: MultiScale,
}

impl MultiScaleLoader {
    pub fn new(o: MultiScaleOptions) -> Result<MultiScaleLoader> {
        let ms = MultiScale {
            tile: o.hq_tile_size,
            scales: o.num_scales,
            scale: o.scale,
            exact_decode: o.exact_decode,
        };
        ms.validate()?;
        Ok(MultiScaleLoader { ms })
    }

    /// The outputs of a batch of `n` items (always known: every patch is `t x t`):
    /// `lq` `(n, P, 3, t/s, t/s)` and `hq` `(n, P, 3, t, t)`.
    pub fn outputs(&self, n: usize) -> Vec<OutputSpec> {
        let (t, p) = (self.ms.tile, self.ms.count());
        let s = t / self.ms.scale;
        [("lq", s), ("hq", t)]
            .into_iter()
            .map(|(key, side)| OutputSpec {
                key,
                shape: vec![n, p, 3, side, side],
                dtype: Dtype::F32,
                zeros: false,
            })
            .collect()
    }

    /// Loads items `indices` of `files` on `threads` threads, draws and corruptions
    /// keyed by `draws`; into `given`'s buffers when there are some.
    pub fn load(
        &self,
        files: &FolderList,
        indices: &[usize],
        draws: Draws<'_>,
        threads: usize,
        given: Option<Given<'_>>,
    ) -> Result<Batch> {
        files.check_batch(indices)?;
        let n = indices.len();
        let mut jobs = Vec::with_capacity(n);
        for &index in indices {
            let augment = draws.keys.augment_key(draws.epoch, index as u64);
            let key = draws.keys.key(draws.epoch, index as u64);
            jobs.push((files.path(index), augment, key));
        }
        let specs = self.outputs(n);
        let (ln, hn) = (specs[0].len() / n, specs[1].len() / n);
        // The caller's buffers, or new ones (zeroed first, without aborting when the
        // memory cannot be had); every value is written either way.
        let was_given = given.is_some();
        let (mut own_hq, mut own_lq) = (Vec::new(), Vec::new());
        let (hq, lq): (&mut [f32], &mut [f32]) = match given {
            Some(mut g) => {
                let mut take = |spec: &OutputSpec| match g.take(spec)? {
                    Some(OutBuf::F32(b)) => Ok(b),
                    _ => Err(CoreError::option(
                        "out",
                        format!("no output array given for {}", spec.key),
                    )),
                };
                let (lq, hq) = (take(&specs[0])?, take(&specs[1])?);
                g.finish()?;
                (hq, lq)
            }
            None => {
                for (v, k) in [(&mut own_hq, hn), (&mut own_lq, ln)] {
                    *v = room(n, k)?;
                    v.resize(n * k, 0.0);
                }
                (&mut own_hq, &mut own_lq)
            }
        };
        let ms = self.ms;
        let decode = DecodeOptions::default();
        let work: Vec<_> = jobs
            .iter()
            .zip(hq.chunks_mut(hn))
            .zip(lq.chunks_mut(ln))
            .collect();
        let one = |((job, hq), lq): ((&(std::path::PathBuf, _, _), &mut [f32]), &mut [f32])| {
            load_item(
                &job.0,
                &ms,
                job.1,
                Some((draws.corruptor, job.2)),
                &decode,
                hq,
                lq,
            )
        };
        if threads <= 1 || n <= 1 {
            work.into_iter().try_for_each(one)?;
        } else {
            use rayon::prelude::*;
            pool::run(threads, || {
                work.into_par_iter()
                    .with_min_len(n.div_ceil(threads))
                    .try_for_each(one)
            })?;
        }
        let data = if was_given {
            [Data::Given, Data::Given]
        } else {
            [Data::F32(own_lq), Data::F32(own_hq)]
        };
        let outputs = specs.into_iter().zip(data).collect();
        let paths = jobs.into_iter().map(|j| j.0).collect();
        Ok(Batch { outputs, paths })
    }
}
