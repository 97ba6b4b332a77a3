//! Image primitives: an owned RGB8 buffer, decoding, area resizing and JPEG encoding.

mod buffer;
mod decode;
mod encode;
mod jpeg;
pub(crate) mod resize;

pub use buffer::{Rgb8, Rgb8View};
pub use decode::{
    check_max_pixels, decode_bytes, decode_bytes_reduced, decode_bytes_region, decode_file,
    decode_file_reduced, decode_file_region, DecodeOptions, Partial, Region, DEFAULT_MAX_PIXELS,
    MAX_MAX_PIXELS, METADATA_MAX_BYTES,
};
pub(crate) use decode::{decoder_limits, image_error, IMAGE_FILE};
pub use encode::{encode_jpeg, jpeg_round_trip, TileSource, JPEG_ENCODER, MCU};
pub(crate) use jpeg::markers::frame_size as jpeg_frame_size;
pub use resize::{resize_area, resize_area_into};
