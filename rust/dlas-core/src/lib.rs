//! dlas-core: the Python-free core of dlas_fast.
//!
//! Everything heavy lives here as plain Rust over plain Rust types, so `cargo test`
//! needs no Python: image decode/resize/encode, the chunked-dataset extraction job and
//! the reader/writer of DLAS `centers.pt` files.

pub mod error;
pub mod extract;
pub mod image;
pub mod index;
pub mod load;
pub mod torchfile;

pub use error::{CoreError, Result};
