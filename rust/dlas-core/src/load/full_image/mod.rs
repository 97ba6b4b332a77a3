//! FullImageDataset items (docs/spec.md §5 `fullimage`, deprecated upstream): a random tile
//! pulled from each full image on the fly, with the whole image as its reference.
//!
//! Train phase: flips and transpose (`use_flip`, `use_rot`), a square crop with a
//! normally distributed offset, then a tile whose side is drawn half-normally between
//! `min_tile_size` and the square's side, its position biased to the centre; tile,
//! whole image and tile mask resized (OpenCV bilinear) to `min_tile_size`. The LQ side
//! is MATLAB's bicubic `imresize` by `1 / scale` (or a tile of the `dataroot_LQ` image
//! at the same place); then both are resized to `target_size` (and `/ scale`), the LQ
//! images blurred at random (`use_blurring`), and Gaussian noise added (`lq_noise`).
//! Other phases: the whole image, a mask of ones, the centre of the image.
//!
//! Unlike DLAS, the LQ image of `dataroot_LQ` gets the same flips, crop and tile as
//! the HQ image (DLAS draws them separately, so the pair does not line up), an even
//! `blur_magnitude` is made odd (OpenCV refuses even Gaussian kernels), and an image
//! smaller than `min_tile_size` is an error naming it ([`CoreError::ImageSize`]: the
//! dataset's `on_error: skip` passes over it).

mod loader;

use std::path::Path;

use super::multiscale::{oriented_square, Orientation};
use super::{check_side, resize_point, Planes};
use crate::corrupt::blur::{gaussian_blur_sized, motion_blur};
use crate::corrupt::{Augment, Key};
use crate::error::{CoreError, Result};
use crate::image::{decode_file, DecodeOptions, Rgb8};
use crate::planes::{matlab_resize_plane, resample_plane, Filter};
pub use loader::FullImageLoader;

/// The dataset's options, read by DLAS's names (normalised by the dataset: `train` is
/// `phase == "train"`, and every option is given).
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FullImageOptions {
    /// `phase == "train"`.
    pub train: bool,
    #[serde(rename = "min_tile_size")]
    pub min_tile: usize,
    #[serde(rename = "target_size")]
    pub target: usize,
    pub scale: usize,
    pub fixed_size: bool,
    #[serde(rename = "tile_scale_normal_stddev")]
    pub tile_dev: f64,
    #[serde(rename = "use_flip")]
    pub flip: bool,
    #[serde(rename = "use_rot")]
    pub rot: bool,
    #[serde(rename = "use_blurring")]
    pub blurring: bool,
    pub blur_magnitude: usize,
    #[serde(rename = "force_multiple")]
    pub multiple: usize,
    /// `lq_noise`, in 8-bit steps.
    #[serde(default)]
    pub lq_noise: Option<f64>,
}

/// One item: HQ, LQ, refs with their mask as a 4th plane, centres.
#[derive(Debug, Clone, PartialEq)]
pub struct FullItem {
    pub hq: Planes,
    pub lq: Planes,
    pub hq_ref: Planes,
    pub lq_ref: Planes,
    pub hq_centre: (i64, i64),
    pub lq_centre: (i64, i64),
}

/// The largest `blur_magnitude`: the blur kernels grow with it (a motion blur of up to
/// `3 * blur_magnitude` taps per side).
pub const MAX_BLUR_MAGNITUDE: usize = 100;

impl FullImageOptions {
    pub fn validate(&self) -> Result<()> {
        check_side("scale", self.scale, 1)?;
        check_side("force_multiple", self.multiple, 1)?;
        if self.blur_magnitude > MAX_BLUR_MAGNITUDE {
            return Err(CoreError::option(
                "blur_magnitude",
                format!(
                    "must be an integer from 0 to {MAX_BLUR_MAGNITUDE}, got {}",
                    self.blur_magnitude
                ),
            ));
        }
        if self.train {
            check_side("min_tile_size", self.min_tile, 1)?;
            check_side("target_size", self.target, 1)?;
        }
        if self.train {
            if self.min_tile == 0 || self.target == 0 {
                return Err(CoreError::option(
                    "min_tile_size",
                    "min_tile_size and target_size must be at least 1 in the train phase",
                ));
            }
            if self.target < self.scale {
                return Err(CoreError::option(
                    "target_size",
                    format!("must be at least scale ({})", self.scale),
                ));
            }
        }
        Ok(())
    }
}

