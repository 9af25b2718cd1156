//! Recovery: a valid trace rebuilt from the complete row groups of a killed run's
//! `FILE.partial`, found through its row-group log.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mmio_core::{DeviceTable, EventSink, SinkError};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::ParquetMetaData;

use super::columns::BATCH_ROWS;
use super::reader::ParquetReader;
use super::row_group_log::RowGroupLog;
use super::schema::{name_columns_of, schema_with};
use super::writer::ParquetWriter;
use crate::atomic::Staging;
use crate::ExportError;

/// What [`recover_parquet`] salvaged.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoverySummary {
    /// Row groups salvaged.
    pub row_groups: usize,
    /// Events in them, all written to `output`.
    pub events: u64,
    /// The recovered trace.
    pub output: PathBuf,
}

/// Rebuilds a valid Parquet file at `output` from `partial` (a `FILE.partial` left by a
/// killed run): every row group completed before the kill, as listed in
/// `FILE.partial.rowgroups`. Events of the last, unfinished row group are lost.
///
/// ```no_run
/// use std::path::Path;
/// let partial = Path::new("trace.parquet.partial");
/// let output = mmio_export::default_recovery_output(partial); // trace.parquet
/// let summary = mmio_export::recover_parquet(partial, &output)?;
/// println!("{} events saved in {}", summary.events, summary.output.display());
/// # Ok::<(), mmio_export::ExportError>(())
/// ```
pub fn recover_parquet(partial: &Path, output: &Path) -> Result<RecoverySummary, ExportError> {
    let length = std::fs::metadata(partial)
        .map_err(|e| ExportError::io(partial, "cannot open", e))?
        .len();
    // A run killed between writing the footer and renaming left a complete file.
    if let Ok(file) = File::open(partial) {
        if ParquetRecordBatchReaderBuilder::try_new(file).is_ok() {
            return copy_events(partial, None, output);
        }
    }
    let Some(metadata) = RowGroupLog::read(partial, length)? else {
        return Err(ExportError::BadParquet {
            path: partial.to_path_buf(),
            message: "no complete row group to salvage (the run was killed before its first row group was written)".into(),
        });
    };
    copy_events(partial, Some(Arc::new(metadata)), output)
}

/// Reads `input` (with `metadata` in place of its footer, if given) and writes its
/// events to a fresh Parquet file at `output`.
fn copy_events(
    input: &Path,
    metadata: Option<Arc<ParquetMetaData>>,
    output: &Path,
) -> Result<RecoverySummary, ExportError> {
    let file = File::open(input).map_err(|e| ExportError::io(input, "cannot open", e))?;
    let table = DeviceTable::new();
    let (mut reader, row_groups) = match metadata {
        Some(metadata) => {
            let row_groups = metadata.num_row_groups();
            let pairs = metadata
                .file_metadata()
                .key_value_metadata()
                .cloned()
                .unwrap_or_default();
            // The name columns a converted file may have are read past, not kept:
            // `convert` makes them again.
            let names = name_columns_of(metadata.file_metadata().schema_descr());
            let options = ArrowReaderOptions::new().with_schema(schema_with(names));
            let arrow_metadata = ArrowReaderMetadata::try_new(metadata, options)
                .map_err(|e| ExportError::parquet(input, "bad row-group metadata", e))?;
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, arrow_metadata);
            (
                ParquetReader::from_builder(input, builder, &pairs, &table)?,
                row_groups,
            )
        }
        None => {
            let reader = ParquetReader::open(input, &table)?;
            let row_groups = reader_row_groups(input)?;
            (reader, row_groups)
        }
    };
    let info = reader.info.clone().unwrap_or_default();
    // `output.partial` may be `input` itself (recovering FILE.partial into FILE):
    // write elsewhere first.
    let mut staging = output.as_os_str().to_owned();
    staging.push(".recovering.parquet");
    let staging = PathBuf::from(staging);
    let mut writer = ParquetWriter::create(&staging, info, Staging::Beside, None)?;
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut events = 0u64;
    let to_export = |e: SinkError| ExportError::BadParquet {
        path: output.to_path_buf(),
        message: e.to_string(),
    };
    while let Some(event) = reader.next_event(&table) {
        batch.push(event?);
        if batch.len() == BATCH_ROWS {
            writer.write(&batch, &table).map_err(to_export)?;
            events += batch.len() as u64;
            batch.clear();
        }
    }
    writer.write(&batch, &table).map_err(to_export)?;
    events += batch.len() as u64;
    writer.finish(&table).map_err(to_export)?;
    std::fs::rename(&staging, output)
        .map_err(|e| ExportError::io(output, "cannot move the recovered trace into place", e))?;
    Ok(RecoverySummary {
        row_groups,
        events,
        output: output.to_path_buf(),
    })
}

fn reader_row_groups(path: &Path) -> Result<usize, ExportError> {
    let file = File::open(path).map_err(|e| ExportError::io(path, "cannot open", e))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| ExportError::parquet(path, "cannot read", e))?;
    Ok(builder.metadata().num_row_groups())
}

/// Where `mmio-trace recover FILE.partial` writes by default: `FILE` (a part of a
/// directory output, `.part-00003.parquet.partial`, becomes `part-00003.parquet`).
pub fn default_recovery_output(partial: &Path) -> PathBuf {
    let name = partial
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.strip_suffix(".partial") {
        Some(target) => {
            let target = target
                .strip_prefix(".part-")
                .map_or(target.to_string(), |rest| format!("part-{rest}"));
            partial.with_file_name(target)
        }
        None => partial.with_file_name(format!("{name}.recovered.parquet")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_writes_the_name_the_run_would_have_finished() {
        let output = |partial: &str| default_recovery_output(Path::new(partial));
        assert_eq!(output("d/t.parquet.partial"), Path::new("d/t.parquet"));
        assert_eq!(
            output("traces/.part-00003.parquet.partial"),
            Path::new("traces/part-00003.parquet")
        );
        assert_eq!(
            output("t.parquet"),
            Path::new("t.parquet.recovered.parquet")
        );
    }
}
