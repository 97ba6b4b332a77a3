//! The core's error type: every failure names the file or option at fault.

use std::path::PathBuf;

use crate::torchfile::TorchFileError;

/// Everything that can go wrong in dlas-core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not an image we can decode (or is damaged).
    #[error("{}: cannot decode image: {reason}", path.display())]
    Decode { path: PathBuf, reason: String },
    /// The image declares more pixels than the configured limit.
    #[error(
        "{}: image of {width}x{height} ({:.1} MP) exceeds the pixel limit of {:.1} MP \
         (a decompression bomb?); raise --max-pixels to accept it",
        path.display(), (*width as f64) * (*height as f64) / 1e6, *limit as f64 / 1e6
    )]
    TooManyPixels {
        path: PathBuf,
        width: u64,
        height: u64,
        limit: u64,
    },
    /// JPEG encoding failed.
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
    /// An option has a value we cannot use.
    #[error("option `{option}`: {reason}")]
    InvalidOption { option: String, reason: String },
    /// A centers.pt (torch file) problem.
    #[error(transparent)]
    TorchFile(#[from] TorchFileError),
    /// The destination cannot be used for this job.
    #[error("{}: {reason}", path.display())]
    Destination { path: PathBuf, reason: String },
    /// The run was asked to stop (Ctrl-C) before it finished; DST is left resumable.
    #[error("interrupted: rerun with --resume to finish")]
    Interrupted,
    /// An image decodes, but its size leaves nothing to load under the dataset's
    /// options (smaller than the tile, or no pixel once cropped to a multiple): that
    /// image's fault, not the options', when other images fit.
    #[error("{}: {reason}", path.display())]
    ImageSize { path: PathBuf, reason: String },
    /// The items of one batch come out in different sizes, or not in the sizes of the
    /// caller's output arrays (no `target_size` to unify them): `path` is the first
    /// item of another size, when one is to blame. Loaded one by one, they are fine.
    #[error(
        "{}{reason}",
        path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default()
    )]
    MixedSizes {
        path: Option<PathBuf>,
        reason: String,
    },
}

impl CoreError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CoreError::Io {
            path: path.into(),
            source,
        }
    }

    /// An image-size error naming `path`.
    pub fn image_size(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        CoreError::ImageSize {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The file this error concerns, if it names one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            CoreError::Io { path, .. }
            | CoreError::Decode { path, .. }
            | CoreError::TooManyPixels { path, .. }
            | CoreError::Destination { path, .. }
            | CoreError::ImageSize { path, .. } => Some(path),
            CoreError::TorchFile(e) => e.path(),
            CoreError::MixedSizes { path, .. } => path.as_deref(),
            CoreError::Encode(_) | CoreError::InvalidOption { .. } | CoreError::Interrupted => None,
        }
    }

    /// A mixed-sizes error (see [`CoreError::MixedSizes`]).
    pub fn mixed_sizes(path: Option<PathBuf>, reason: impl Into<String>) -> Self {
        CoreError::MixedSizes {
            path,
            reason: reason.into(),
        }
    }

    /// An invalid-option error.
    pub fn option(option: &str, reason: impl Into<String>) -> Self {
        CoreError::InvalidOption {
            option: option.to_string(),
            reason: reason.into(),
        }
    }
}

/// Result alias of the core.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;
