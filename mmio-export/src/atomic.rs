use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::ExportError;

/// A file written under `FILE.partial` and renamed to `FILE` once complete.
pub(crate) struct PartialFile {
    target: PathBuf,
    partial: PathBuf,
    file: File,
}

/// `FILE.partial`, beside `FILE`.
pub fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

impl PartialFile {
    /// Creates `target.partial`; fails early for a missing or unwritable directory.
    pub fn create(target: &Path) -> Result<PartialFile, ExportError> {
        let partial = partial_path(target);
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
