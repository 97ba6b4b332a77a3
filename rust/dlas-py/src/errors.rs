//! Core errors → Python exceptions: I/O to the matching OSError subclass, bad options
//! to ValueError, everything else to subclasses of `DlasError`.
//!
//! The classes live in the `dlas_fast` package (`__module__ == "dlas_fast"`, which
//! exports them), so pickle finds them: a DataLoader worker sends its error's class
//! to the main process. An error about a file carries it as the exception's `path`
//! attribute (None otherwise), which survives pickling with the message.

use std::io::ErrorKind;
use std::path::Path;

use dlas_core::CoreError;
use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyOSError, PyPermissionError, PyValueError,
};
use pyo3::prelude::*;

pyo3::create_exception!(
    dlas_fast,
    DlasError,
    PyException,
    "Base of dlas_fast's errors. `path`: the file at fault, or None."
);
pyo3::create_exception!(
    dlas_fast,
    DecodeError,
    DlasError,
    "An image could not be decoded (`path`: the file)."
);
pyo3::create_exception!(
    dlas_fast,
    DestinationError,
    DlasError,
    "The extraction's destination folder cannot be used (`path`: the folder)."
);
pyo3::create_exception!(
    dlas_fast,
    CentersFileError,
    DlasError,
    "A centers.pt file is damaged or carries code (`path`: the file)."
);
pyo3::create_exception!(
    dlas_fast,
    ImageSizeError,
    DlasError,
    "An image decodes, but its size leaves nothing to load under the dataset's options \
     (smaller than min_tile_size, or no pixel once cropped to force_multiple * scale); \
     `path`: the file. `on_error: skip` passes over it."
);

pyo3::create_exception!(
    dlas_fast,
    MixedSizesError,
    PyValueError,
    "The items of one batch come out in different sizes (no target_size to unify them); \
     `path`: the first item of another size."
);

/// `err` with `path` set to `path` (as `str`, undecodable bytes escaped as Python's
/// `os.fsdecode` does).
pub fn with_path(err: PyErr, path: &Path) -> PyErr {
    Python::attach(|py| {
        // Setting an attribute on a fresh exception instance does not fail; if it ever
        // did, the error itself is still the one to raise.
        let _ = err.value(py).setattr("path", path.as_os_str());
    });
    err
}

pub fn to_pyerr(err: CoreError) -> PyErr {
    let msg = err.to_string();
    let path = err.path().map(Path::to_path_buf);
    let py_err = match err {
        CoreError::Io { source, .. } => match source.kind() {
            ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
            ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
            _ => PyOSError::new_err(msg),
        },
        CoreError::InvalidOption { .. } => PyValueError::new_err(msg),
        CoreError::Decode { .. } | CoreError::TooManyPixels { .. } => DecodeError::new_err(msg),
        CoreError::Destination { .. } => DestinationError::new_err(msg),
        CoreError::ImageSize { .. } => ImageSizeError::new_err(msg),
        CoreError::MixedSizes { .. } => MixedSizesError::new_err(msg),
        CoreError::TorchFile(dlas_core::torchfile::TorchFileError::Io { source, .. }) => {
            match source.kind() {
                ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
                ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
                _ => PyOSError::new_err(msg),
            }
        }
        CoreError::TorchFile(_) => CentersFileError::new_err(msg),
        _ => DlasError::new_err(msg),
    };
    match path {
        Some(p) => with_path(py_err, &p),
        None => py_err,
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    for (name, class) in [
        ("DlasError", py.get_type::<DlasError>()),
        ("DecodeError", py.get_type::<DecodeError>()),
        ("DestinationError", py.get_type::<DestinationError>()),
        ("CentersFileError", py.get_type::<CentersFileError>()),
        ("ImageSizeError", py.get_type::<ImageSizeError>()),
        ("MixedSizesError", py.get_type::<MixedSizesError>()),
    ] {
        m.add(name, class)?;
    }
    // The default of every instance; the subclasses of DlasError inherit it.
    py.get_type::<DlasError>().setattr("path", py.None())?;
    py.get_type::<MixedSizesError>()
        .setattr("path", py.None())?;
    Ok(())
}
