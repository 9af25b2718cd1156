//! The only crate that knows trace file formats.
//!
//! | extension | format |
//! |---|---|
//! | `.json` | the upstream PANDA `mmio_trace` plugin's JSON array |
//! | `.jsonl`, `.ndjson` | JSON Lines, one event per line |
//! | `.parquet` | Parquet (zstd), for DuckDB, pandas, Polars |
//!
//! Writers are [`mmio_core::EventSink`]s created by [`create_writer`]; they write to
//! `FILE.partial` and rename it to `FILE` when finished, so a reader never sees a
//! half-written file under the final name. Readers ([`TraceReader`], from
//! [`open_trace`]) stream events back without loading the file.
//! The columns and keys are documented in `docs/FORMAT.md`.

mod annotate;
mod atomic;
mod dataset;
mod device_cache;
mod error;
mod info;
mod jsonl;
mod panda_json;
mod parquet_format;
mod reader;
mod scan;
mod text;

use std::path::Path;

use mmio_core::EventSink;

pub use annotate::{Annotate, NameColumns};
pub use dataset::{
    check_output, create_annotated_output, create_output, is_directory_output, parse_count,
    trace_files, OutputOptions, TraceSet, DEFAULT_ROTATE,
};
pub use error::ExportError;
pub use info::TraceInfo;
pub use panda_json::NO_DEVICE;
pub use parquet_format::{default_recovery_output, recover_parquet, RecoverySummary};
pub use reader::{open_trace, TraceReader};
pub use scan::{scan, EventColumns, Wanted};

/// Version of the columns and keys written, stored in every Parquet file; bumped when
/// they change. 2 added the `run` column; readers take version 1 files too.
pub const FORMAT_VERSION: u32 = 3;

/// A trace file format, chosen by the file's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// `.json`: the upstream PANDA plugin's JSON array.
    PandaJson,
    /// `.jsonl` / `.ndjson`.
    JsonLines,
    /// `.parquet`.
    Parquet,
}

impl Format {
    /// The extensions [`Format::from_path`] knows, for messages.
    pub const SUPPORTED: &'static str = ".parquet, .jsonl, .ndjson, .json";

    /// The extension of a file in this format, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::PandaJson => "json",
            Format::JsonLines => "jsonl",
            Format::Parquet => "parquet",
        }
    }

    /// The format of `path`, by its extension (case-insensitive). A `FILE.partial`
    /// left by an interrupted run has the format of `FILE`.
    pub fn from_path(path: &Path) -> Result<Format, ExportError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let name = name.strip_suffix(".partial").unwrap_or(&name);
        let extension = name.rsplit_once('.').map(|(_, ext)| ext).unwrap_or("");
        match extension {
            "json" => Ok(Format::PandaJson),
            "jsonl" | "ndjson" => Ok(Format::JsonLines),
            "parquet" => Ok(Format::Parquet),
            _ => Err(ExportError::UnsupportedExtension {
                path: path.to_path_buf(),
            }),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::PandaJson => "PANDA JSON",
            Format::JsonLines => "JSON Lines",
            Format::Parquet => "Parquet",
        })
    }
}

/// A text that names no [`Format`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown trace format {0:?} (use parquet, jsonl, ndjson or json)")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;

    /// `parquet`, `jsonl` (or `ndjson`), `json`: the extensions' names.
    fn from_str(text: &str) -> Result<Format, UnknownFormat> {
        match text {
            "parquet" => Ok(Format::Parquet),
            "jsonl" | "ndjson" => Ok(Format::JsonLines),
            "json" => Ok(Format::PandaJson),
            _ => Err(UnknownFormat(text.to_string())),
        }
    }
}

/// Creates the writer for `path` (format by extension). Fails now, not at the end of
/// the run, when the extension is unknown or `FILE.partial` cannot be created.
pub fn create_writer(path: &Path, info: TraceInfo) -> Result<Box<dyn EventSink>, ExportError> {
    create_staged_writer(path, info, atomic::Staging::Beside, None)
}

/// [`create_writer`], its unfinished file staged as `staging` says, with the name
/// columns of `names`.
pub(crate) fn create_staged_writer(
    path: &Path,
    info: TraceInfo,
    staging: atomic::Staging,
    names: annotate::Names,
) -> Result<Box<dyn EventSink>, ExportError> {
    Ok(match Format::from_path(path)? {
        Format::PandaJson if !annotate::columns_of(&names).is_empty() => {
            return Err(ExportError::BadOutput {
                path: path.to_path_buf(),
                message: "the PANDA JSON format has no function or register column: write .parquet or .jsonl".into(),
            })
        }
        Format::PandaJson => Box::new(panda_json::PandaJsonWriter::create(path, info, staging)?),
        Format::JsonLines => Box::new(jsonl::JsonLinesWriter::create(
            path, info, staging, names,
        )?),
        Format::Parquet => Box::new(parquet_format::ParquetWriter::create(
            path, info, staging, names,
        )?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_the_extension() {
        assert_eq!(
            Format::from_path(Path::new("t.json")).unwrap(),
            Format::PandaJson
        );
        assert_eq!(
            Format::from_path(Path::new("t.JSONL")).unwrap(),
            Format::JsonLines
        );
        assert_eq!(
            Format::from_path(Path::new("t.ndjson")).unwrap(),
            Format::JsonLines
        );
        assert_eq!(
            Format::from_path(Path::new("d/t.parquet")).unwrap(),
            Format::Parquet
        );
        assert_eq!(
            Format::from_path(Path::new("t.parquet.partial")).unwrap(),
            Format::Parquet
        );
        assert_eq!(
            Format::from_path(Path::new("trace.csv"))
                .unwrap_err()
                .to_string(),
            "trace.csv: unsupported trace file extension (use .parquet, .jsonl, .ndjson, .json)"
        );
    }
}
