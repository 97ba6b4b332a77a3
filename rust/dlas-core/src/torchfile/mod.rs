//! Reader and writer of DLAS `centers.pt` files, without Python.
//!
//! A DLAS chunked dataset keeps, per folder, a `centers.pt` written by `torch.save`:
//! a Python dict `{tile_id: ((row, col), width)}` of plain ints.
//!
//! * [`write_centers`] / [`centers_to_bytes`] produce torch's zip serialization format
//!   (what `torch.save` writes since torch 1.6), loadable by `torch.load` with or
//!   without `weights_only=True`. Output is deterministic.
//! * [`read_centers`] / [`read_centers_bytes`] read both the zip format and the legacy
//!   (`_use_new_zipfile_serialization=False`) format.
//!
//! Reading never executes anything: pickles go through [`parse_pickle`], a small stack
//! machine that understands plain data only (dicts, lists, tuples, sets, ints, floats,
//! strings, bytes, bools, None) and refuses every opcode that could import or call code.

mod centers;
mod error;
mod legacy;
mod pickle;
mod pickle_text;
mod value;
mod write;
mod zipfmt;

use std::collections::BTreeMap;
use std::path::Path;

pub use error::TorchFileError;
pub use pickle::parse_pickle;
pub use value::PickleValue;
pub use write::centers_to_bytes;

/// The decoded content of a `centers.pt`: `tile_id -> ((row, col), width)`.
pub type CentersMap = BTreeMap<i64, ((i64, i64), i64)>;

/// Zip local-file-header magic; `torch.load` uses it to tell the two formats apart.
const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";

/// Writes `entries` as a `torch.save`d dict `{id: ((row, col), width)}` to `path`.
///
/// The file is built in memory by [`centers_to_bytes`] and written with a single
/// write; it is not written atomically (write to a temporary path and rename if that
/// matters). Duplicate ids are written as given; Python keeps the last value.
pub fn write_centers(
    path: &Path,
    entries: &[(i64, (i64, i64), i64)],
) -> Result<(), TorchFileError> {
    let bytes = centers_to_bytes(entries);
    std::fs::write(path, bytes).map_err(|source| TorchFileError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a `centers.pt` written by `torch.save` (zip or legacy format).
///
/// Only a regular file of at most [`crate::input::CENTERS_MAX_BYTES`] is read (a FIFO
/// or a link to a device is refused, see [`crate::input`]).
///
/// Errors carry `path`. Nothing in the file is executed; a pickle that tries to import
/// or call anything is refused with [`TorchFileError::ForbiddenOpcode`].
pub fn read_centers(path: &Path) -> Result<CentersMap, TorchFileError> {
    let bytes =
        crate::input::read_regular(path, crate::input::CENTERS_MAX_BYTES, "a centers.pt", "")
            .map_err(|source| TorchFileError::Io {
                path: path.to_path_buf(),
                source,
            })?;
    read_centers_bytes(&bytes).map_err(|e| e.with_path(path))
}

/// Like [`read_centers`], for the content of a file already in memory.
pub fn read_centers_bytes(bytes: &[u8]) -> Result<CentersMap, TorchFileError> {
    let value = load_pickled_object(bytes)?;
    centers::to_centers(&value)
}

/// Decodes the object stored in a `torch.save` file (zip or legacy format) as a
/// [`PickleValue`]. Only plain data is supported: anything referencing tensors,
/// classes or functions is refused.
pub fn load_pickled_object(bytes: &[u8]) -> Result<PickleValue, TorchFileError> {
    if bytes.starts_with(ZIP_MAGIC) {
        let pkl = zipfmt::read_data_pkl(bytes)?;
        let (value, _consumed) = parse_pickle(&pkl)?;
        Ok(value)
    } else {
        legacy::read_legacy(bytes)
    }
}
