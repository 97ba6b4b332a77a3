//! Error type of the torch file reader/writer.

use std::path::{Path, PathBuf};

/// Everything that can go wrong reading or writing a torch file.
///
/// Variants other than [`TorchFileError::Io`] carry `path: None` when produced by the
/// in-memory APIs, and the file's path when produced by the path-taking ones.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorchFileError {
    /// Reading or writing the file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file that could not be read or written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The data is neither a torch zip archive nor a legacy `torch.save` stream, or
    /// the container is damaged.
    #[error("{}: not a readable torch.save file: {reason}", loc(.path))]
    NotATorchFile {
        /// The file, if known.
        path: Option<PathBuf>,
        /// What is wrong with it.
        reason: String,
    },
    /// The pickle contains an opcode that would import or call code (or use a
    /// persistent id, i.e. reference tensors); nothing was executed.
    #[error(
        "{} contains pickle opcode {opcode}{detail} at byte {offset}; refusing to load code",
        loc(.path)
    )]
    ForbiddenOpcode {
        /// The file, if known.
        path: Option<PathBuf>,
        /// Name of the opcode, as in Python's `pickletools` (e.g. `GLOBAL`).
        opcode: &'static str,
        /// Its argument when cheap to show, e.g. ` ('os system')`; may be empty.
        detail: String,
        /// Offset of the opcode in the pickle stream.
        offset: usize,
    },
    /// The pickle stream is truncated, inconsistent or uses an unknown opcode.
    #[error("{}: malformed pickle at byte {offset}: {what}", loc(.path))]
    MalformedPickle {
        /// The file, if known.
        path: Option<PathBuf>,
        /// Offset of the offending opcode in the pickle stream.
        offset: usize,
        /// What is wrong.
        what: String,
    },
    /// The pickle is valid but does not hold the expected structure.
    #[error("{}: unexpected content: {what}", loc(.path))]
    UnexpectedStructure {
        /// The file, if known.
        path: Option<PathBuf>,
        /// What was expected and what was found.
        what: String,
    },
}

fn loc(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "torch data".to_string(),
    }
}

impl TorchFileError {
    /// Attaches `path` to an error produced by an in-memory API (no-op if the error
    /// already names a file).
    pub fn with_path(mut self, path: &Path) -> Self {
        match &mut self {
            TorchFileError::Io { .. } => {}
            TorchFileError::NotATorchFile { path: p, .. }
            | TorchFileError::ForbiddenOpcode { path: p, .. }
            | TorchFileError::MalformedPickle { path: p, .. }
            | TorchFileError::UnexpectedStructure { path: p, .. } => {
                if p.is_none() {
                    *p = Some(path.to_path_buf());
                }
            }
        }
        self
    }

    /// The file this error concerns, if known.
    pub fn path(&self) -> Option<&Path> {
        match self {
            TorchFileError::Io { path, .. } => Some(path),
            TorchFileError::NotATorchFile { path, .. }
            | TorchFileError::ForbiddenOpcode { path, .. }
            | TorchFileError::MalformedPickle { path, .. }
            | TorchFileError::UnexpectedStructure { path, .. } => path.as_deref(),
        }
    }

    pub(crate) fn malformed(offset: usize, what: impl Into<String>) -> Self {
        TorchFileError::MalformedPickle {
            path: None,
            offset,
            what: what.into(),
        }
    }

    pub(crate) fn not_torch(reason: impl Into<String>) -> Self {
        TorchFileError::NotATorchFile {
            path: None,
            reason: reason.into(),
        }
    }

    pub(crate) fn structure(what: impl Into<String>) -> Self {
        TorchFileError::UnexpectedStructure {
            path: None,
            what: what.into(),
        }
    }
}