fn resize(p: &Planes, h: usize, w: usize, filter: Filter) -> Planes {
    if (p.h, p.w) == (h, w) {
        return p.clone();
    }
    let mut data = Vec::with_capacity(p.c * h * w);
    for c in 0..p.c {
        data.extend(resample_plane(p.plane(c), p.w, p.h, w, h, filter));
    }
    Planes { c: p.c, h, w, data }
}

/// `cv2.resize(..., INTER_LINEAR)`.
fn linear(p: &Planes, h: usize, w: usize) -> Planes {
    resize(p, h, w, Filter::Linear)
}

/// DLAS's `imresize_np(img, 1 / scale)`: MATLAB bicubic to `ceil(side / scale)`.
fn matlab_shrink(p: &Planes, scale: usize) -> Planes {
    let mut data = Vec::new();
    let (mut h, mut w) = (0, 0);
    for c in 0..p.c {
        let (plane, dw, dh) = matlab_resize_plane(p.plane(c), p.w, p.h, 1.0 / scale as f64);
        data.extend(plane);
        (h, w) = (dh, dw);
    }
    Planes { c: p.c, h, w, data }
}

fn crop(p: &Planes, top: usize, left: usize, h: usize, w: usize) -> Planes {
    let mut data = Vec::with_capacity(p.c * h * w);
    for c in 0..p.c {
        let plane = p.plane(c);
        for r in top..top + h {
            data.extend_from_slice(&plane[r * p.w + left..r * p.w + left + w]);
        }
    }
    Planes { c: p.c, h, w, data }
}

/// DLAS's `pick_along_range(sz, r, dev)`: a start in `[0, sz - r]`, centred.
fn pick_along_range(sz: usize, r: usize, dev: f64, a: &mut Augment) -> usize {
    let margin = sz.saturating_sub(r) as f64;
    let v = (a.normal() * dev).min(1.0) * margin + (sz.saturating_sub(r) / 2) as f64;
    (v.trunc().max(0.0) as usize).min(sz.saturating_sub(r))
}

/// A tile pulled from a square image (DLAS's `pull_tile`), at the tile's place given
/// as fractions of the side: (tile, whole image, mask, centre), all `target` square.
struct Pulled {
    tile: Planes,
    whole: Planes,
    mask: Planes,
    centre: (i64, i64),
}

/// The tile `(top, left, size)` of a square of side `side`, moved to a square of side
/// `l` (the same place at that scale; exact when `l == side`).
fn pull(
    square: &Planes,
    (top, left, size): (usize, usize, usize),
    side: usize,
    target: usize,
) -> Pulled {
    let l = square.h;
    let sq = (size * l / side).clamp(1, l);
    let top = (top * l / side).min(l - sq);
    let left = (left * l / side).min(l - sq);
    let mut mask = Planes::zeros(1, l, l);
    for r in top..top + sq {
        mask.data[r * l + left..r * l + left + sq].fill(1.0);
    }
    let centre = ((top + sq / 2) as i64, (left + sq / 2) as i64);
    Pulled {
        tile: linear(&crop(square, top, left, sq, sq), target, target),
        whole: linear(square, target, target),
        mask: linear(&mask, target, target),
        centre: resize_point(centre, (l, l), (target, target)),
    }
}

/// DLAS's `augment_tile` blur of an LQ image at `strength`.
fn blur(img: &mut Planes, opts: &FullImageOptions, strength: f64, a: &mut Augment) {
    let mag = ((opts.blur_magnitude as f64 * strength) as usize).max(1);
    let det = a.below(101);
    if det < 40 {
        let sigma = a.below(mag) as f64;
        gaussian_blur_sized(img, mag | 1, sigma);
    } else if det < 70 {
        let len = 1 + a.below((mag * 3).saturating_sub(1).max(1));
        let angle = a.below(361) as f64;
        motion_blur(img, len, angle);
    }
}

fn with_mask(rgb: Planes, mask: &Planes) -> Planes {
    let mut data = rgb.data;
    data.extend_from_slice(&mask.data);
    Planes {
        c: 4,
        h: rgb.h,
        w: rgb.w,
        data,
    }
}

/// A mask plane of ones.
fn ones(h: usize, w: usize) -> Planes {
    Planes {
        c: 1,
        h,
        w,
        data: vec![1.0; h * w],
    }
}

fn square_of(img: &Rgb8, o: &Orientation) -> Planes {
    Planes::from_rgb8(&oriented_square(img, o))
}

