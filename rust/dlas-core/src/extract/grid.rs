//! The crop grid and the centre/width arithmetic of docs/spec.md §2 step 5, bit-exact with the
//! Python expressions DLAS evaluates (`int((r + crop // 2) // f)` with a float `f`).

/// Top-left offsets of the sliding window along one axis of length `dim`:
/// `range(0, dim - crop + 1, step)`, plus `dim - crop` when the leftover strip is wider
/// than `thres`. Empty when `crop > dim`.
pub fn positions(dim: usize, crop: usize, step: usize, thres: usize) -> Vec<usize> {
    if crop > dim || step == 0 {
        return Vec::new();
    }
    let mut out: Vec<usize> = (0..=dim - crop).step_by(step).collect();
    let last = *out.last().expect("range starts at 0");
    if dim - (last + crop) > thres {
        out.push(dim - crop);
    }
    out
}

/// Python's float floor division `a // b` (CPython's algorithm, so results match to
/// the last bit, including the cases where `floor(a / b)` would round differently).
pub fn py_floordiv(a: f64, b: f64) -> f64 {
    let m = a % b; // C fmod
    let mut div = (a - m) / b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div != 0.0 {
        let mut fd = div.floor();
        if div - fd > 0.5 {
            fd += 1.0;
        }
        fd
    } else {
        (0.0f64).copysign(a / b)
    }
}

/// The ref-pixel scale factor `f = dim / tile_dim` (Python true division).
pub fn ref_factor(dim: usize, tile_dim: usize) -> f64 {
    dim as f64 / tile_dim as f64
}

/// Centre of the crop at (`row`, `col`) of side `crop`, in ref pixels.
pub fn centre(row: usize, col: usize, crop: usize, f: f64) -> (i64, i64) {
    let half = (crop / 2) as f64;
    (
        py_floordiv(row as f64 + half, f) as i64,
        py_floordiv(col as f64 + half, f) as i64,
    )
}

/// Width of a crop of side `crop`, in ref pixels: `int(crop // f)`.
pub fn width(crop: usize, f: f64) -> i64 {
    py_floordiv(crop as f64, f) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grid_on_1024() {
        let l0 = positions(1024, 256, 128, 128);
        assert_eq!(l0, vec![0, 128, 256, 384, 512, 640, 768]);
        let l1 = positions(1024, 512, 256, 128);
        assert_eq!(l1, vec![0, 256, 512]);
        assert_eq!(l0.len() * l0.len() + l1.len() * l1.len(), 49 + 9);
    }

    #[test]
    fn edge_strip_wider_than_threshold_gets_a_flush_crop() {
        // 1100: 0..=844 step 128 -> last 768, leftover 1100-1024 = 76 <= 128: no extra.
        assert_eq!(positions(1100, 256, 128, 128).last(), Some(&768));
        // 1200 at level 1: 0, 256, 512; leftover 1200-1024 = 176 > 128: add 688.
        assert_eq!(positions(1200, 512, 256, 128), vec![0, 256, 512, 688]);
        // exactly the threshold is not enough.
        assert_eq!(positions(256 + 128 + 128, 256, 128, 128), vec![0, 128, 256]);
    }

    #[test]
    fn crop_larger_than_dim_gives_nothing() {
        assert!(positions(500, 512, 256, 128).is_empty());
        assert_eq!(positions(512, 512, 256, 128), vec![0]);
    }

    #[test]
    fn floordiv_matches_python() {
        // Values checked against CPython: 128 // (2000/256) == 16.0, 512 // 7.8125 == 65.0,
        // 1 // 0.1 == 9.0 (floor(1/0.1) would be 10), -7 // 2.0 == -4.0.
        assert_eq!(py_floordiv(128.0, 2000.0 / 256.0), 16.0);
        assert_eq!(py_floordiv(512.0, 7.8125), 65.0);
        assert_eq!(py_floordiv(1.0, 0.1), 9.0);
        assert_eq!(py_floordiv(-7.0, 2.0), -4.0);
        assert_eq!(py_floordiv(7.0, 2.0), 3.0);
    }

    #[test]
    fn centres_and_widths_on_1024() {
        let f = ref_factor(1024, 256);
        assert_eq!(centre(0, 0, 256, f), (32, 32));
        assert_eq!(width(256, f), 64);
        assert_eq!(centre(512, 512, 512, f), (192, 192));
        assert_eq!(width(512, f), 128);
    }

    #[test]
    fn centres_on_non_integer_factor() {
        // The golden huge_6000x4000 source: halved to 3000x2000, dim 2000.
        let f = ref_factor(2000, 256);
        assert_eq!(centre(0, 0, 256, f), (16, 16));
        assert_eq!(centre(0, 128, 256, f), (16, 32));
        assert_eq!(centre(0, 256, 256, f), (16, 49));
        assert_eq!(width(512, f), 65);
    }
}
