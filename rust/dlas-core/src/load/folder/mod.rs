//! ImageFolderDataset items (docs/spec.md §5): read, centre crop, random flip, square crop and
//! colour jitter, before the shared `resize_hq` and LQ synthesis of [`super::batch`].
//!
//! The crops and the flip only pick pixels, so they are done on the decoded bytes in
//! one copy (none when they keep the whole image). When `target_size` shrinks the
//! window 4x or more, a JPEG is instead decoded reduced (1/2, 1/4 or 1/8, over the
//! window only) and area-resized from there to the target size, unless
//! `exact_decode`: see docs/loading.md, "Reduced decoding". The random draws (flip, jitter, alt
//! tile) come from the item's augmentation key, so a seeded dataset repeats them.
//!
//! The alt image (`fetch_alt_image`: the next frame; `fetch_alt_tiled_image`: another
//! tile of the same chunk folder) goes through the same crop, flip, square crop and
//! jitter as the item, and is fitted to the item's size when it comes out another size,
//! so the pair stays aligned and batches. (DLAS only resizes it: a flipped item is
//! paired with an unflipped alt, and a non-square alt with a square-cropped item.)

mod loader;

use std::path::{Path, PathBuf};

use super::batch::{Loaded, Pixels};
use super::{Geometry, Shape};
use crate::corrupt::{Augment, Key};
use crate::error::{CoreError, Result};
use crate::image::{decode_file, decode_file_reduced, DecodeOptions, Region, Rgb8};
use crate::planes::{area_window_rgb8, Planes, Window};
pub use loader::{FolderLoader, FolderLoaderOptions, KEYS};

/// The options that shape an ImageFolderDataset item before `resize_hq`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FolderOptions {
    /// `center_crop_hq_sz`: a centred square of this side first (a side shorter than it
    /// is kept whole).
    pub center_crop: Option<usize>,
    /// A random horizontal flip with probability 1/2 (not `disable_flip`).
    pub flip: bool,
    /// `force_square`: the centred square of the shorter side.
    pub force_square: bool,
    /// `all_image_color_jitter`.
    pub color_jitter: f64,
    pub shape: Shape,
    /// Never decode reduced: every image at full size, as DLAS.
    pub exact_decode: bool,
}

/// Where an item's alt image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AltSource {
    /// No alt option.
    None,
    /// `fetch_alt_image`: this file if it exists (else the item's own image, and
    /// `has_alt` false); `None` when the name has no frame number.
    NextFrame(Option<PathBuf>),
    /// `fetch_alt_tiled_image`: this other tile of the folder (`None`: the folder has no
    /// other tile, the item's own image is used); `has_alt` is always true.
    Tile(Option<PathBuf>),
}

/// One item to load.
#[derive(Clone, Debug)]
pub struct FolderItem {
    pub path: PathBuf,
    pub alt: AltSource,
    /// Keys the flip and the colour jitter.
    pub augment: Key,
}

/// The key of the colour jitter, apart from the flip's draws.
fn jitter_key(k: Key) -> Key {
    Key {
        nonce: k.nonce ^ (1 << 61),
        ..k
    }
}

/// The next frame's path of DLAS's `fetch_alt_image`: the file name's stem (before its
/// last `.`) must end in 8 digits (ffmpeg's `%08d` names included); the next frame has
/// the number plus one, zero-padded to the same width, in the same folder with the same
/// extension. (DLAS replaces every occurrence of the unpadded number in the whole
/// path, which breaks at ...999 and wherever the number appears elsewhere, and it
/// looks at the text between the path's last two dots, so `clip.00000478.jpg` gets no
/// alt there.)
pub fn next_frame(path: &Path) -> Option<PathBuf> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let name = path.file_name()?.as_bytes();
    let dot = name.iter().rposition(|&b| b == b'.')?;
    let (stem, ext) = name.split_at(dot);
    if stem.len() < 8 {
        return None;
    }
    let digits = &stem[stem.len() - 8..];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let mut next = stem[..stem.len() - 8].to_vec();
    next.extend_from_slice(format!("{:08}", n + 1).as_bytes());
    next.extend_from_slice(ext);
    Some(path.with_file_name(std::ffi::OsString::from_vec(next)))
}

