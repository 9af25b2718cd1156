use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a trace could not be written or read. Every variant names the file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The file name's extension names no format this crate knows.
    #[error("{}: unsupported trace file extension (use {})", path.display(), crate::Format::SUPPORTED)]
    UnsupportedExtension {
        /// The file.
        path: PathBuf,
    },
    /// An I/O operation on the file failed.
    #[error("{}: {action}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done, e.g. `cannot open`.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An output or input path that does not fit what was asked of it (options that
    /// contradict it, a directory that already holds a trace, or none).
    #[error("{}: {message}", path.display())]
    BadOutput {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A line of a text format (JSON Lines, PANDA JSON) is malformed.
    #[error("{}: line {line}: {message}", path.display())]
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        message: String,
    },
    /// A Parquet file that is not an mmio-trace trace, or whose contents are corrupt.
    #[error("{}: {message}", path.display())]
    BadParquet {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A Parquet file without its footer: a run killed before it finished. Its
    /// complete row groups can be salvaged with [`crate::recover_parquet`]
    /// (`mmio-trace recover FILE.partial`).
    #[error("{}: incomplete Parquet file (no footer; the run was killed before it finished): salvage it with `mmio-trace recover {}`", path.display(), path.display())]
    Incomplete {
        /// The file.
        path: PathBuf,
    },
    /// The Parquet library failed. Its error is the source, boxed so that the
    /// library's types stay out of this crate's API.
    #[error("{}: {message}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What was being done.
        message: String,
        /// The Parquet library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ExportError {
    pub(crate) fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    pub(crate) fn parquet(
        path: &Path,
        message: impl Into<String>,
        source: parquet::errors::ParquetError,
    ) -> Self {
        ExportError::Parquet {
            path: path.to_path_buf(),
            message: message.into(),
            source: Box::new(source),
        }
    }
}
