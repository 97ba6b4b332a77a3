//! ImageFolderDataset's loader: its options read and checked once, the items of a batch
//! loaded and stacked under DLAS's item keys.

use serde::Deserialize;

use super::{load_item, next_frame, AltSource, FolderItem, FolderOptions};
use crate::corrupt::{Corruptor, Key};
use crate::error::{CoreError, Result};
use crate::image::DecodeOptions;
use crate::index::folder_list::FolderList;
use crate::load::contract::{
    self, Batch, Data, Draws, Dtype, Given, OutBuf, OutputKeys, OutputSpec,
};
use crate::load::options::{one, yes};
use crate::load::{pool, Corruption, Geometry, Images, Layout, Loaded, Shape, Wanted};

/// ImageFolderDataset's loading options, by DLAS's names (normalised by the dataset:
/// `affine` is `normalize` and `rgb_n1_to_1` as one `v * a + b` per channel).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderLoaderOptions {
    #[serde(default)]
    pub target_size: Option<usize>,
    #[serde(default = "one")]
    pub force_multiple: usize,
    #[serde(default = "one")]
    pub scale: usize,
    #[serde(default)]
    pub center_crop_hq_sz: Option<usize>,
    #[serde(default)]
    pub disable_flip: bool,
    #[serde(default = "yes")]
    pub force_square: bool,
    #[serde(default)]
    pub all_image_color_jitter: f64,
    #[serde(default)]
    pub fetch_alt_image: bool,
    #[serde(default)]
    pub fetch_alt_tiled_image: bool,
    #[serde(default)]
    pub skip_lq: bool,
    #[serde(default)]
    pub corrupt_before_downsize: bool,
    /// Read only with `corrupt_before_downsize` (as DLAS).
    #[serde(default = "one")]
    pub corrupt_before_downsize_factor: usize,
    /// `(a, b)` per channel: every output image becomes `v * a + b`.
    #[serde(default)]
    pub affine: Option<[(f32, f32); 3]>,
    /// Decode every image at full size (DLAS's pixels exactly) instead of reducing a
    /// JPEG in the decoder when `target_size` shrinks it 4x or more.
    #[serde(default)]
    pub exact_decode: bool,
    /// Also output the HQ image sharpened as Real-ESRGAN's ground truth (`hq_usm`).
    #[serde(default)]
    pub gt_usm: bool,
}

/// ImageFolderDataset's item keys (`has_alt` is added per item).
pub const KEYS: OutputKeys = OutputKeys {
    images: Images {
        hq: Some("hq"),
        hq_ref: None,
        lq: Some("lq"),
        lq_ref: None,
        alt_hq: Some("alt_hq"),
        alt_lq: Some("alt_lq"),
        hq_usm: Some("hq_usm"),
    },
    hq_centres: None,
    lq_centres: None,
    entropy: Some("corruption_entropy"),
};

const HAS_ALT: &str = "has_alt";

/// Which alt image an item loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AltMode {
    None,
    NextFrame,
    Tile,
}

/// An ImageFolderDataset's loader: its options, checked once. Its file list comes
/// with each batch.
#[derive(Clone, Debug)]
pub struct FolderLoader {
    item: FolderOptions,
    alt: AltMode,
    wanted: Wanted,
    before_downsize: bool,
    before_factor: usize,
}

