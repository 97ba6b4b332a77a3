//! The JPEG round trip: the planes truncated to 8 bits as DLAS's `astype(np.uint8)`
//! does (after clamping to [0, 255]), encoded with 4:2:0 chroma like PIL's default, and
//! decoded back.

use crate::error::Result;
use crate::image::Rgb8;
use crate::planes::{planes_to_rgb8, Planes};

/// A JPEG round trip at `quality`.
pub(super) fn jpeg_round_trip(img: &mut Planes, quality: u8) -> Result<()> {
    let n = img.h * img.w;
    if n == 0 {
        return Ok(());
    }
    let mut rgb = vec![0u8; 3 * n];
    let (r, rest) = img.data.split_at(n);
    let (g, b) = rest.split_at(n);
    planes_to_rgb8(r, g, b, &mut rgb);
    let src = Rgb8::new(img.w, img.h, rgb);
    let w = img.w;
    let (r, rest) = img.data.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    crate::image::jpeg_round_trip(src.view(), quality, |y, rgb| {
        let at = y * w;
        for (plane, row) in [&mut *r, &mut *g, &mut *b].into_iter().zip(rgb) {
            for (v, &p) in plane[at..at + w].iter_mut().zip(row) {
                *v = p as f32 / 255.0;
            }
        }
    })
}
