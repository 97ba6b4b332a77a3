//! The float-plane layer under the loaders and the corruptor: planar float32 images
//! ([`Planes`], `C x H x W`), their conversions from and to 8-bit RGB, the writers that
//! fill output slots with them, and the float resizes (OpenCV's `INTER_AREA` and the
//! other `cv2.resize` filters, MATLAB's bicubic). It uses neither `load` nor `corrupt`:
//! both build on it.

mod antialias;
mod area;
mod boxed;
mod convert;
mod resample;
mod shrink;
mod stream;
mod window;

pub use antialias::antialias_bilinear_rgb8;
pub use area::resize_plane;
pub(crate) use convert::planes_to_rgb8;
pub use resample::{matlab_resize_plane, resample_plane, Filter};
pub(crate) use stream::{copy_into, stream_fence, stream_into};
pub use window::{area_window_rgb8, Window};

/// `c` planes of `h x w` float32 values, plane after plane.
#[derive(Debug, Clone, PartialEq)]
pub struct Planes {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Planes {
    pub fn zeros(c: usize, h: usize, w: usize) -> Planes {
        Planes {
            c,
            h,
            w,
            data: vec![0.0; c * h * w],
        }
    }

    pub fn plane(&self, i: usize) -> &[f32] {
        &self.data[i * self.h * self.w..(i + 1) * self.h * self.w]
    }

    /// Every plane area-resized to `h x w`.
    pub fn resized(&self, h: usize, w: usize) -> Planes {
        if (h, w) == (self.h, self.w) {
            return self.clone();
        }
        let mut data = Vec::with_capacity(self.c * h * w);
        for i in 0..self.c {
            data.extend(resize_plane(self.plane(i), self.w, self.h, w, h));
        }
        Planes {
            c: self.c,
            h,
            w,
            data,
        }
    }

    /// The top-left `h x w` of every plane.
    pub fn cropped(&self, h: usize, w: usize) -> Planes {
        let mut data = Vec::with_capacity(self.c * h * w);
        for i in 0..self.c {
            let p = self.plane(i);
            for r in 0..h {
                data.extend_from_slice(&p[r * self.w..r * self.w + w]);
            }
        }
        Planes {
            c: self.c,
            h,
            w,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_keeps_the_top_left() {
        let p = Planes {
            c: 1,
            h: 3,
            w: 3,
            data: (0..9).map(|v| v as f32).collect(),
        };
        assert_eq!(p.cropped(2, 2).data, vec![0.0, 1.0, 3.0, 4.0]);
    }
}
