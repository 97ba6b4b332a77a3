//! JPEG, one idea per file. libjpeg-turbo decodes and encodes; around it, the fast
//! paths of the formats tiles use.

// Shared-block coding of tiles and the codec-free round trip.
mod blocks;
mod colour;
mod dct;
#[cfg(target_arch = "x86_64")]
mod dct_avx2;
mod encoder_tables;
mod requantise;

// libjpeg-turbo.
pub(super) mod memory;
pub(super) mod turbo;

pub(super) use blocks::{Blocks, Plane};
pub(super) use colour::ycc420_to_rgb;
pub(super) use encoder_tables::Tables;
pub(super) use requantise::requantise;
