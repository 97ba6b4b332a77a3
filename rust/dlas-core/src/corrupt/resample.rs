//! Resampling (`lq_resampling`): every plane resized with a `cv2.resize` filter, to
//! shrink the image and later to grow it back.

use crate::planes::{resample_plane, Filter, Planes};

/// Every plane resized to `h x w` with `filter`.
pub(super) fn resize_to(img: &mut Planes, h: usize, w: usize, filter: Filter) {
    if (h, w) == (img.h, img.w) {
        return;
    }
    let mut data = Vec::with_capacity(img.c * h * w);
    for c in 0..img.c {
        data.extend(resample_plane(img.plane(c), img.w, img.h, w, h, filter));
    }
    *img = Planes {
        c: img.c,
        h,
        w,
        data,
    };
}
