//! The Parquet writer: events to record batches to row groups of bounded size, written
//! as events arrive, each logged for recovery once complete.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use mmio_core::{DeviceTable, EventSink, MmioEvent, SinkError};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::columns::{Columns, BATCH_ROWS};
use super::row_group_log::RowGroupLog;
use super::schema::{devices_metadata, info_metadata, schema_with};
use crate::annotate::Names;
use crate::atomic::{PartialFile, Staging};
use crate::device_cache::DeviceCache;
use crate::{ExportError, TraceInfo};

/// Row group caps: whichever is reached first closes the group.
const ROW_GROUP_ROWS: usize = 1024 * 1024;
const ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;
/// A row group is also closed after this long, so a killed slow run loses little.
const ROW_GROUP_MAX_AGE: Duration = Duration::from_secs(10);

/// Writes `FILE.partial` and its row-group log; renames it to `FILE` when finished.
pub(crate) struct ParquetWriter {
    file: PartialFile,
    writer: Option<ArrowWriter<File>>,
    columns: Columns,
    devices: DeviceCache,
    info: TraceInfo,
    row_group_log: Option<RowGroupLog>,
    row_group_started: Instant,
}

impl ParquetWriter {
    pub fn create(
        path: &Path,
        info: TraceInfo,
        staging: Staging,
        names: Names,
    ) -> Result<Self, ExportError> {
        let mut file = PartialFile::create(path, staging)?;
        let handle = file
            .file()
            .try_clone()
            .map_err(|e| ExportError::io(path, "cannot open the trace file", e))?;
        let props = WriterProperties::builder()
            // Level 1: as small as the default level on these columns, faster.
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
            // Row-group statistics serve pruning (DuckDB, Spark); page-level ones (the
            // column index) cost time and stay in memory until the footer is written.
            .set_statistics_enabled(EnabledStatistics::Chunk)
            // ... except where they prune nothing: `type` is R and W in every group,
            // `space` and `device_kind` nearly so, `run` one value a file. Their min
            // and max cost a string comparison per row, a fifth of the writer's time.
            .set_column_statistics_enabled(ColumnPath::from("type"), EnabledStatistics::None)
            .set_column_statistics_enabled(ColumnPath::from("space"), EnabledStatistics::None)
            .set_column_statistics_enabled(ColumnPath::from("device_kind"), EnabledStatistics::None)
            .set_column_statistics_enabled(ColumnPath::from("run"), EnabledStatistics::None)
            // Nor do the optional name columns, whose names come in no order.
            .set_column_statistics_enabled(ColumnPath::from("function"), EnabledStatistics::None)
            .set_column_statistics_enabled(ColumnPath::from("register"), EnabledStatistics::None)
            // Nor the page locations: they too grow with the trace until the footer.
            .set_offset_index_disabled(true)
            // Counters that only grow: deltas, no dictionary attempt.
            .set_column_dictionary_enabled(ColumnPath::from("seq"), false)
            .set_column_encoding(ColumnPath::from("seq"), Encoding::DELTA_BINARY_PACKED)
            .set_column_dictionary_enabled(ColumnPath::from("instr_count"), false)
            .set_column_encoding(
                ColumnPath::from("instr_count"),
                Encoding::DELTA_BINARY_PACKED,
            )
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .set_created_by(format!("mmio-trace {}", env!("CARGO_PKG_VERSION")))
            .set_key_value_metadata(Some(info_metadata(&info)))
            .build();
        let columns = Columns::new(names);
        let writer = ArrowWriter::try_new(handle, schema_with(columns.name_columns()), Some(props))
            .map_err(|e| ExportError::parquet(path, "cannot start the Parquet writer", e))?;
        let row_group_log = RowGroupLog::create(file.partial())?;
        Ok(ParquetWriter {
            file,
            writer: Some(writer),
            columns,
            devices: DeviceCache::default(),
            info,
            row_group_log: Some(row_group_log),
            row_group_started: Instant::now(),
        })
    }

    fn error(&self, message: &str, source: parquet::errors::ParquetError) -> SinkError {
        SinkError::new(ExportError::parquet(self.file.partial(), message, source))
    }

    /// Encodes the buffered rows; closes the row group when it is old enough or
    /// `close_row_group`.
    fn write_batch(&mut self, close_row_group: bool) -> Result<(), SinkError> {
        let path = self.file.partial().to_path_buf();
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        if self.columns.rows() > 0 {
            let batch = self.columns.finish(&self.info.run).map_err(|e| {
                SinkError::new(ExportError::BadParquet {
                    path: path.clone(),
                    message: e.to_string(),
                })
            })?;
            writer
                .write(&batch)
                .map_err(|e| SinkError::new(ExportError::parquet(&path, "write failed", e)))?;
        }
        let aged = self.row_group_started.elapsed() >= ROW_GROUP_MAX_AGE;
        if (close_row_group || aged) && writer.in_progress_rows() > 0 {
            writer
                .flush()
                .map_err(|e| SinkError::new(ExportError::parquet(&path, "write failed", e)))?;
        }
        self.log_row_groups()
    }

    /// Appends the metadata of newly completed row groups to the row-group log.
    fn log_row_groups(&mut self) -> Result<(), SinkError> {
        let (Some(writer), Some(log)) = (self.writer.as_mut(), self.row_group_log.as_mut()) else {
            return Ok(());
        };
        if log.unlogged(writer.flushed_row_groups()).is_empty() {
            return Ok(());
        }
        // The row groups' bytes must reach the file before the log names them.
        writer
            .sync()
            .map_err(|e| SinkError::new(ExportError::io(self.file.partial(), "write failed", e)))?;
        let groups = log.unlogged(writer.flushed_row_groups());
        log.append(groups, &self.info).map_err(SinkError::new)?;
        self.row_group_started = Instant::now();
        Ok(())
    }
}

impl EventSink for ParquetWriter {
    fn target(&self) -> String {
        self.file.target().display().to_string()
    }

    fn write(&mut self, events: &[MmioEvent], table: &DeviceTable) -> Result<(), SinkError> {
        for event in events {
            let kind = self.devices.kind(event.device, table);
            let device = self.devices.get(event.device, table);
            if !self.columns.push(event, device, kind) {
                // The batch's device dictionary is full: start a new batch.
                self.write_batch(false)?;
                let device = self.devices.get(event.device, table);
                if !self.columns.push(event, device, kind) {
                    return Err(SinkError::new(ExportError::BadParquet {
                        path: self.file.partial().to_path_buf(),
                        message: "more than 65535 device names in one batch".into(),
                    }));
                }
            }
            if self.columns.rows() >= BATCH_ROWS {
                self.write_batch(false)?;
            }
        }
        if self.row_group_started.elapsed() >= ROW_GROUP_MAX_AGE {
            self.write_batch(true)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if self.row_group_started.elapsed() >= ROW_GROUP_MAX_AGE {
            self.write_batch(true)?;
        }
        Ok(())
    }

    fn finish(&mut self, table: &DeviceTable) -> Result<(), SinkError> {
        self.write_batch(false)?;
        let Some(mut writer) = self.writer.take() else {
            return Ok(());
        };
        writer.append_key_value_metadata(devices_metadata(table));
        writer
            .close()
            .map_err(|e| self.error("cannot write the Parquet footer", e))?;
        // The footer is written: the log is of no more use, and must not outlive the
        // rename (a killed run between the two leaves a complete `.partial`, which
        // `recover` copies as it is).
        if let Some(log) = self.row_group_log.take() {
            log.remove();
        }
        self.file.commit().map_err(SinkError::new)
    }
}
