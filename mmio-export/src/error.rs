use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ExportError {
    #[error("{}: unsupported trace file extension (use {})", path.display(), crate::Format::SUPPORTED)]
    UnsupportedExtension { path: PathBuf },
    #[error("{}: {action}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: line {line}: {message}", path.display())]
    BadLine {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}: {message}", path.display())]
    BadParquet { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Parquet {
        path: PathBuf,
        message: String,
        #[source]
        source: parquet::errors::ParquetError,
    },
}

impl ExportError {
    pub(crate) fn io(path: &std::path::Path, action: &'static str, source: std::io::Error) -> Self {
        ExportError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    pub(crate) fn parquet(
        path: &std::path::Path,
        message: impl Into<String>,
        source: parquet::errors::ParquetError,
    ) -> Self {
        ExportError::Parquet {
            path: path.to_path_buf(),
            message: message.into(),
            source,
        }
    }
}