impl FolderLoader {
    pub fn new(o: FolderLoaderOptions) -> Result<FolderLoader> {
        let shape = Shape {
            target_size: o.target_size,
            multiple: o.force_multiple,
            scale: o.scale,
            eval: false,
        };
        shape.validate()?;
        if o.fetch_alt_image && o.fetch_alt_tiled_image {
            return Err(CoreError::option(
                "fetch_alt_tiled_image",
                "fetch_alt_image and fetch_alt_tiled_image are mutually exclusive",
            ));
        }
        if o.center_crop_hq_sz == Some(0) {
            return Err(CoreError::option("center_crop_hq_sz", "must be at least 1"));
        }
        let jitter = o.all_image_color_jitter;
        if !(jitter.is_finite() && jitter >= 0.0) {
            return Err(CoreError::option(
                "all_image_color_jitter",
                format!("must be a number >= 0, got {jitter}"),
            ));
        }
        let factor = if o.corrupt_before_downsize {
            o.corrupt_before_downsize_factor
        } else {
            1
        };
        if factor == 0 || !o.scale.is_multiple_of(factor) {
            return Err(CoreError::option(
                "corrupt_before_downsize_factor",
                format!("must divide scale ({}), got {factor}", o.scale),
            ));
        }
        let alt = if o.fetch_alt_image {
            AltMode::NextFrame
        } else if o.fetch_alt_tiled_image {
            AltMode::Tile
        } else {
            AltMode::None
        };
        Ok(FolderLoader {
            item: FolderOptions {
                center_crop: o.center_crop_hq_sz,
                flip: !o.disable_flip,
                force_square: o.force_square,
                color_jitter: jitter,
                shape,
                exact_decode: o.exact_decode,
            },
            alt,
            wanted: Wanted {
                lq: !o.skip_lq,
                // DLAS corrupts the next frame with the item, but not the alt tile.
                alt_lq: alt == AltMode::NextFrame,
                affine: o.affine,
                hq_usm: o.gt_usm,
            },
            before_downsize: o.corrupt_before_downsize,
            before_factor: factor,
        })
    }

