//! Area resize of a window with fractional edges, straight from 8-bit RGB to float
//! planes: what a reduced decode is finished with. The window is where an item's crop
//! lands in a frame decoded at 1/2, 1/4 or 1/8 of its size, so its edges fall between
//! pixels; each output pixel is the mean of the source area it covers, partial pixels
//! weighted by the part covered, as OpenCV's `INTER_AREA` weighs them when shrinking.

use super::Planes;
use crate::image::Rgb8View;

/// A window of a source image in its pixels: `top`/`left` may be fractional.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub top: f64,
    pub left: f64,
    pub height: f64,
    pub width: f64,
}

/// One axis: for each output pixel, the first source pixel it covers and the weights
/// of it and the following ones (summing to 1).
fn taps(start: f64, len: f64, n: usize, limit: usize) -> Vec<(usize, Vec<f32>)> {
    let step = len / n as f64;
    (0..n)
        .map(|i| {
            let a = (start + i as f64 * step).clamp(0.0, limit as f64);
            let b = (start + (i + 1) as f64 * step).clamp(a, limit as f64);
            let first = (a.floor() as usize).min(limit.saturating_sub(1));
            let last = (b.ceil() as usize).clamp(first + 1, limit);
            if b - a <= 0.0 {
                // A window at the very edge (never with the sizes the loaders ask for):
                // the nearest pixel.
                return (first, vec![1.0]);
            }
            let weights = (first..last)
                .map(|p| {
                    let covered = b.min(p as f64 + 1.0) - a.max(p as f64);
                    (covered.max(0.0) / (b - a)) as f32
                })
                .collect();
            (first, weights)
        })
        .collect()
}

/// `window` of `src` area-resized to `out_h x out_w`, mirrored left to right when
/// `flip`, as three float planes in `[0, 1]`. Meant for shrinking (each output pixel
/// covering at least one source pixel); enlarging works but averages nothing.
pub fn area_window_rgb8(
    src: Rgb8View<'_>,
    window: Window,
    flip: bool,
    out_h: usize,
    out_w: usize,
) -> Planes {
    let mut out = Planes::zeros(3, out_h, out_w);
    if out_h == 0 || out_w == 0 || src.width == 0 || src.height == 0 {
        return out;
    }
    let ys = taps(window.top, window.height, out_h, src.height);
    let xs = taps(window.left, window.width, out_w, src.width);
    // The source columns any output reads.
    let x0 = xs[0].0;
    let x1 = xs
        .iter()
        .map(|(f, w)| f + w.len())
        .max()
        .expect("out_w > 0");
    let span = x1 - x0;
    let mut acc = vec![0f32; 3 * span];
    let n = out_h * out_w;
    for (oy, (first, wy)) in ys.iter().enumerate() {
        acc.fill(0.0);
        for (i, &wgt) in wy.iter().enumerate() {
            let row = &src.row(first + i)[3 * x0..3 * x1];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += wgt * v as f32;
            }
        }
        for (ox, (fx, wx)) in xs.iter().enumerate() {
            let mut rgb = [0f32; 3];
            for (j, &wgt) in wx.iter().enumerate() {
                let at = 3 * (fx - x0 + j);
                for c in 0..3 {
                    rgb[c] += wgt * acc[at + c];
                }
            }
            let col = if flip { out_w - 1 - ox } else { ox };
            for (c, v) in rgb.iter().enumerate() {
                out.data[c * n + oy * out_w + col] = v / 255.0;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Rgb8;

    fn win(top: f64, left: f64, height: f64, width: f64) -> Window {
        Window {
            top,
            left,
            height,
            width,
        }
    }

    fn ramp(w: usize, h: usize) -> Rgb8 {
        let data = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [(x * 7 % 256) as u8, (y * 5 % 256) as u8, 9]))
            .collect();
        Rgb8::new(w, h, data)
    }

    #[test]
    fn whole_image_integer_factor_is_the_block_mean() {
        let img = ramp(8, 6);
        let w = win(0.0, 0.0, 6.0, 8.0);
        let out = area_window_rgb8(img.view(), w, false, 3, 4);
        for y in 0..3 {
            for x in 0..4 {
                let mean = |c: usize| {
                    let mut s = 0.0;
                    for dy in 0..2 {
                        for dx in 0..2 {
                            s += img.data[((2 * y + dy) * 8 + 2 * x + dx) * 3 + c] as f32;
                        }
                    }
                    s / 4.0 / 255.0
                };
                for c in 0..3 {
                    let got = out.data[c * 12 + y * 4 + x];
                    assert!((got - mean(c)).abs() < 1e-6, "{got} {}", mean(c));
                }
            }
        }
    }

    #[test]
    fn whole_image_matches_the_area_resize() {
        // Integer edges over the whole frame: the same values as INTER_AREA.
        let img = ramp(23, 17);
        let w = win(0.0, 0.0, 17.0, 23.0);
        let out = area_window_rgb8(img.view(), w, false, 7, 10);
        let want = Planes::from_rgb8(&img).resized(7, 10);
        for (a, b) in out.data.iter().zip(&want.data) {
            assert!((a - b).abs() < 1e-5, "{a} {b}");
        }
    }

    #[test]
    fn fractional_edges_weigh_partial_pixels() {
        // One row 0, 100, 200 (red); the window [0.5, 2.5) onto one pixel covers half
        // of 0, all of 100 and half of 200: (0 + 200 + 200) / 2 / 2 = 100.
        let img = Rgb8::new(3, 1, vec![0, 0, 0, 100, 0, 0, 200, 0, 0]);
        let w = win(0.0, 0.5, 1.0, 2.0);
        let out = area_window_rgb8(img.view(), w, false, 1, 1);
        assert!(
            (out.data[0] * 255.0 - 100.0).abs() < 1e-4,
            "{}",
            out.data[0] * 255.0
        );
        // [1.5, 3.0): half of 100, all of 200 -> (50 + 200) / 1.5.
        let w = Window {
            left: 1.5,
            width: 1.5,
            ..w
        };
        let out = area_window_rgb8(img.view(), w, false, 1, 1);
        assert!((out.data[0] * 255.0 - 250.0 / 1.5).abs() < 1e-3);
    }

    #[test]
    fn flip_mirrors_the_output() {
        let img = ramp(12, 4);
        let w = win(0.0, 1.0, 4.0, 10.0);
        let a = area_window_rgb8(img.view(), w, false, 2, 5);
        let b = area_window_rgb8(img.view(), w, true, 2, 5);
        for c in 0..3 {
            for y in 0..2 {
                for x in 0..5 {
                    assert_eq!(a.data[c * 10 + y * 5 + x], b.data[c * 10 + y * 5 + 4 - x]);
                }
            }
        }
    }
}
