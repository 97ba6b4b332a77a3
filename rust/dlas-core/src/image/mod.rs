//! Image primitives: an owned RGB8 buffer, decoding, area resizing and JPEG encoding.

mod buffer;
mod decode;
mod encode;
mod resize;

pub use buffer::{Rgb8, Rgb8View};
pub use decode::{decode_bytes, decode_file, DecodeOptions, DEFAULT_MAX_PIXELS};
pub use encode::{encode_jpeg, JPEG_ENCODER};
pub use resize::{resize_area, resize_area_into};
