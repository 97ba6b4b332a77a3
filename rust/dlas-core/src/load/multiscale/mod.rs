//! MultiScaleDataset items (docs/spec.md §5 `multiscale`): a random flip/transpose, a square
//! crop with a normally distributed offset, an area resize to `t * 2^n`, and the
//! quadtree of patches, each shrunk to `t`, in DLAS's order; the same tree cut from a
//! corrupted copy and shrunk by `scale` gives the LQ patches.
//!
//! Every patch at depth `d` is the area shrink of a `t * 2^(n - d)` square by
//! `2^(n - d)`, which is a `t x t` window of the full image's box pyramid at level
//! `n - d` (a box mean of box means is the box mean). So the image is halved `n` times
//! and the patches are copied out of the levels, instead of resizing each patch.

mod loader;

use super::Planes;
use crate::corrupt::{Augment, Corruptor, Key};
use crate::error::{CoreError, Result};
use crate::image::{decode_file, decode_file_reduced, DecodeOptions, Region, Rgb8};
use crate::planes::{area_window_rgb8, Window};
pub use loader::{MultiScaleLoader, MultiScaleOptions};

/// The dataset's shape options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MultiScale {
    /// `hq_tile_size` (t).
    pub tile: usize,
    /// `num_scales` (n).
    pub scales: usize,
    /// `scale`: HQ patch side / LQ patch side.
    pub scale: usize,
    /// `exact_decode`: every image decoded at full size (see [`load_item`]).
    pub exact_decode: bool,
}

/// One patch: its pyramid level and the top-left of its `t x t` window there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patch {
    pub level: usize,
    pub row: usize,
    pub col: usize,
}

impl MultiScale {
    /// Checks the options (every name in the error is the option's).
    pub fn validate(&self) -> Result<()> {
        if self.tile == 0 {
            return Err(CoreError::option("hq_tile_size", "must be at least 1"));
        }
        if self.scales == 0 || self.scales > 12 {
            return Err(CoreError::option(
                "num_scales",
                format!("must be in 1..=12, got {}", self.scales),
            ));
        }
        if self.scale == 0 || !self.tile.is_multiple_of(self.scale) {
            return Err(CoreError::option(
                "scale",
                format!(
                    "must divide hq_tile_size ({}), got {}",
                    self.tile, self.scale
                ),
            ));
        }
        if self
            .tile
            .checked_mul(1 << self.scales)
            .is_none_or(|c| c > super::MAX_SIDE)
        {
            return Err(CoreError::option(
                "num_scales",
                format!(
                    "hq_tile_size * 2^num_scales = {} * 2^{} is over {} pixels",
                    self.tile,
                    self.scales,
                    super::MAX_SIDE
                ),
            ));
        }
        Ok(())
    }

    /// The side the image is resized to: `t * 2^n`.
    pub fn cap(&self) -> usize {
        self.tile << self.scales
    }

    /// How many patches an item has: `(4^n - 1) / 3`.
    pub fn count(&self) -> usize {
        ((1usize << (2 * self.scales)) - 1) / 3
    }

    /// The patches in DLAS's order: the whole image, then at each depth the four
    /// quadrants (top-left, top-right, bottom-left, bottom-right) of the current patch
    /// listed together, then each of them recursed into in that order.
    pub fn patches(&self) -> Vec<Patch> {
        let n = self.scales;
        let mut out = vec![Patch {
            level: n,
            row: 0,
            col: 0,
        }];
        // Positions are in full-image pixels; a patch at depth d is cap >> d wide.
        fn visit(ms: &MultiScale, depth: usize, top: usize, left: usize, out: &mut Vec<Patch>) {
            if depth >= ms.scales {
                return;
            }
            let size = ms.cap() >> depth;
            let level = ms.scales - depth;
            let quads = [
                (top, left),
                (top, left + size),
                (top + size, left),
                (top + size, left + size),
            ];
            for &(r, c) in &quads {
                out.push(Patch {
                    level,
                    row: r >> level,
                    col: c >> level,
                });
            }
            for &(r, c) in &quads {
                visit(ms, depth + 1, r, c, out);
            }
        }
        visit(self, 1, 0, 0, &mut out);
        out
    }
}

/// The random choices of an item: horizontal flip, vertical flip, transpose, and the
/// crop offset `u ~ N(0, 0.3)` clipped to [-1, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Orientation {
    pub hflip: bool,
    pub vflip: bool,
    pub transpose: bool,
    pub offset: f64,
}

