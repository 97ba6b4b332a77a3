//! JPEG, one idea per file. libjpeg-turbo is the codec; around it are the fast paths
//! for the baseline files tiles and many photos are: our own Huffman decoder feeding
//! libjpeg-turbo's AVX2 routines, a block coder that writes overlapping tiles from DCT
//! blocks coded once, and a JPEG round trip without a codec.

// A file's headers, read in one place.
pub(super) mod markers;

// Shared-block coding of tiles and the codec-free round trip.
mod blocks;
mod colour;
mod dct;
#[cfg(target_arch = "x86_64")]
mod dct_avx2;
mod encoder_tables;
mod requantise;

// Our decoder of baseline 4:2:0, 4:2:2 and 4:4:4 files: it calls libjpeg-turbo's x86-64
// AVX2 routines.
#[cfg(target_arch = "x86_64")]
pub(super) mod baseline;
#[cfg(target_arch = "x86_64")]
mod huffman_decode;
#[cfg(target_arch = "x86_64")]
mod libjpeg_simd;

// libjpeg-turbo.
pub(super) mod memory;
pub(super) mod turbo;
pub(super) mod turbo_decode;
pub(super) mod turbo_encode;

pub(super) use blocks::{Blocks, Plane};
pub(super) use colour::ycc420_to_rgb;
pub(super) use encoder_tables::Tables;
pub(super) use requantise::requantise;
