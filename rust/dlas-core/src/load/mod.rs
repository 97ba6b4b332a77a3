//! The loading pipeline of the chunked datasets (docs/spec.md §4): tile, ref and mask as float
//! planes in `[0, 1]`, resized to the target size, cropped to a multiple, and shrunk to
//! the LQ size, with the centre carried along, exactly in DLAS's order.
//!
//! Everything is float32, as DLAS computes it (OpenCV on float images), in planar
//! `C x H x W` layout so that the planes become torch tensors without a transpose.

mod batch;
pub mod contract;
pub mod folder;
pub mod full_image;
pub mod multiscale;
pub mod options;
pub mod pool;
pub mod refs;
pub mod single;

pub use crate::planes::{resize_plane, Planes};
pub use batch::{
    room, stack, stack_into, Corruption, Images, Layout, Loaded, Outs, Pixels, Stacked, Wanted,
};

use crate::error::{CoreError, Result};
use crate::image::Rgb8;

/// The largest image side the loaders make or accept as an option (`target_size`,
/// `min_tile_size`, `scale`, `force_multiple`, multiscale's `hq_tile_size *
/// 2^num_scales`): one float32 RGB plane of 8192 x 8192 is 805 MB, and an item holds
/// several. Larger values are refused by name before anything is allocated.
pub const MAX_SIDE: usize = 8192;

/// The most items one native batch call loads (`batch_size`, times `num_frames` for
/// MultiFrameDataset).
pub const MAX_BATCH_ITEMS: usize = 65536;

/// An error naming `batch_size` when a batch of `n` items is over [`MAX_BATCH_ITEMS`]
/// (checked before anything is decoded or allocated).
pub fn check_batch_len(n: usize) -> Result<()> {
    if n > MAX_BATCH_ITEMS {
        return Err(CoreError::option(
            "batch_size",
            format!(
                "a batch of {n} items is over the limit of {MAX_BATCH_ITEMS} items per \
                 call; lower batch_size"
            ),
        ));
    }
    Ok(())
}

/// An error naming `option` unless `value` is in `lo..=MAX_SIDE`.
pub fn check_side(option: &str, value: usize, lo: usize) -> Result<()> {
    if !(lo..=MAX_SIDE).contains(&value) {
        return Err(CoreError::option(
            option,
            format!("must be an integer from {lo} to {MAX_SIDE}, got {value}"),
        ));
    }
    Ok(())
}

/// The dataset options that shape an item (docs/spec.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// `target_size`: HQ side after `resize_hq` (None: keep the tile's size).
    pub target_size: Option<usize>,
    /// `force_multiple`: the LQ side must be a multiple of it.
    pub multiple: usize,
    /// `scale`: HQ side / LQ side (forced to 1 in eval mode by the caller).
    pub scale: usize,
    /// `eval`: LQ = HQ.
    pub eval: bool,
}