impl Orientation {
    /// The draws from `a`: a horizontal flip only if `flip`, the vertical flip and
    /// transpose only if `rot` (DLAS's `use_flip` / `use_rot`), then the offset.
    pub fn draw_from(a: &mut Augment, flip: bool, rot: bool) -> Orientation {
        let hflip = a.coin() && flip;
        let vflip = a.coin() && rot;
        let transpose = a.coin() && rot;
        Orientation {
            hflip,
            vflip,
            transpose,
            offset: (a.normal() * 0.3).clamp(-1.0, 1.0),
        }
    }

    /// DLAS's draws (`util.augment(..., True, True)` and `get_square_image`).
    pub fn draw(key: Key) -> Orientation {
        let mut a = Augment::new(key);
        Orientation::draw_from(&mut a, true, true)
    }
}

/// DLAS's `get_square_image` offset along a side `slack` pixels longer than the other:
/// `max(int(c + u (c - 2)), 0)` with `c = slack // 2`, kept inside the image (DLAS can
/// run past the end when the slack is under 4 and then returns a short side).
pub fn square_offset(slack: usize, u: f64) -> usize {
    let c = (slack / 2) as f64;
    let v = (c + u * (c - 2.0)).trunc().max(0.0) as usize;
    v.min(slack)
}

/// The oriented square of `img` (flips, transpose, then the square crop of the
/// longer side), in one pass over the source.
pub fn oriented_square(img: &Rgb8, o: &Orientation) -> Rgb8 {
    let (h, w) = (img.height, img.width);
    let (top, left, side) = transformed_square(h, w, o);
    // Transformed (y, x) -> source (row, col): undo the transpose, then the vertical
    // flip, then the horizontal flip.
    let src = |y: usize, x: usize| {
        let (r, c) = if o.transpose { (x, y) } else { (y, x) };
        let r = if o.vflip { h - 1 - r } else { r };
        let c = if o.hflip { w - 1 - c } else { c };
        (r, c)
    };
    let mut data = Vec::with_capacity(side * side * 3);
    for y in top..top + side {
        if !o.transpose {
            let (r, c0) = src(y, left);
            let (_, c1) = src(y, left + side - 1);
            let row = &img.data[r * w * 3..(r + 1) * w * 3];
            if c0 <= c1 {
                data.extend_from_slice(&row[c0 * 3..(c1 + 1) * 3]);
            } else {
                for px in row[c1 * 3..(c0 + 1) * 3].chunks_exact(3).rev() {
                    data.extend_from_slice(px);
                }
            }
        } else {
            for x in left..left + side {
                let (r, c) = src(y, x);
                data.extend_from_slice(&img.data[(r * w + c) * 3..(r * w + c) * 3 + 3]);
            }
        }
    }
    Rgb8::new(side, side, data)
}

/// The square crop of an `h x w` image once flipped and transposed: `(top, left,
/// side)` in the transformed image's coordinates.
fn transformed_square(h: usize, w: usize, o: &Orientation) -> (usize, usize, usize) {
    let (th, tw) = if o.transpose { (w, h) } else { (h, w) };
    let side = th.min(tw);
    let (top, left) = if th > tw {
        (square_offset(th - tw, o.offset), 0)
    } else if tw > th {
        (0, square_offset(tw - th, o.offset))
    } else {
        (0, 0)
    };
    (top, left, side)
}

/// Where [`oriented_square`]'s square lies in the image itself (`h x w`, before any
/// flip or transpose): `(top, left, side)`.
pub fn source_square(h: usize, w: usize, o: &Orientation) -> (usize, usize, usize) {
    let (top, left, side) = transformed_square(h, w, o);
    // The transformed rows and columns, as source rows and columns.
    let (rows, cols) = if o.transpose {
        (left, top)
    } else {
        (top, left)
    };
    let row = if o.vflip { h - rows - side } else { rows };
    let col = if o.hflip { w - cols - side } else { cols };
    (row, col, side)
}

/// `p` (square planes) flipped and transposed as [`Orientation`] turns an image:
/// output `(y, x)` is input `(i, j)` with `(i, j) = (x, y)` when transposed, then `i`
/// mirrored by the vertical flip and `j` by the horizontal one.
fn orient(p: Planes, o: &Orientation) -> Planes {
    if !(o.hflip || o.vflip || o.transpose) {
        return p;
    }
    let n = p.h;
    assert_eq!(p.w, n, "square planes");
    let mut out = Planes::zeros(p.c, n, n);
    for c in 0..p.c {
        let src = p.plane(c);
        let dst = &mut out.data[c * n * n..(c + 1) * n * n];
        for y in 0..n {
            for x in 0..n {
                let (i, j) = if o.transpose { (x, y) } else { (y, x) };
                let i = if o.vflip { n - 1 - i } else { i };
                let j = if o.hflip { n - 1 - j } else { j };
                dst[y * n + x] = src[i * n + j];
            }
        }
    }
    out
}

