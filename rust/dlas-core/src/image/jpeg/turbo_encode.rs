//! Encoding with libjpeg-turbo (4:2:0, its standard tables), as OpenCV's `imencode`
//! does: an RGB image, or tiles of the YCbCr planes it computed once for a whole image.
//! One compressor per thread.

use std::cell::RefCell;

use turbojpeg::{raw, Compressor, Image, PixelFormat, Subsamp, YuvPlanesImage};

use super::turbo;
use crate::error::{CoreError, Result};
use crate::image::Rgb8View;

thread_local! {
    static COMPRESSOR: RefCell<Option<Compressor>> = const { RefCell::new(None) };
}

/// Encodes `img` at `quality` (1-100) with this thread's compressor, appending to
/// `out`.
pub(crate) fn encode(img: Rgb8View<'_>, quality: u8, out: &mut Vec<u8>) -> Result<()> {
    let image = Image {
        pixels: img.data,
        width: img.width,
        pitch: img.stride,
        height: img.height,
        format: PixelFormat::RGB,
    };
    let bytes = with_compressor(quality, |c| c.compress_to_vec(image))?;
    out.extend_from_slice(&bytes);
    Ok(())
}

fn with_compressor<T>(
    quality: u8,
    f: impl FnOnce(&mut Compressor) -> std::result::Result<T, turbojpeg::Error>,
) -> Result<T> {
    let err = |e: turbojpeg::Error| CoreError::Encode(e.to_string());
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut c = Compressor::new().map_err(err)?;
            c.set_subsamp(Subsamp::Sub2x2).map_err(err)?;
            *slot = Some(c);
        }
        let c = slot.as_mut().expect("compressor just created");
        c.set_quality(quality as i32).map_err(err)?;
        f(c).map_err(err)
    })
}

/// The Y, Cb and Cr planes (4:2:0) of a whole image, from libjpeg-turbo's own
/// colour conversion and downsampling.
pub(crate) struct Planes {
    pub(crate) y: Vec<u8>,
    pub(crate) cb: Vec<u8>,
    pub(crate) cr: Vec<u8>,
    pub(crate) y_stride: usize,
    pub(crate) c_stride: usize,
}

impl Planes {
    pub(crate) fn new(img: Rgb8View<'_>) -> Result<Self> {
        let (w, h) = (img.width, img.height);
        // libjpeg-turbo pads every plane to whole 2x2 blocks: an odd side gets one
        // more luma column/row.
        let y_stride = w.next_multiple_of(2);
        let y_rows = h.next_multiple_of(2);
        let c_stride = y_stride / 2;
        let c_rows = y_rows / 2;
        let mut planes = Planes {
            y: vec![0; y_stride * y_rows],
            cb: vec![0; c_stride * c_rows],
            cr: vec![0; c_stride * c_rows],
            y_stride,
            c_stride,
        };
        let mut ptrs = [
            planes.y.as_mut_ptr(),
            planes.cb.as_mut_ptr(),
            planes.cr.as_mut_ptr(),
        ];
        let mut strides = [y_stride as i32, c_stride as i32, c_stride as i32];
        let last = (h - 1) * img.stride + w * 3;
        assert!(img.data.len() >= last, "view outside its buffer");
        turbo::with_compressor(|handle| {
            handle.set(raw::TJPARAM_TJPARAM_SUBSAMP, raw::TJSAMP_TJSAMP_420 as _)?;
            // SAFETY: the handle is live; the source holds `h` rows of `w` RGB
            // pixels `img.stride` bytes apart (asserted above); each destination
            // plane holds `stride * rows` bytes for the padded 4:2:0 plane sizes
            // of a `w x h` image (tj3YUVPlaneWidth/Height: luma rounded up to even
            // sides, chroma half that; checked by a test against tj3YUVPlaneSize).
            let rc = unsafe {
                raw::tj3EncodeYUVPlanes8(
                    handle.ptr(),
                    img.data.as_ptr(),
                    w as _,
                    img.stride as _,
                    h as _,
                    raw::TJPF_TJPF_RGB as _,
                    ptrs.as_mut_ptr(),
                    strides.as_mut_ptr(),
                )
            };
            match rc {
                0 => Ok(()),
                _ => Err(handle.error()),
            }
        })
        .map_err(|e| CoreError::Encode(format!("RGB to YCbCr planes: {e}")))?;
        Ok(planes)
    }

    /// Encodes an MCU-aligned tile from the planes.
    pub(crate) fn encode(
        &self,
        row: usize,
        col: usize,
        height: usize,
        width: usize,
        quality: u8,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let (cr0, cc0) = (row / 2, col / 2);
        let (ch, cw) = (height / 2, width / 2);
        let y_end = (row + height - 1) * self.y_stride + col + width;
        let c_end = (cr0 + ch - 1) * self.c_stride + cc0 + cw;
        let image = YuvPlanesImage {
            y_plane: &self.y[row * self.y_stride + col..y_end],
            u_plane: &self.cb[cr0 * self.c_stride + cc0..c_end],
            v_plane: &self.cr[cr0 * self.c_stride + cc0..c_end],
            width,
            height,
            y_stride: self.y_stride,
            u_stride: self.c_stride,
            v_stride: self.c_stride,
            subsamp: Subsamp::Sub2x2,
        };
        let bytes = with_compressor(quality, |c| c.compress_yuv_planes_to_vec(&image))?;
        out.extend_from_slice(&bytes);
        Ok(())
    }
}
