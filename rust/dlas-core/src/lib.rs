//! dlas-core: the Python-free core of dlas_fast.
//!
//! Everything heavy lives here as plain Rust over plain Rust types, so `cargo test`
//! needs no Python: image decode/resize/encode, the chunked-dataset extraction job and
//! the reader/writer of DLAS `centers.pt` files.

pub mod build_info;
pub mod corrupt;
pub mod cpu;
pub mod error;
pub mod extract;
pub mod image;
pub mod index;
pub mod input;
pub mod load;
pub mod pack;
pub mod planes;
pub mod survey;
pub mod torchfile;

pub use error::{CoreError, Result};

/// FNV-1a, 64 bit: a fixed, documented hash (std's hasher may change between releases),
/// for keys that must stay the same across builds (job keys, cache file names).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