/// The oriented square of the image at `path`, area-resized to `cap x cap`: a JPEG
/// whose square is 4x `cap` or more is decoded reduced (1/2, 1/4, 1/8; the square
/// kept at twice `cap` or more) over the square only and resized from there, in the
/// image's own orientation, which is then applied to the result (a flip or a
/// transpose of a square commutes with the area resize). Anything else, and every
/// image with `exact`, is decoded at full size as DLAS does.
fn square_planes(
    path: &std::path::Path,
    o: &Orientation,
    cap: usize,
    decode: &DecodeOptions,
    exact: bool,
) -> Result<Planes> {
    let img = if exact {
        decode_file(path, decode)?
    } else {
        let mut plan = None;
        let part = decode_file_reduced(path, decode, |w, h| {
            let (top, left, side) = source_square(h, w, o);
            let k = [8, 4, 2]
                .into_iter()
                .find(|&k| side >= 2 * cap * k)
                .unwrap_or(1);
            plan = Some((top, left, side));
            Some(if k == 1 {
                (Region::full(w, h), 1)
            } else {
                let region = Region {
                    top,
                    left,
                    height: side,
                    width: side,
                };
                (region, k)
            })
        })?
        .expect("a region was asked for");
        if part.reduction == 1 {
            part.img
        } else {
            let (top, left, side) = plan.expect("the size was read");
            let r = part.reduction as f64;
            let window = Window {
                top: top as f64 / r - part.top as f64,
                left: left as f64 / r - part.left as f64,
                height: side as f64 / r,
                width: side as f64 / r,
            };
            let planes = area_window_rgb8(part.img.view(), window, false, cap, cap);
            return Ok(orient(planes, o));
        }
    };
    if img.width == 0 || img.height == 0 {
        return Err(CoreError::Decode {
            path: path.to_path_buf(),
            reason: "empty image".into(),
        });
    }
    let square = oriented_square(&img, o);
    drop(img);
    Ok(Planes::from_rgb8(&square).resized(cap, cap))
}

/// The box pyramid of `full` (cap x cap): level k is the image shrunk by 2^k, for
/// k = 1..=n (level 0 is `full` itself, not copied).
fn pyramid(full: &Planes, n: usize) -> Vec<Planes> {
    let mut levels: Vec<Planes> = Vec::with_capacity(n);
    for k in 0..n {
        let prev = if k == 0 { full } else { &levels[k - 1] };
        let half = prev.resized(prev.h / 2, prev.w / 2);
        levels.push(half);
    }
    levels
}

/// Copies each patch's `t x t` window of its level into `out` (patch after patch,
/// `3 * t * t` each), shrunk by `shrink` (1: as it is).
fn cut(
    full: &Planes,
    levels: &[Planes],
    patches: &[Patch],
    t: usize,
    shrink: usize,
    out: &mut [f32],
) {
    let s = t / shrink;
    for (p, dst) in patches.iter().zip(out.chunks_exact_mut(3 * s * s)) {
        let level = if p.level == 0 {
            full
        } else {
            &levels[p.level - 1]
        };
        let mut window = Planes {
            c: 3,
            h: t,
            w: t,
            data: Vec::with_capacity(3 * t * t),
        };
        for c in 0..3 {
            let plane = level.plane(c);
            for r in p.row..p.row + t {
                window
                    .data
                    .extend_from_slice(&plane[r * level.w + p.col..r * level.w + p.col + t]);
            }
        }
        if shrink == 1 {
            dst.copy_from_slice(&window.data);
        } else {
            dst.copy_from_slice(&window.resized(s, s).data);
        }
    }
}