impl Shape {
    /// Checks DLAS's constraint `(target_size // scale) % force_multiple == 0`.
    /// Also bounds every size by [`MAX_SIDE`].
    pub fn validate(&self) -> Result<()> {
        check_side("scale", self.scale, 1)?;
        check_side("force_multiple", self.multiple, 1)?;
        if let Some(t) = self.target_size {
            check_side("target_size", t, 1)?;
            if t < self.scale {
                return Err(CoreError::option(
                    "scale",
                    format!("must be at most target_size ({t}), got {}", self.scale),
                ));
            }
        }
        if let Some(t) = self.target_size {
            if t == 0 || !(t / self.scale).is_multiple_of(self.multiple) {
                return Err(CoreError::option(
                    "target_size",
                    format!(
                        "(target_size // scale) % force_multiple must be 0: ({t} // {}) % {} = {}",
                        self.scale,
                        self.multiple,
                        (t / self.scale.max(1)) % self.multiple
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The reference side of an item.
pub struct Reference<'a> {
    /// The chunk's decoded ref.jpg.
    pub image: &'a Rgb8,
    /// `(row, col)` and width of the tile in ref pixels (DLAS's defaults (128, 128) and
    /// 256 when the dataset does not read centers.pt).
    pub centre: (i64, i64),
    pub width: i64,
}

/// One item's tensors (planar float32) and centres.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub hq: Planes,
    /// ref RGB + mask: 4 planes.
    pub hq_ref: Planes,
    pub lq: Planes,
    pub lq_ref: Planes,
    pub hq_centre: (i64, i64),
    pub lq_centre: (i64, i64),
}

/// DLAS's `resize_point`: each coordinate times `new / old` (as a double), truncated.
pub fn resize_point(p: (i64, i64), old: (usize, usize), new: (usize, usize)) -> (i64, i64) {
    let dh = new.0 as f64 / old.0 as f64;
    let dw = new.1 as f64 / old.1 as f64;
    ((dh * p.0 as f64) as i64, (dw * p.1 as f64) as i64)
}

/// The mask of docs/spec.md §4 step 2: `h x w` of 0.1 with 1.0 on rows and columns
/// `[centre - width // 2, centre + width // 2)`, clamped to the plane (DLAS lets a
/// negative start wrap around).
pub fn mask_plane(h: usize, w: usize, centre: (i64, i64), width: i64) -> Vec<f32> {
    let mut m = vec![0.1f32; h * w];
    let half = width.div_euclid(2);
    let span = |c: i64, len: usize| {
        let lo = (c - half).clamp(0, len as i64) as usize;
        let hi = (c + half).clamp(0, len as i64) as usize;
        lo..hi.max(lo)
    };
    let cols = span(centre.1, w);
    for r in span(centre.0, h) {
        m[r * w + cols.start..r * w + cols.end].fill(1.0);
    }
    m
}

/// Where an item's planes go: resize_hq's target (if it resizes), the crop to a
/// multiple, and the LQ size. Depends only on the tile's size and the options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub tile: (usize, usize),
    pub resize: Option<(usize, usize)>,
    pub hq: (usize, usize),
    pub lq: (usize, usize),
    pub eval: bool,
}

impl Geometry {
    pub fn new(tile: (usize, usize), shape: &Shape) -> Geometry {
        let resize = shape.target_size.filter(|&t| t != tile.0).map(|t| (t, t));
        let (ch, cw) = resize.unwrap_or(tile);
        let m = shape.multiple * if shape.eval { 1 } else { shape.scale };
        let hq = (ch - ch % m, cw - cw % m);
        let lq = if shape.eval {
            hq
        } else {
            (hq.0 / shape.scale, hq.1 / shape.scale)
        };
        Geometry {
            tile,
            resize,
            hq,
            lq,
            eval: shape.eval,
        }
    }

    /// Planes of tile size -> HQ planes (resize_hq and the crop to a multiple).
    pub fn hq_planes(&self, p: Planes) -> Planes {
        let p = match self.resize {
            Some((h, w)) => p.resized(h, w),
            None => p,
        };
        if (p.h, p.w) == self.hq {
            p
        } else {
            p.cropped(self.hq.0, self.hq.1)
        }
    }

    /// An error naming `tile` when the tile is too small to give any pixel (a side
    /// under `force_multiple * scale`): that image's fault ([`CoreError::ImageSize`]),
    /// which `on_error: skip` passes over.
    pub fn check(&self, tile: &std::path::Path) -> Result<()> {
        if self.hq.0 == 0 || self.hq.1 == 0 || self.lq.0 == 0 || self.lq.1 == 0 {
            return Err(CoreError::image_size(
                tile,
                format!(
                    "a {}x{} image leaves no pixel once cropped to a multiple of \
                     force_multiple * scale and shrunk by scale; set target_size to \
                     resize such images, or remove it",
                    self.tile.1, self.tile.0
                ),
            ));
        }
        Ok(())
    }

    /// `Some(k)` when the HQ planes are the top-left of the tile shrunk by the integer
    /// factor `k >= 2` in both directions (resize_hq by an integer factor, then the
    /// crop).
    pub fn integer_shrink(&self) -> Option<usize> {
        let (th, tw) = self.resize?;
        let k = self.tile.0 / th;
        (k >= 2 && self.tile.0 == th * k && self.tile.1 == tw * k).then_some(k)
    }

    /// True when the HQ planes are the tile's own pixels (no resize, no crop).
    pub fn hq_is_tile(&self) -> bool {
        self.resize.is_none() && self.hq == self.tile
    }

    /// `Some(k)` when the LQ planes are the HQ planes' `k x k` block means (every
    /// training geometry: the HQ sides are multiples of `scale`, the LQ sides the HQ
    /// sides over `scale`); None in eval mode.
    pub fn lq_factor(&self) -> Option<usize> {
        let k = self.hq.0.checked_div(self.lq.0)?;
        (!self.eval && self.hq == (self.lq.0 * k, self.lq.1 * k)).then_some(k)
    }

    /// Planes of tile size -> (HQ planes, LQ planes).
    pub fn apply(&self, p: Planes) -> (Planes, Planes) {
        let hq = self.hq_planes(p);
        let lq = if self.eval {
            hq.clone()
        } else {
            hq.resized(self.lq.0, self.lq.1)
        };
        (hq, lq)
    }

    /// A centre in tile pixels -> (HQ centre, LQ centre), through DLAS's resize_point.
    pub fn centres(&self, mut c: (i64, i64)) -> ((i64, i64), (i64, i64)) {
        let mut size = self.tile;
        if let Some(r) = self.resize {
            c = resize_point(c, size, r);
            size = r;
        }
        if size != self.hq {
            c = resize_point(c, size, self.hq);
        }
        let lq = if self.eval {
            c
        } else {
            resize_point(c, self.hq, self.lq)
        };
        (c, lq)
    }
}

/// The part of an item that depends only on the chunk's ref and the geometry, shared
/// by every tile of the chunk.
#[derive(Debug, Clone, PartialEq)]
pub enum PreparedRef {
    /// The ref's HQ and LQ RGB planes.
    Planes { hq: Planes, lq: Planes },
    /// A ref already of the HQ size whose LQ planes are its `k x k` block means: its
    /// bytes, converted into each item's slots in one pass
    /// ([`Planes::write_rgb8_boxed`]), which reads a quarter of the memory that
    /// copying prepared float planes reads (each item of a batch writes 1 MB of ref
    /// planes; the prepared planes of a batch's chunks do not stay in the cache).
    Bytes { image: Rgb8, k: usize },
}

impl PreparedRef {
    pub fn new(image: &Rgb8, geo: &Geometry) -> PreparedRef {
        // resize_hq takes the ref straight to the target size, as DLAS does, whatever
        // its own size. Without a target, a ref of another size than its tiles is fitted
        // to the tile size (DLAS would fail to stack the two).
        let size = geo.resize.unwrap_or(geo.tile);
        if let Some(k) = geo.lq_factor() {
            if (image.height, image.width) == size && size == geo.hq {
                // Neither resized nor cropped.
                return PreparedRef::Bytes {
                    image: image.clone(),
                    k,
                };
            }
        }
        let planes = Planes::from_rgb8(image);
        let planes = if (planes.h, planes.w) == size {
            planes
        } else {
            planes.resized(size.0, size.1)
        };
        let hq = if (planes.h, planes.w) == geo.hq {
            planes
        } else {
            planes.cropped(geo.hq.0, geo.hq.1)
        };
        let lq = if geo.eval {
            hq.clone()
        } else {
            hq.resized(geo.lq.0, geo.lq.1)
        };
        PreparedRef::Planes { hq, lq }
    }
}

/// The mask planes and centres of one (centre, width) under a geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedMask {
    pub hq: Planes,
    pub lq: Planes,
    pub hq_centre: (i64, i64),
    pub lq_centre: (i64, i64),
}

impl PreparedMask {
    pub fn new(geo: &Geometry, centre: (i64, i64), width: i64) -> PreparedMask {
        let (h, w) = geo.tile;
        let plane = Planes {
            c: 1,
            h,
            w,
            data: mask_plane(h, w, centre, width),
        };
        let (hq, lq) = geo.apply(plane);
        let (hq_centre, lq_centre) = geo.centres(centre);
        PreparedMask {
            hq,
            lq,
            hq_centre,
            lq_centre,
        }
    }
}

/// Builds one item (docs/spec.md §4 steps 1-4) from a decoded tile and, when the dataset asks
/// for it and the chunk has one, its reference: a batch of one through [`stack`], the
/// loaders' own path. `corruption` comes with the item's key.
pub fn build_item(
    tile: &Rgb8,
    reference: Option<Reference<'_>>,
    shape: &Shape,
    corruption: Option<(Corruption<'_>, crate::corrupt::Key)>,
) -> Result<Item> {
    let geo = Geometry::new((tile.height, tile.width), shape);
    let reference = reference.map(|r| {
        (
            std::sync::Arc::new(PreparedRef::new(r.image, &geo)),
            std::sync::Arc::new(PreparedMask::new(&geo, r.centre, r.width)),
        )
    });
    let item = Loaded {
        reference,
        key: corruption.map(|c| c.1).unwrap_or_default(),
        ..Loaded::new(geo, tile.clone())
    };
    let s = stack(
        std::slice::from_ref(&item),
        1,
        corruption.map(|c| c.0),
        Wanted::default(),
    )?;
    let planes = |c: usize, (h, w): (usize, usize), data: Vec<f32>| Planes { c, h, w, data };
    let zeros_if_empty = |v: Vec<f32>, (h, w): (usize, usize)| {
        if v.is_empty() {
            vec![0.0; 4 * h * w]
        } else {
            v
        }
    };
    Ok(Item {
        hq: planes(3, geo.hq, s.images.hq),
        hq_ref: planes(4, geo.hq, zeros_if_empty(s.images.hq_ref, geo.hq)),
        lq: planes(3, geo.lq, s.images.lq),
        lq_ref: planes(4, geo.lq, zeros_if_empty(s.images.lq_ref, geo.lq)),
        hq_centre: (s.hq_centres[0], s.hq_centres[1]),
        lq_centre: (s.lq_centres[0], s.lq_centres[1]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_is_clamped_not_wrapped() {
        let m = mask_plane(8, 8, (1, 6), 6);
        // rows [-2, 4) -> [0, 4), cols [3, 9) -> [3, 8)
        for r in 0..8 {
            for c in 0..8 {
                let inside = r < 4 && c >= 3;
                assert_eq!(m[r * 8 + c], if inside { 1.0 } else { 0.1 }, "({r},{c})");
            }
        }
        assert!(mask_plane(4, 4, (100, 100), 8).iter().all(|&v| v == 0.1));
    }

    #[test]
    fn shapes_are_checked_by_the_option_they_break() {
        let shape = |target_size, multiple, scale| Shape {
            target_size,
            multiple,
            scale,
            eval: false,
        };
        assert!(shape(Some(128), 32, 2).validate().is_ok());
        assert!(shape(None, 3, 4).validate().is_ok());
        let err = |s: Shape| s.validate().unwrap_err().to_string();
        assert!(err(shape(Some(3), 1, 4)).starts_with("option `scale`: must be at most"));
        assert!(err(shape(Some(30), 4, 2)).contains("(target_size // scale) % force_multiple"));
        assert!(err(shape(Some(64), 0, 2)).starts_with("option `force_multiple`"));
    }

    #[test]
    fn resize_point_truncates_like_python_int() {
        assert_eq!(resize_point((128, 100), (256, 256), (128, 128)), (64, 50));
        assert_eq!(resize_point((3, 5), (10, 10), (4, 4)), (1, 2));
        assert_eq!(resize_point((-3, 5), (10, 10), (4, 4)), (-1, 2));
    }

    #[test]
    fn shapes_follow_target_multiple_and_scale() {
        let tile = Rgb8::new(100, 100, vec![200; 100 * 100 * 3]);
        let ref_img = Rgb8::new(100, 100, vec![50; 100 * 100 * 3]);
        let r = || Reference {
            image: &ref_img,
            centre: (50, 50),
            width: 40,
        };
        let shape = Shape {
            target_size: Some(64),
            multiple: 3,
            scale: 2,
            eval: false,
        };
        let item = build_item(&tile, Some(r()), &shape, None).unwrap();
        // 100 -> 64, cropped to a multiple of 6 -> 60, LQ 30.
        assert_eq!((item.hq.c, item.hq.h, item.hq.w), (3, 60, 60));
        assert_eq!((item.hq_ref.c, item.lq.h, item.lq_ref.c), (4, 30, 4));
        assert_eq!(item.hq_centre, (30, 30)); // 50 * 64/100 = 32 -> 32 * 60/64 = 30
        assert_eq!(item.lq_centre, (15, 15));
        assert!(item
            .hq
            .data
            .iter()
            .all(|&v| (v - 200.0 / 255.0).abs() < 1e-5));
        let eval = build_item(
            &tile,
            None,
            &Shape {
                target_size: None,
                multiple: 1,
                scale: 4,
                eval: true,
            },
            None,
        )
        .unwrap();
        assert_eq!(eval.lq, eval.hq);
        assert_eq!(eval.hq_centre, (0, 0));
        assert!(eval.hq_ref.data.iter().all(|&v| v == 0.0));
    }

    /// A ref of the HQ size is converted into each item's slots from its bytes: the
    /// same planes as converting it once and shrinking (and for a ref of another size).
    #[test]
    fn refs_from_bytes_give_the_planes_of_refs_from_planes() {
        let bytes = |w: usize, h: usize, seed: usize| {
            let data = (0..w * h * 3)
                .map(|i| ((i * 2_654_435_761usize + seed) >> 9) as u8)
                .collect();
            Rgb8::new(w, h, data)
        };
        let tile = bytes(64, 48, 1);
        let shape = Shape {
            target_size: None,
            multiple: 1,
            scale: 4,
            eval: false,
        };
        let geo = Geometry::new((48, 64), &shape);
        for ref_img in [bytes(64, 48, 2), bytes(80, 60, 3)] {
            let same = (ref_img.height, ref_img.width) == (48, 64);
            assert_eq!(
                matches!(PreparedRef::new(&ref_img, &geo), PreparedRef::Bytes { .. }),
                same
            );
            let r = Reference {
                image: &ref_img,
                centre: (20, 30),
                width: 32,
            };
            let item = build_item(&tile, Some(r), &shape, None).unwrap();
            let planes = Planes::from_rgb8(&ref_img).resized(48, 64);
            let small = planes.resized(12, 16);
            let bits = |p: &[f32]| p.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&item.hq_ref.data[..3 * 48 * 64]), bits(&planes.data));
            assert_eq!(bits(&item.lq_ref.data[..3 * 12 * 16]), bits(&small.data));
            let mask = PreparedMask::new(&geo, (20, 30), 32);
            assert_eq!(item.hq_ref.data[3 * 48 * 64..], mask.hq.data[..]);
            assert_eq!(item.lq_ref.data[3 * 12 * 16..], mask.lq.data[..]);
        }
    }

    #[test]
    fn invalid_shapes_name_the_option() {
        let bad = Shape {
            target_size: Some(100),
            multiple: 32,
            scale: 2,
            eval: false,
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("target_size"));
    }

    #[test]
    fn sizes_from_options_are_bounded_by_name() {
        let shape = |target_size, multiple, scale| Shape {
            target_size,
            multiple,
            scale,
            eval: false,
        };
        for (bad, option) in [
            (shape(Some(MAX_SIDE * 2), 1, 1), "target_size"),
            (shape(Some(1 << 20), 1, 1), "target_size"),
            (shape(None, 1, 0), "scale"),
            (shape(None, 1, 1 << 40), "scale"),
            (shape(None, 0, 1), "force_multiple"),
            (shape(None, 1 << 40, 1), "force_multiple"),
        ] {
            let msg = bad.validate().unwrap_err().to_string();
            assert!(msg.contains(&format!("`{option}`")), "{msg}");
        }
        assert!(shape(Some(MAX_SIDE), 1, 1).validate().is_ok());
        assert!(check_batch_len(MAX_BATCH_ITEMS).is_ok());
        let msg = check_batch_len(MAX_BATCH_ITEMS + 1)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`batch_size`"), "{msg}");
        // An output nobody can allocate is an error, not an abort.
        let msg = room::<f32>(1 << 20, 1 << 40).unwrap_err().to_string();
        assert!(msg.contains("`batch_size`"), "{msg}");
        assert!(room::<f32>(usize::MAX, 2).is_err());
    }

    #[test]
    fn a_tile_too_small_for_the_multiple_is_that_files_fault() {
        let shape = Shape {
            target_size: None,
            multiple: 4,
            scale: 2,
            eval: false,
        };
        let path = std::path::Path::new("chunk/00000001.jpg");
        let err = Geometry::new((1, 1), &shape).check(path).unwrap_err();
        assert!(matches!(err, CoreError::ImageSize { .. }), "{err:?}");
        assert_eq!(err.path(), Some(path));
        assert!(err.to_string().contains("a 1x1 image leaves no pixel"));
        assert!(Geometry::new((16, 16), &shape).check(path).is_ok());
    }
}