    fn corruption<'a>(&self, corruptor: &'a Corruptor) -> Corruption<'a> {
        Corruption {
            before_factor: self.before_factor,
            entropy: true,
            ..Corruption::single(corruptor, self.before_downsize)
        }
    }

    fn has_alt_spec(n: usize) -> OutputSpec {
        OutputSpec {
            key: HAS_ALT,
            shape: vec![n],
            dtype: Dtype::Bool,
            zeros: false,
        }
    }

    /// The outputs of a batch of `n` items when `target_size` fixes their sizes (else
    /// None), their corruptions made by `corruptor`.
    pub fn outputs(&self, n: usize, corruptor: &Corruptor) -> Option<Vec<OutputSpec>> {
        let t = self.item.shape.target_size?;
        let geo = Geometry::new((t, t), &self.item.shape);
        if geo.lq.0 == 0 {
            return None;
        }
        let corruption = self.corruption(corruptor);
        let alt = self.alt != AltMode::None;
        let layout = Layout::new(&geo, false, alt, Some(&corruption), self.wanted);
        let mut specs = contract::specs(&KEYS, &layout, &geo, &[n], self.wanted.lq);
        specs.push(Self::has_alt_spec(n));
        Some(specs)
    }

    /// Loads items `indices` of `files` as one batch on `threads` threads, their draws
    /// keyed by `draws`. Into `given`'s buffers when there are some.
    pub fn load(
        &self,
        files: &FolderList,
        indices: &[usize],
        draws: Draws<'_>,
        threads: usize,
        mut given: Option<Given<'_>>,
    ) -> Result<Batch> {
        files.check_batch(indices)?;
        let n = indices.len();
        let mut specs = Vec::with_capacity(n);
        let mut keys = Vec::with_capacity(n);
        for &index in indices {
            let (root, file) = files.at(index);
            let path = files.roots[root].path(file);
            let augment = draws.keys.augment_key(draws.epoch, index as u64);
            let alt = match self.alt {
                AltMode::None => AltSource::None,
                AltMode::NextFrame => AltSource::NextFrame(next_frame(&path)),
                AltMode::Tile => {
                    let pick = Key {
                        nonce: augment.nonce ^ (1 << 60),
                        ..augment
                    };
                    AltSource::Tile(files.other_tile(root, file, pick))
                }
            };
            specs.push(FolderItem { path, alt, augment });
            keys.push(draws.keys.key(draws.epoch, index as u64));
        }
        let opts = self.item;
        let decode = DecodeOptions::default();
        let loaded: Vec<(Loaded, bool)> = if threads <= 1 || n <= 1 {
            specs
                .iter()
                .map(|s| load_item(s, &opts, &decode))
                .collect::<Result<_>>()?
        } else {
            use rayon::prelude::*;
            pool::run(threads, || {
                specs
                    .par_iter()
                    .with_min_len(n.div_ceil(threads))
                    .map(|s| load_item(s, &opts, &decode))
                    .collect::<Result<_>>()
            })?
        };
        let (mut items, has_alt): (Vec<Loaded>, Vec<bool>) = loaded.into_iter().unzip();
        for (item, key) in items.iter_mut().zip(keys) {
            item.key = key;
        }
        let paths: Vec<_> = specs.into_iter().map(|s| s.path).collect();
        contract::check_one_size(&items, &paths)?;
        // has_alt is the loader's own output: written here, the rest by the stack.
        let has_alt_spec = Self::has_alt_spec(n);
        let has_alt = match given.as_mut().map(|g| g.take(&has_alt_spec)).transpose()? {
            Some(Some(OutBuf::Bool(buf))) => {
                buf.copy_from_slice(&has_alt);
                Data::Given
            }
            Some(_) => {
                return Err(CoreError::option(
                    "out",
                    format!("no output array given for {HAS_ALT}"),
                ))
            }
            None => Data::Bool(has_alt),
        };
        let mut outputs = contract::stack_named(
            &items,
            threads,
            Some(self.corruption(draws.corruptor)),
            self.wanted,
            &KEYS,
            &[n],
            given,
        )?;
        outputs.push((has_alt_spec, has_alt));
        Ok(Batch { outputs, paths })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loader(json: &str) -> Result<FolderLoader> {
        let opts = crate::load::options::read(&mut serde_json::Deserializer::from_str(json))?;
        FolderLoader::new(opts)
    }

    #[test]
    fn options_are_checked_by_name() {
        let msg = |json| {
            loader(json)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(msg(r#"{"target_size": 64, "scale": 4}"#), "");
        assert!(
            msg(r#"{"fetch_alt_image": true, "fetch_alt_tiled_image": true}"#)
                .contains("mutually exclusive")
        );
        assert!(msg(r#"{"center_crop_hq_sz": 0}"#).starts_with("option `center_crop_hq_sz`"));
        assert!(
            msg(r#"{"all_image_color_jitter": -1}"#).starts_with("option `all_image_color_jitter`")
        );
        let factor = r#"{"scale": 4, "corrupt_before_downsize": true,
                         "corrupt_before_downsize_factor": 3}"#;
        assert!(msg(factor).starts_with("option `corrupt_before_downsize_factor`"));
        // Read only with corrupt_before_downsize, as DLAS.
        let ignored = r#"{"scale": 4, "corrupt_before_downsize_factor": 3}"#;
        assert_eq!(msg(ignored), "");
        assert!(msg(r#"{"affine": [[1, 0]]}"#).starts_with("option `affine`"));
    }

    #[test]
    fn outputs_follow_the_options() {
        let corruptor = Corruptor::new(&["jpeg".into()], &[], 0, 1.0, false).unwrap();
        let keys = |json| {
            let specs = loader(json).unwrap().outputs(2, &corruptor).unwrap();
            specs
                .iter()
                .map(|s| (s.key, s.shape.clone()))
                .collect::<Vec<_>>()
        };
        let plain = keys(r#"{"target_size": 64, "scale": 2}"#);
        assert_eq!(
            plain,
            [
                ("hq", vec![2, 3, 64, 64]),
                ("lq", vec![2, 3, 32, 32]),
                ("corruption_entropy", vec![2, 1]),
                ("has_alt", vec![2]),
            ]
        );
        let alt = keys(r#"{"target_size": 64, "scale": 2, "fetch_alt_image": true}"#);
        assert_eq!(alt[2], ("alt_hq", vec![2, 3, 64, 64]));
        assert_eq!(alt[3], ("alt_lq", vec![2, 3, 32, 32]));
        assert_eq!(alt[4], ("corruption_entropy", vec![2, 2]));
        let skip = keys(r#"{"target_size": 64, "skip_lq": true}"#);
        assert_eq!(skip, [("hq", vec![2, 3, 64, 64]), ("has_alt", vec![2])]);
    }
}
