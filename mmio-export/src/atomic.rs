use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::ExportError;

/// Where a file is written until it is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Staging {
    /// `FILE.partial`, beside `FILE`.
    Beside,
    /// `.FILE.partial`: hidden, so that query engines listing a directory of parts
    /// (pyarrow, Spark skip names starting with `.` or `_`) never meet it.
    Hidden,
}

/// A file written under `FILE.partial` and renamed to `FILE` once complete.
pub(crate) struct PartialFile {
    target: PathBuf,
    partial: PathBuf,
    file: File,
}

/// `FILE.partial` (or `.FILE.partial`), beside `FILE`.
pub fn partial_path(target: &Path, staging: Staging) -> PathBuf {
    let mut name = std::ffi::OsString::new();
    if staging == Staging::Hidden {
        name.push(".");
    }
    name.push(target.file_name().unwrap_or_default());
    name.push(".partial");
    target.with_file_name(name)
}

impl PartialFile {
    /// Creates `target.partial`; fails early for a missing or unwritable directory.
    pub fn create(target: &Path, staging: Staging) -> Result<PartialFile, ExportError> {
        let partial = partial_path(target, staging);
        let file = File::create(&partial)
            .map_err(|e| ExportError::io(&partial, "cannot create the trace file", e))?;
        Ok(PartialFile {
            target: target.to_path_buf(),
            partial,
            file,
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    pub fn partial(&self) -> &Path {
        &self.partial
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        self.file
            .write_all(bytes)
            .map_err(|e| ExportError::io(&self.partial, "write failed", e))
    }

    /// Syncs the data and renames `FILE.partial` to `FILE`.
    pub fn commit(&mut self) -> Result<(), ExportError> {
        self.file
            .sync_all()
            .map_err(|e| ExportError::io(&self.partial, "sync failed", e))?;
        std::fs::rename(&self.partial, &self.target).map_err(|e| {
            ExportError::io(
                &self.target,
                "cannot rename the finished trace into place",
                e,
            )
        })
    }
}