/// The window an item keeps of an image: `(top, left, height, width, mirrored)`.
pub type ItemWindow = (usize, usize, usize, usize, bool);

/// The window an item keeps of an `h x w` image: `(top, left, height, width)` in the
/// image's own pixels, and whether it is mirrored.
pub fn window(h: usize, w: usize, opts: &FolderOptions, flip: bool) -> ItemWindow {
    let (mut top, mut left, mut hh, mut ww) = (0, 0, h, w);
    if let Some(c) = opts.center_crop {
        // DLAS: img[h//2 - c//2 : ... + c, w//2 - c//2 : ... + c].
        if c < hh {
            top = hh / 2 - c / 2;
            hh = c;
        }
        if c < ww {
            left = ww / 2 - c / 2;
            ww = c;
        }
    }
    if opts.force_square {
        let dim = hh.min(ww);
        top += (hh - dim) / 2;
        // The square is centred in the flipped image: mirrored, its left edge is
        // `ww - (ww - dim) / 2 - dim` from the unflipped left.
        let off = (ww - dim) / 2;
        left += if flip { ww - off - dim } else { off };
        hh = dim;
        ww = dim;
    }
    (top, left, hh, ww, flip)
}

/// The `(top, left, h, w)` window of `img`, mirrored when `flip`.
fn extract(img: Rgb8, top: usize, left: usize, h: usize, w: usize, flip: bool) -> Rgb8 {
    if (top, left, h, w) == (0, 0, img.height, img.width) {
        let mut img = img;
        if flip && w > 0 {
            // In place, a row at a time through a copy of it.
            let mut scratch = vec![0u8; 3 * w];
            for row in img.data.chunks_exact_mut(3 * w) {
                scratch.copy_from_slice(row);
                mirror_row(row, &scratch);
            }
        }
        return img;
    }
    let mut data = vec![0u8; h * w * 3];
    if w == 0 {
        return Rgb8::new(w, h, data);
    }
    let stride = img.width * 3;
    for (y, out) in (top..top + h).zip(data.chunks_exact_mut(w * 3)) {
        let row = &img.data[y * stride + left * 3..y * stride + (left + w) * 3];
        if flip {
            mirror_row(out, row);
        } else {
            out.copy_from_slice(row);
        }
    }
    Rgb8::new(w, h, data)
}

/// `out` = the RGB pixels of `row` in reverse order.
fn mirror_row(out: &mut [u8], row: &[u8]) {
    assert_eq!(out.len(), row.len());
    let n = row.len() / 3;
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::features().ssse3 && n >= 7 {
        use std::arch::x86_64::*;
        // Pixel 0 alone: from pixel 1 on, each 16-byte load (5 pixels and one byte
        // more) and store stays inside the row.
        out[..3].copy_from_slice(&row[3 * (n - 1)..]);
        #[target_feature(enable = "ssse3")]
        fn five_at_a_time(out: &mut [u8], row: &[u8], n: usize) -> usize {
            // Output pixel j of a group of 5 is input pixel 4 - j; the 16th byte is spare.
            let rev = _mm_setr_epi8(12, 13, 14, 9, 10, 11, 6, 7, 8, 3, 4, 5, 0, 1, 2, -1);
            let mut i = 1;
            while i + 6 <= n {
                let s = n - 5 - i;
                // SAFETY: 3s + 16 <= 3n (s <= n - 6) and 3i + 16 <= 3n (i <= n - 6).
                unsafe {
                    let v = _mm_loadu_si128(row.as_ptr().add(3 * s) as *const __m128i);
                    let v = _mm_shuffle_epi8(v, rev);
                    _mm_storeu_si128(out.as_mut_ptr().add(3 * i) as *mut __m128i, v);
                }
                i += 5;
            }
            i
        }
        // SAFETY: the CPU supports SSSE3 (checked at run time).
        i = unsafe { five_at_a_time(out, row, n) };
    }
    for j in i..n {
        out[3 * j..3 * j + 3].copy_from_slice(&row[3 * (n - 1 - j)..3 * (n - j)]);
    }
}