/// Loads one item into `hq` (`count * 3 * t * t` values) and `lq`
/// (`count * 3 * (t/s)^2`): orientation and crop drawn from `augment`, the corruption
/// keyed by `key` (none when `corruptor` is None).
pub fn load_item(
    path: &std::path::Path,
    ms: &MultiScale,
    augment: Key,
    corruption: Option<(&Corruptor, Key)>,
    decode: &DecodeOptions,
    hq: &mut [f32],
    lq: &mut [f32],
) -> Result<()> {
    let o = Orientation::draw(augment);
    let full = square_planes(path, &o, ms.cap(), decode, ms.exact_decode)?;
    let patches = ms.patches();
    let t = ms.tile;
    let levels = pyramid(&full, ms.scales);
    cut(&full, &levels, &patches, t, 1, hq);
    match corruption {
        Some((c, key)) if !c.changes_nothing() => {
            drop(levels);
            let mut corrupted = full;
            c.corrupt(&mut [&mut corrupted], key)?;
            let levels = pyramid(&corrupted, ms.scales);
            cut(&corrupted, &levels, &patches, t, ms.scale, lq);
        }
        _ => cut(&full, &levels, &patches, t, ms.scale, lq),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_order_and_count_follow_dlas() {
        let ms = MultiScale {
            tile: 4,
            scales: 3,
            scale: 1,
            exact_decode: false,
        };
        let p = ms.patches();
        assert_eq!(p.len(), ms.count());
        assert_eq!(p.len(), 21);
        // Root, then the four quadrants of the 32x32 image at level 2 (8x8 windows
        // of 4), then the first quadrant's four children at level 1.
        assert_eq!(
            p[0],
            Patch {
                level: 3,
                row: 0,
                col: 0
            }
        );
        let q: Vec<_> = p[1..5].iter().map(|p| (p.level, p.row, p.col)).collect();
        assert_eq!(q, [(2, 0, 0), (2, 0, 4), (2, 4, 0), (2, 4, 4)]);
        let c: Vec<_> = p[5..9].iter().map(|p| (p.level, p.row, p.col)).collect();
        assert_eq!(c, [(1, 0, 0), (1, 0, 4), (1, 4, 0), (1, 4, 4)]);
        // The second quadrant's children come after the first's.
        assert_eq!((p[9].level, p[9].row, p[9].col), (1, 0, 8));
    }

    /// The square found in the image's own orientation, oriented afterwards, is
    /// `oriented_square`'s: what the reduced path relies on.
    #[test]
    fn source_square_then_orient_is_the_oriented_square() {
        for (h, w) in [(7, 12), (12, 7), (9, 9), (5, 30)] {
            let data = (0..h * w * 3).map(|v| (v * 37 % 251) as u8).collect();
            let img = Rgb8::new(w, h, data);
            for bits in 0..8 {
                for offset in [-1.0, -0.3, 0.0, 0.6, 1.0] {
                    let o = Orientation {
                        hflip: bits & 1 != 0,
                        vflip: bits & 2 != 0,
                        transpose: bits & 4 != 0,
                        offset,
                    };
                    let (top, left, side) = source_square(h, w, &o);
                    let window = img.crop(top, left, side, side).to_owned();
                    let got = orient(Planes::from_rgb8(&window), &o);
                    let want = Planes::from_rgb8(&oriented_square(&img, &o));
                    assert_eq!(got, want, "{h}x{w} {o:?}");
                }
            }
        }
    }

    #[test]
    fn square_offsets_stay_inside() {
        assert_eq!(square_offset(100, 0.0), 50);
        assert_eq!(square_offset(100, 1.0), 98);
        assert_eq!(square_offset(100, -1.0), 2);
        for slack in 0..6 {
            for u in [-1.0, -0.5, 0.0, 0.5, 1.0] {
                assert!(square_offset(slack, u) <= slack);
            }
        }
    }

    #[test]
    fn orientation_matches_numpy_steps() {
        let (h, w) = (3, 5);
        let data: Vec<u8> = (0..h * w).flat_map(|i| [i as u8, 0, 0]).collect();
        let img = Rgb8::new(w, h, data);
        for bits in 0..8 {
            let o = Orientation {
                hflip: bits & 1 != 0,
                vflip: bits & 2 != 0,
                transpose: bits & 4 != 0,
                offset: 0.0,
            };
            // Reference: numpy-style steps on a grid of labels.
            let mut grid: Vec<Vec<u8>> = (0..h)
                .map(|r| (0..w).map(|c| (r * w + c) as u8).collect())
                .collect();
            if o.hflip {
                grid.iter_mut().for_each(|row| row.reverse());
            }
            if o.vflip {
                grid.reverse();
            }
            if o.transpose {
                grid = (0..w)
                    .map(|c| (0..h).map(|r| grid[r][c]).collect())
                    .collect();
            }
            let (th, tw) = (grid.len(), grid[0].len());
            let side = th.min(tw);
            let (top, left) = if th > tw {
                (square_offset(th - tw, 0.0), 0)
            } else {
                (0, square_offset(tw - th, 0.0))
            };
            let want: Vec<u8> = (top..top + side)
                .flat_map(|r| (left..left + side).map(|c| grid[r][c]).collect::<Vec<_>>())
                .collect();
            let got: Vec<u8> = oriented_square(&img, &o)
                .data
                .chunks(3)
                .map(|p| p[0])
                .collect();
            assert_eq!(got, want, "{o:?}");
        }
    }
}
