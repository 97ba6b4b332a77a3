//! Core errors → Python exceptions: I/O to the matching OSError subclass, bad options
//! to ValueError, everything else to subclasses of `DlasError`.

use std::io::ErrorKind;

use dlas_core::CoreError;
use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyOSError, PyPermissionError, PyValueError,
};
use pyo3::prelude::*;

pyo3::create_exception!(
    _native,
    DlasError,
    PyException,
    "Base of dlas_fast's errors."
);
pyo3::create_exception!(
    _native,
    DecodeError,
    DlasError,
    "An image could not be decoded."
);
pyo3::create_exception!(
    _native,
    DestinationError,
    DlasError,
    "The extraction's destination folder cannot be used."
);
pyo3::create_exception!(
    _native,
    CentersFileError,
    DlasError,
    "A centers.pt file is damaged or carries code."
);

pyo3::create_exception!(
    _native,
    MixedSizesError,
    PyValueError,
    "The items of one batch come out in different sizes (no target_size to unify them)."
);

pub fn to_pyerr(err: CoreError) -> PyErr {
    let msg = err.to_string();
    match err {
        CoreError::Io { source, .. } => match source.kind() {
            ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
            ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
            _ => PyOSError::new_err(msg),
        },
        CoreError::InvalidOption { .. } => PyValueError::new_err(msg),
        CoreError::Decode { .. } | CoreError::TooManyPixels { .. } => DecodeError::new_err(msg),
        CoreError::Destination { .. } => DestinationError::new_err(msg),
        CoreError::TorchFile(dlas_core::torchfile::TorchFileError::Io { source, .. }) => {
            match source.kind() {
                ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
                ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
                _ => PyOSError::new_err(msg),
            }
        }
        CoreError::TorchFile(_) => CentersFileError::new_err(msg),
        _ => DlasError::new_err(msg),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("DlasError", py.get_type::<DlasError>())?;
    m.add("DecodeError", py.get_type::<DecodeError>())?;
    m.add("DestinationError", py.get_type::<DestinationError>())?;
    m.add("CentersFileError", py.get_type::<CentersFileError>())?;
    m.add("MixedSizesError", py.get_type::<MixedSizesError>())?;
    Ok(())
}