/// Crops, flips, squares and jitters one decoded image.
fn prepare(img: Rgb8, opts: &FolderOptions, flip: bool, key: Key) -> Pixels {
    let (top, left, h, w, flip) = window(img.height, img.width, opts, flip);
    let img = extract(img, top, left, h, w, flip);
    if opts.color_jitter * 255.0 > 1.0 {
        Pixels::Jittered(img, opts.color_jitter, jitter_key(key))
    } else {
        Pixels::Bytes(img)
    }
}

/// Where an item's alt image comes from: its file (if any), and `has_alt` when that
/// file is found and when it is not.
fn alt_plan(alt: &AltSource) -> (Option<&Path>, bool, bool) {
    match alt {
        AltSource::None => (None, false, false),
        AltSource::NextFrame(p) => (p.as_deref(), true, false),
        AltSource::Tile(p) => (p.as_deref(), true, true),
    }
}

/// Decodes `path`; `Ok(None)` when it does not exist.
fn decode_if_exists(path: &Path, decode: &DecodeOptions) -> Result<Option<Rgb8>> {
    match decode_file(path, decode) {
        Ok(img) => Ok(Some(img)),
        Err(CoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The largest reduction (8, 4, 2; else 1) that keeps an `h x w` window at least
/// twice `target` (its size after `resize_hq`) on both sides. The reduced IDCT is not
/// an exact block mean (at 1/4 and 1/8 it is a coarse one, with chroma upsampled from
/// a single sample): stopping at twice the target leaves the area resize at least 2x2
/// pixels to average per output pixel, which keeps every HQ image of the photo corpus
/// within 47 dB PSNR of a full decode; stopping at the target itself fell to 36 dB.
pub(crate) fn reduction_for(h: usize, w: usize, target: Option<(usize, usize)>) -> usize {
    let Some((th, tw)) = target else {
        return 1;
    };
    [8, 4, 2]
        .into_iter()
        .find(|&k| h >= 2 * th * k && w >= 2 * tw * k)
        .unwrap_or(1)
}

/// An image decoded for an item: its window decoded reduced and area-resized to the
/// size asked for, or the whole image at full size (a small image, or not a lossy
/// JPEG), for the usual path.
enum Reduced {
    Planes(Planes),
    Full(Rgb8),
}

/// Decodes `path` for a window of it to end up `size` (`None`: the item's own size
/// after `resize_hq`, from its window's geometry): reduced when that is 4x or more
/// smaller. Returns the pixels and the window (`Ok(None)`: no such file).
fn decode_for(
    path: &Path,
    opts: &FolderOptions,
    decode: &DecodeOptions,
    flip: bool,
    size: Option<(usize, usize)>,
) -> Result<Option<(Reduced, ItemWindow)>> {
    let mut plan = None;
    let part = decode_file_reduced(path, decode, |w, h| {
        let win = window(h, w, opts, flip);
        let target = size.or(Geometry::new((win.2, win.3), &opts.shape).resize);
        let k = reduction_for(win.2, win.3, target);
        plan = Some((win, target));
        Some(if k == 1 {
            (Region::full(w, h), 1)
        } else {
            let region = Region {
                top: win.0,
                left: win.1,
                height: win.2,
                width: win.3,
            };
            (region, k)
        })
    });
    let part = match part {
        Ok(p) => p.expect("a region was asked for"),
        Err(CoreError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let (win, target) = plan.expect("the size was read");
    if part.reduction == 1 {
        debug_assert!((part.top, part.left) == (0, 0));
        return Ok(Some((Reduced::Full(part.img), win)));
    }
    let (rh, rw) = target.expect("reduced only towards a target size");
    let r = part.reduction as f64;
    let in_part = Window {
        top: win.0 as f64 / r - part.top as f64,
        left: win.1 as f64 / r - part.left as f64,
        height: win.2 as f64 / r,
        width: win.3 as f64 / r,
    };
    let planes = area_window_rgb8(part.img.view(), in_part, win.4, rh, rw);
    Ok(Some((Reduced::Planes(planes), win)))
}

/// The jitter of `prepare`, on planes already resized.
fn jittered(mut planes: Planes, opts: &FolderOptions, key: Key) -> Pixels {
    if opts.color_jitter * 255.0 > 1.0 {
        crate::corrupt::Augment::color_jitter(&mut planes, opts.color_jitter, jitter_key(key));
    }
    Pixels::Float(planes)
}

/// Loads one item: the image and its alt (when asked for), prepared, with the geometry
/// of the rest of the pipeline. Returns the item and its `has_alt`.
pub fn load_item(
    item: &FolderItem,
    opts: &FolderOptions,
    decode: &DecodeOptions,
) -> Result<(Loaded, bool)> {
    let flip = opts.flip && Augment::new(item.augment).coin();
    let img = if !opts.exact_decode && opts.shape.target_size.is_some() {
        match decode_for(&item.path, opts, decode, flip, None)? {
            Some((Reduced::Planes(planes), win)) => {
                return load_reduced(item, opts, decode, flip, planes, win)
            }
            Some((Reduced::Full(img), _)) => img,
            // Gone since it was listed: the usual read names the fault.
            None => decode_file(&item.path, decode)?,
        }
    } else {
        decode_file(&item.path, decode)?
    };
    let main = prepare(img, opts, flip, item.augment);
    let size = main.size();
    let geo = Geometry::new(size, &opts.shape);
    geo.check(&item.path)?;
    let (alt_path, has_alt_if_found, has_alt_if_not) = alt_plan(&item.alt);
    let (alt, has_alt) = match alt_path {
        _ if item.alt == AltSource::None => (None, false),
        None => (Some(main.clone()), has_alt_if_not),
        Some(p) => match decode_if_exists(p, decode)? {
            None => (Some(main.clone()), has_alt_if_not),
            Some(img) => {
                let alt = prepare(img, opts, flip, item.augment);
                let alt = if alt.size() == size {
                    alt
                } else {
                    Pixels::Float(alt.into_planes().resized(size.0, size.1))
                };
                (Some(alt), has_alt_if_found)
            }
        },
    };
    let loaded = Loaded {
        img: main,
        alt,
        ..Loaded::new(geo, Rgb8::new(0, 0, Vec::new()))
    };
    Ok((loaded, has_alt))
}

/// The rest of [`load_item`] for an image decoded reduced (`planes`, already at the
/// size `resize_hq` gives its window `win`): its alt is decoded towards that size too.
fn load_reduced(
    item: &FolderItem,
    opts: &FolderOptions,
    decode: &DecodeOptions,
    flip: bool,
    planes: Planes,
    win: ItemWindow,
) -> Result<(Loaded, bool)> {
    let geo = Geometry::new((win.2, win.3), &opts.shape);
    geo.check(&item.path)?;
    let size = (planes.h, planes.w);
    let main = jittered(planes, opts, item.augment);
    let (alt_path, has_alt_if_found, has_alt_if_not) = alt_plan(&item.alt);
    let (alt, has_alt) = match alt_path {
        _ if item.alt == AltSource::None => (None, false),
        None => (Some(main.clone()), has_alt_if_not),
        Some(p) => match decode_for(p, opts, decode, flip, Some(size))? {
            None => (Some(main.clone()), has_alt_if_not),
            Some((Reduced::Planes(planes), _)) => {
                (Some(jittered(planes, opts, item.augment)), has_alt_if_found)
            }
            Some((Reduced::Full(img), _)) => {
                // Small or not a JPEG: prepared as usual, then resized to the item's size.
                let alt = prepare(img, opts, flip, item.augment).into_planes();
                (
                    Some(Pixels::Float(alt.resized(size.0, size.1))),
                    has_alt_if_found,
                )
            }
        },
    };
    let loaded = Loaded {
        img: main,
        alt,
        ..Loaded::new(geo, Rgb8::new(0, 0, Vec::new()))
    };
    Ok((loaded, has_alt))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(center_crop: Option<usize>, force_square: bool) -> FolderOptions {
        FolderOptions {
            center_crop,
            flip: true,
            force_square,
            color_jitter: 0.0,
            shape: Shape {
                target_size: None,
                multiple: 1,
                scale: 1,
                eval: false,
            },
            exact_decode: false,
        }
    }

    /// The window, checked against DLAS's numpy steps on a labelled image.
    #[test]
    fn window_matches_crop_flip_square_in_order() {
        for (h, w) in [(5, 9), (9, 5), (6, 6), (7, 10), (10, 7)] {
            for crop in [None, Some(4), Some(20)] {
                for square in [false, true] {
                    for flip in [false, true] {
                        // Reference: label pixels by column, apply the steps one by one.
                        let mut cols: Vec<usize> = (0..w).collect();
                        let mut rows: Vec<usize> = (0..h).collect();
                        if let Some(c) = crop {
                            if c < rows.len() {
                                let s = rows.len() / 2 - c / 2;
                                rows = rows[s..s + c].to_vec();
                            }
                            if c < cols.len() {
                                let s = cols.len() / 2 - c / 2;
                                cols = cols[s..s + c].to_vec();
                            }
                        }
                        if flip {
                            cols.reverse();
                        }
                        if square {
                            let dim = rows.len().min(cols.len());
                            let (t, l) = ((rows.len() - dim) / 2, (cols.len() - dim) / 2);
                            rows = rows[t..t + dim].to_vec();
                            cols = cols[l..l + dim].to_vec();
                        }
                        let (top, left, hh, ww, f) = window(h, w, &opts(crop, square), flip);
                        let got_rows: Vec<usize> = (top..top + hh).collect();
                        let mut got_cols: Vec<usize> = (left..left + ww).collect();
                        if f {
                            got_cols.reverse();
                        }
                        assert_eq!(
                            (got_rows, got_cols),
                            (rows, cols),
                            "{h}x{w} {crop:?} {square} {flip}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn next_frame_keeps_the_padding() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(
            next_frame(Path::new("v/a.webm_00000478.jpg")),
            p("v/a.webm_00000478.jpg").map(|_| PathBuf::from("v/a.webm_00000479.jpg"))
        );
        assert_eq!(
            next_frame(Path::new("x478/clip_00000999.png")),
            p("x478/clip_00001000.png")
        );
        assert_eq!(next_frame(Path::new("v/00000001.jpg")), p("v/00000002.jpg"));
        assert_eq!(next_frame(Path::new("0000001.jpg")), None); // 7 digits
        assert_eq!(next_frame(Path::new("clip_0000a001.jpg")), None);
        assert_eq!(next_frame(Path::new("noext")), None);
    }

    #[test]
    fn mirrored_rows_reverse_their_pixels() {
        for n in 0..40 {
            let row: Vec<u8> = (0..3 * n).map(|i| (i * 7 + 1) as u8).collect();
            let mut out = vec![0u8; 3 * n];
            mirror_row(&mut out, &row);
            let expected: Vec<u8> = row.chunks_exact(3).rev().flatten().copied().collect();
            assert_eq!(out, expected, "{n} pixels");
        }
    }
}