/// Loads one item: the HQ image at `path`, the LQ image at `lq_path` when the dataset
/// has LQ folders, draws keyed by `key`.
pub fn load_item(
    path: &Path,
    lq_path: Option<&Path>,
    opts: &FullImageOptions,
    key: Key,
    decode: &DecodeOptions,
) -> Result<FullItem> {
    let img = decode_file(path, decode)?;
    let lq_img = lq_path.map(|p| decode_file(p, decode)).transpose()?;
    let mut a = Augment::new(key);
    let s = opts.scale;
    // HQ tile, its whole image and mask, centre; LQ the same; and the sizes the
    // centres refer to.
    let (mut hq, mut hq_ref, hq_mask, mut hq_centre, hq_dim);
    let (mut lq, mut lq_ref, lq_mask, mut lq_centre, lq_dim);
    if opts.train {
        let o = Orientation::draw_from(&mut a, opts.flip, opts.rot);
        let square = square_of(&img, &o);
        let l = square.h;
        if l < opts.min_tile {
            return Err(CoreError::image_size(
                path,
                format!(
                    "a {}x{} image is smaller than min_tile_size {}: no tile fits in its \
                     {l}x{l} square; lower min_tile_size, or remove it",
                    img.width, img.height, opts.min_tile
                ),
            ));
        }
        let size = if opts.fixed_size {
            opts.min_tile
        } else {
            let f = (a.normal() * opts.tile_dev).abs().min(1.0);
            opts.min_tile + ((l - opts.min_tile) as f64 * f) as usize
        };
        let left = pick_along_range(l, size, 0.3, &mut a);
        let top = pick_along_range(l, size, 0.3, &mut a);
        let tile = (top, left, size);
        let p = pull(&square, tile, l, opts.min_tile);
        hq_dim = (opts.min_tile, opts.min_tile);
        (hq_ref, hq_mask, hq_centre) = (p.whole, p.mask, p.centre);
        match &lq_img {
            Some(lq_img) => {
                // The same flips, square crop and tile, at the LQ image's scale.
                let lsq = square_of(lq_img, &o);
                let lt = opts.min_tile / s;
                let q = pull(&lsq, tile, l, lt.max(1));
                lq_dim = (q.whole.h, q.whole.w);
                (lq, lq_ref, lq_mask, lq_centre) = (q.tile, q.whole, q.mask, q.centre);
                hq = p.tile;
            }
            None => {
                // DLAS's _mod: the tile side rounded down to a multiple of scale, at
                // least target_size.
                let side = (opts.min_tile / s * s).max(opts.target);
                hq = linear(&p.tile, side, side);
                lq = matlab_shrink(&hq, s);
                lq_ref = matlab_shrink(&hq_ref, s);
                lq_dim = (lq_ref.h, lq_ref.w);
                lq_mask = hq_mask.clone();
                lq_centre = resize_point(hq_centre, hq_dim, lq_dim);
            }
        }
    } else {
        let full = Planes::from_rgb8(&img);
        hq_dim = (full.h, full.w);
        hq_mask = ones(full.h, full.w);
        hq_centre = ((full.h / 2) as i64, (full.w / 2) as i64);
        match &lq_img {
            Some(lq_img) => {
                lq = Planes::from_rgb8(lq_img);
                lq_ref = lq.clone();
                lq_dim = (lq.h, lq.w);
                lq_mask = ones(lq.h, lq.w);
                lq_centre = ((lq.h / 2) as i64, (lq.w / 2) as i64);
            }
            None => {
                lq = matlab_shrink(&full, s);
                lq_ref = lq.clone();
                lq_dim = (lq.h, lq.w);
                lq_mask = hq_mask.clone();
                lq_centre = resize_point(hq_centre, hq_dim, lq_dim);
            }
        }
        hq = full.clone();
        hq_ref = full;
    }
    // force_multiple: the LQ side cut to a multiple, the HQ side to scale times it.
    let m = opts.multiple;
    if lq.h % m != 0 || lq.w % m != 0 {
        let (h, w) = (lq.h - lq.h % m, lq.w - lq.w % m);
        if h == 0 || w == 0 {
            return Err(CoreError::image_size(
                path,
                format!(
                    "its {}x{} LQ image leaves no pixel once cut to a multiple of \
                     force_multiple {m}; lower force_multiple, or remove it",
                    lq.w, lq.h
                ),
            ));
        }
        lq = crop(&lq, 0, 0, h, w);
        lq_ref = crop(&lq_ref, 0, 0, h.min(lq_ref.h), w.min(lq_ref.w));
        let (hh, hw) = ((h * s).min(hq.h), (w * s).min(hq.w));
        hq = crop(&hq, 0, 0, hh, hw);
        hq_ref = crop(&hq_ref, 0, 0, hh.min(hq_ref.h), hw.min(hq_ref.w));
    }
    if opts.train {
        let (t, lt) = (opts.target, opts.target / s);
        lq = linear(&lq, lt, lt);
        hq = linear(&hq, t, t);
        if opts.blurring {
            blur(&mut lq, opts, 1.0, &mut a);
        }
        lq_ref = linear(&lq_ref, lt, lt);
        hq_ref = linear(&hq_ref, t, t);
        if opts.blurring {
            blur(&mut lq_ref, opts, 0.2, &mut a);
        }
    }
    let lq_mask = linear(&lq_mask, lq_ref.h, lq_ref.w);
    let hq_mask = linear(&hq_mask, hq_ref.h, hq_ref.w);
    lq_centre = resize_point(lq_centre, lq_dim, (lq_ref.h, lq_ref.w));
    hq_centre = resize_point(hq_centre, hq_dim, (hq_ref.h, hq_ref.w));
    if let Some(level) = opts.lq_noise {
        // One noise image added to the LQ image and to its reference (DLAS adds the same
        // tensor to both), when their sizes agree.
        let amp = (level / 255.0) as f32;
        let noise: Vec<f32> = (0..lq.data.len())
            .map(|_| a.normal() as f32 * amp)
            .collect();
        lq.data.iter_mut().zip(&noise).for_each(|(v, n)| *v += n);
        if lq_ref.data.len() == noise.len() {
            lq_ref
                .data
                .iter_mut()
                .zip(&noise)
                .for_each(|(v, n)| *v += n);
        }
    }
    Ok(FullItem {
        hq,
        lq,
        hq_ref: with_mask(hq_ref, &hq_mask),
        lq_ref: with_mask(lq_ref, &lq_mask),
        hq_centre,
        lq_centre,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_stay_in_range() {
        let mut a = Augment::new(Key::default());
        for _ in 0..200 {
            let v = pick_along_range(100, 30, 0.3, &mut a);
            assert!(v <= 70);
        }
        assert_eq!(pick_along_range(30, 30, 0.3, &mut a), 0);
    }

    fn options() -> FullImageOptions {
        FullImageOptions {
            train: true,
            min_tile: 32,
            target: 32,
            scale: 2,
            fixed_size: false,
            tile_dev: 0.17,
            flip: false,
            rot: false,
            blurring: false,
            blur_magnitude: 3,
            multiple: 1,
            lq_noise: None,
        }
    }

    #[test]
    fn sizes_and_kernels_from_options_are_bounded_by_name() {
        assert!(options().validate().is_ok());
        for (bad, option) in [
            (
                FullImageOptions {
                    target: 1 << 20,
                    ..options()
                },
                "target_size",
            ),
            (
                FullImageOptions {
                    min_tile: 1 << 20,
                    ..options()
                },
                "min_tile_size",
            ),
            (
                FullImageOptions {
                    scale: 1 << 40,
                    ..options()
                },
                "scale",
            ),
            (
                FullImageOptions {
                    blur_magnitude: MAX_BLUR_MAGNITUDE + 1,
                    ..options()
                },
                "blur_magnitude",
            ),
        ] {
            let msg = bad.validate().unwrap_err().to_string();
            assert!(msg.contains(&format!("`{option}`")), "{msg}");
        }
    }

    #[test]
    fn images_no_tile_fits_are_image_size_errors_naming_them() {
        let dir = std::env::temp_dir().join(format!("dlas-full-odd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (w, h) in [(1u32, 1u32), (2000, 16), (16, 2000)] {
            let path = dir.join(format!("{w}x{h}.png"));
            let pixels = vec![128u8; (w * h * 3) as usize];
            image::save_buffer(&path, &pixels, w, h, image::ExtendedColorType::Rgb8).unwrap();
            let err = load_item(&path, None, &options(), Key::default(), &Default::default())
                .unwrap_err();
            assert!(matches!(err, CoreError::ImageSize { .. }), "{err:?}");
            assert_eq!(err.path(), Some(path.as_path()));
            assert!(err.to_string().contains("smaller than min_tile_size 32"));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
