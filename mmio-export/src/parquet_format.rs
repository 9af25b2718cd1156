//! Parquet: typed columns (unsigned where the value is), zstd, row groups of bounded
//! size written as events arrive, the run's facts and device table as key-value
//! metadata.
//!
//! A Parquet file is only readable once its footer is written at the end. So that a
//! killed run still leaves something, each completed row group's metadata is also
//! appended to `FILE.partial.rowgroups`; [`recover_parquet`] rebuilds a valid file from
//! the complete row groups of `FILE.partial` with it.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{UInt16Type, UInt32Type, UInt64Type, UInt8Type};
use arrow_array::{
    Array, ArrayRef, DictionaryArray, RecordBatch, StringArray, UInt16Array, UInt32Array,
    UInt64Array, UInt8Array,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use mmio_core::{
    Access, Device, DeviceId, DeviceKind, DeviceTable, EventSink, MmioEvent, SinkError,
};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::Encoding;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{
    FileMetaData, KeyValue, ParquetMetaData, ParquetMetaDataReader, ParquetMetaDataWriter,
    RowGroupMetaData,
};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};

use crate::atomic::PartialFile;
use crate::device_cache::{intern_read_device, DeviceCache};
use crate::{ExportError, TraceInfo, FORMAT_VERSION};

/// Rows per record batch handed to the Parquet encoder.
const BATCH_ROWS: usize = 64 * 1024;
/// Row group caps: whichever is reached first closes the group.
const ROW_GROUP_ROWS: usize = 1024 * 1024;
const ROW_GROUP_BYTES: usize = 64 * 1024 * 1024;
/// A row group is also closed after this long, so a killed slow run loses little.
const ROW_GROUP_MAX_AGE: Duration = Duration::from_secs(10);

const KEY_PREFIX: &str = "mmio_trace.";

pub(crate) fn schema() -> SchemaRef {
    let dictionary =
        |keys: DataType| DataType::Dictionary(Box::new(keys), Box::new(DataType::Utf8));
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("cpu", DataType::UInt32, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("guest_pc", DataType::UInt64, false),
        Field::new("phys_addr", DataType::UInt64, true),
        Field::new("virt_addr", DataType::UInt64, false),
        Field::new("offset", DataType::UInt64, false),
        Field::new("size", DataType::UInt8, false),
        Field::new("value", DataType::UInt64, false),
        Field::new("device", dictionary(DataType::UInt16), true),
        Field::new("device_kind", dictionary(DataType::UInt8), true),
        Field::new("instr_count", DataType::UInt64, true),
    ]))
}

/// One device of the `mmio_trace.devices` metadata key.
#[derive(Serialize, Deserialize)]
struct DeviceRecord {
    name: String,
    base: u64,
    size: u64,
    kind: DeviceKind,
}

fn info_metadata(info: &TraceInfo) -> Vec<KeyValue> {
    [
        ("format_version", FORMAT_VERSION.to_string()),
        ("tool_version", env!("CARGO_PKG_VERSION").to_string()),
        ("emulator", info.emulator.clone()),
        ("target_arch", info.target_arch.clone()),
        ("machine", info.machine.clone()),
        ("start_time", info.start_time.clone()),
        ("word_size", info.word_size.to_string()),
    ]
    .into_iter()
    .map(|(key, value)| KeyValue::new(format!("{KEY_PREFIX}{key}"), value))
    .collect()
}

fn info_from_metadata(pairs: &[KeyValue]) -> Option<TraceInfo> {
    let get = |key: &str| {
        pairs
            .iter()
            .find(|kv| kv.key == format!("{KEY_PREFIX}{key}"))
            .and_then(|kv| kv.value.clone())
    };
    Some(TraceInfo {
        emulator: get("emulator")?,
        target_arch: get("target_arch").unwrap_or_default(),
        machine: get("machine").unwrap_or_default(),
        start_time: get("start_time").unwrap_or_default(),
        word_size: get("word_size").and_then(|w| w.parse().ok()).unwrap_or(4),
    })
}

/// The rows of one record batch, column by column, in plain vectors that become Arrow
/// arrays without copying: no per-row hashing or string building.
struct Columns {
    seq: Vec<u64>,
    cpu: Vec<u32>,
    /// `R` or `W`, one byte a row.
    access: Vec<u8>,
    guest_pc: Vec<u64>,
    phys_addr: Vec<u64>,
    phys_addr_valid: Vec<bool>,
    virt_addr: Vec<u64>,
    offset: Vec<u64>,
    size: Vec<u8>,
    value: Vec<u64>,
    /// Dictionary key per row (`None`: no device).
    device: Vec<Option<u16>>,
    /// The batch's dictionary: device names in key order.
    device_names: Vec<Arc<str>>,
    /// `DeviceId.0` → key in this batch (`u16::MAX`: not in it yet).
    device_key: Vec<u16>,
    /// Index into `KINDS` per row (`None`: no device).
    device_kind: Vec<Option<u8>>,
    instr_count: Vec<u64>,
    instr_count_valid: Vec<bool>,
}

/// The dictionary of the `device_kind` column: every kind, in a fixed order.
const KINDS: [DeviceKind; 5] = [
    DeviceKind::Device,
    DeviceKind::Unimplemented,
    DeviceKind::Unassigned,
    DeviceKind::Ram,
    DeviceKind::Rom,
];

fn kind_key(kind: DeviceKind) -> u8 {
    KINDS.iter().position(|&k| k == kind).unwrap_or(0) as u8
}

impl Columns {
    fn new() -> Columns {
        Columns {
            seq: Vec::with_capacity(BATCH_ROWS),
            cpu: Vec::with_capacity(BATCH_ROWS),
            access: Vec::with_capacity(BATCH_ROWS),
            guest_pc: Vec::with_capacity(BATCH_ROWS),
            phys_addr: Vec::with_capacity(BATCH_ROWS),
            phys_addr_valid: Vec::with_capacity(BATCH_ROWS),
            virt_addr: Vec::with_capacity(BATCH_ROWS),
            offset: Vec::with_capacity(BATCH_ROWS),
            size: Vec::with_capacity(BATCH_ROWS),
            value: Vec::with_capacity(BATCH_ROWS),
            device: Vec::with_capacity(BATCH_ROWS),
            device_names: Vec::new(),
            device_key: Vec::new(),
            device_kind: Vec::with_capacity(BATCH_ROWS),
            instr_count: Vec::with_capacity(BATCH_ROWS),
            instr_count_valid: Vec::with_capacity(BATCH_ROWS),
        }
    }

    fn rows(&self) -> usize {
        self.seq.len()
    }

    /// The dictionary key of `id` in this batch, adding `device`'s name; `None` when
    /// the batch's dictionary is full.
    fn device_key(&mut self, id: DeviceId, device: &Device) -> Option<u16> {
        let index = id.0 as usize;
        if index >= self.device_key.len() {
            self.device_key.resize(index + 1, u16::MAX);
        }
        if self.device_key[index] == u16::MAX {
            let key = u16::try_from(self.device_names.len())
                .ok()
                .filter(|&key| key < u16::MAX)?;
            self.device_names.push(device.name.clone());
            self.device_key[index] = key;
        }
        Some(self.device_key[index])
    }

    /// Appends one row; fails only when the batch holds more distinct devices than its
    /// dictionary keys can count.
    fn push(
        &mut self,
        event: &MmioEvent,
        device: Option<&Device>,
        kind: Option<DeviceKind>,
    ) -> bool {
        let key = match device {
            Some(device) => match self.device_key(event.device, device) {
                Some(key) => Some(key),
                None => return false,
            },
            None => None,
        };
        self.device.push(key);
        self.device_kind.push(kind.map(kind_key));
        self.seq.push(event.seq);
        self.cpu.push(event.cpu);
        self.access.push(event.access.as_str().as_bytes()[0]);
        self.guest_pc.push(event.guest_pc);
        self.phys_addr.push(event.phys_addr.unwrap_or(0));
        self.phys_addr_valid.push(event.phys_addr.is_some());
        self.virt_addr.push(event.virt_addr);
        self.offset.push(event.offset);
        self.size.push(event.size);
        self.value.push(event.value);
        self.instr_count.push(event.instr_count.unwrap_or(0));
        self.instr_count_valid.push(event.instr_count.is_some());
        true
    }

    /// The rows as a record batch; the columns start empty again.
    fn finish(&mut self) -> Result<RecordBatch, arrow_schema::ArrowError> {
        fn take<T>(column: &mut Vec<T>) -> Vec<T> {
            std::mem::replace(column, Vec::with_capacity(BATCH_ROWS))
        }
        fn nullable(values: Vec<u64>, valid: Vec<bool>) -> UInt64Array {
            let nulls = (!valid.iter().all(|&v| v)).then(|| NullBuffer::from(valid));
            UInt64Array::new(ScalarBuffer::from(values), nulls)
        }
        let rows = self.rows();
        // One byte a row: offsets 0, 1, 2, ...
        let offsets = OffsetBuffer::new(ScalarBuffer::from((0..=rows as i32).collect::<Vec<_>>()));
        let access = StringArray::try_new(offsets, Buffer::from_vec(take(&mut self.access)), None)?;
        let device = DictionaryArray::<UInt16Type>::try_new(
            take(&mut self.device).into_iter().collect::<UInt16Array>(),
            Arc::new(StringArray::from_iter_values(
                self.device_names.iter().map(|name| &**name),
            )),
        )?;
        self.device_names.clear();
        self.device_key.clear();
        let device_kind = DictionaryArray::<UInt8Type>::try_new(
            take(&mut self.device_kind)
                .into_iter()
                .collect::<UInt8Array>(),
            Arc::new(StringArray::from_iter_values(
                KINDS.iter().map(|k| k.as_str()),
            )),
        )?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(take(&mut self.seq))),
            Arc::new(UInt32Array::from(take(&mut self.cpu))),
            Arc::new(access),
            Arc::new(UInt64Array::from(take(&mut self.guest_pc))),
            Arc::new(nullable(
                take(&mut self.phys_addr),
                take(&mut self.phys_addr_valid),
            )),
            Arc::new(UInt64Array::from(take(&mut self.virt_addr))),
            Arc::new(UInt64Array::from(take(&mut self.offset))),
            Arc::new(UInt8Array::from(take(&mut self.size))),
            Arc::new(UInt64Array::from(take(&mut self.value))),
            Arc::new(device),
            Arc::new(device_kind),
            Arc::new(nullable(
                take(&mut self.instr_count),
                take(&mut self.instr_count_valid),
            )),
        ];
        RecordBatch::try_new(schema(), columns)
    }
}

pub(crate) struct ParquetWriter {
    file: PartialFile,
    writer: Option<ArrowWriter<File>>,
    columns: Columns,
    devices: DeviceCache,
    info: TraceInfo,
    row_group_log: File,
    row_group_log_path: PathBuf,
    row_groups_logged: usize,
    row_group_started: Instant,
}

/// `FILE.partial.rowgroups`: the metadata of each completed row group, for recovery.
fn row_group_log_path(partial: &Path) -> PathBuf {
    let mut name = partial.as_os_str().to_owned();
    name.push(".rowgroups");
    PathBuf::from(name)
}

impl ParquetWriter {
    pub fn create(path: &Path, info: TraceInfo) -> Result<Self, ExportError> {
        let mut file = PartialFile::create(path)?;
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
        let writer = ArrowWriter::try_new(handle, schema(), Some(props))
            .map_err(|e| ExportError::parquet(path, "cannot start the Parquet writer", e))?;
        let row_group_log_path = row_group_log_path(file.partial());
        let row_group_log = File::create(&row_group_log_path).map_err(|e| {
            ExportError::io(&row_group_log_path, "cannot create the row-group log", e)
        })?;
        Ok(ParquetWriter {
            file,
            writer: Some(writer),
            columns: Columns::new(),
            devices: DeviceCache::default(),
            info,
            row_group_log,
            row_group_log_path,
            row_groups_logged: 0,
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
            let batch = self.columns.finish().map_err(|e| {
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

    /// Appends the metadata of newly completed row groups to the row-group log, each
    /// as `[u32 little-endian length][Parquet footer of a file with just that group]`.
    fn log_row_groups(&mut self) -> Result<(), SinkError> {
        let Some(writer) = self.writer.as_ref() else {
            return Ok(());
        };
        let flushed = writer.flushed_row_groups();
        if flushed.len() == self.row_groups_logged {
            return Ok(());
        }
        let mut record = Vec::new();
        for row_group in &flushed[self.row_groups_logged..] {
            let footer = single_row_group_footer(row_group, &self.info)
                .map_err(|e| self.error("cannot encode row-group metadata", e))?;
            record.extend_from_slice(&(footer.len() as u32).to_le_bytes());
            record.extend_from_slice(&footer);
        }
        self.row_groups_logged = flushed.len();
        // The row groups' bytes must reach the file before the log names them.
        if let Some(writer) = self.writer.as_mut() {
            writer.sync().map_err(|e| {
                SinkError::new(ExportError::io(self.file.partial(), "write failed", e))
            })?;
        }
        self.row_group_started = Instant::now();
        self.row_group_log.write_all(&record).map_err(|e| {
            SinkError::new(ExportError::io(&self.row_group_log_path, "write failed", e))
        })
    }
}

fn single_row_group_footer(
    row_group: &RowGroupMetaData,
    info: &TraceInfo,
) -> Result<Vec<u8>, parquet::errors::ParquetError> {
    let file_metadata = FileMetaData::new(
        1,
        row_group.num_rows(),
        None,
        Some(info_metadata(info)),
        row_group.schema_descr_ptr(),
        None,
    );
    let metadata = ParquetMetaData::new(file_metadata, vec![row_group.clone()]);
    let mut footer = Vec::new();
    ParquetMetaDataWriter::new(&mut footer, &metadata).finish()?;
    // Keep the Thrift bytes only: drop the 4-byte length and the `PAR1` magic.
    footer.truncate(footer.len().saturating_sub(8));
    Ok(footer)
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
        let devices: Vec<DeviceRecord> = table
            .snapshot()
            .into_iter()
            .map(|d| DeviceRecord {
                name: d.name.to_string(),
                base: d.base,
                size: d.size,
                kind: d.kind,
            })
            .collect();
        let devices = serde_json::to_string(&devices).unwrap_or_else(|_| "[]".into());
        writer.append_key_value_metadata(KeyValue::new(format!("{KEY_PREFIX}devices"), devices));
        writer
            .close()
            .map_err(|e| self.error("cannot write the Parquet footer", e))?;
        self.file.commit().map_err(SinkError::new)?;
        // The finished file has its footer; the recovery log is of no more use.
        let _ = std::fs::remove_file(&self.row_group_log_path);
        Ok(())
    }
}

/// Events from a Parquet trace, a record batch at a time.
pub(crate) struct ParquetReader {
    path: PathBuf,
    batches: ParquetRecordBatchReader,
    current: Option<BatchView>,
    row: usize,
    decoder_panicked: bool,
    pub info: Option<TraceInfo>,
}

impl ParquetReader {
    pub fn open(path: &Path, table: &DeviceTable) -> Result<Self, ExportError> {
        let file = File::open(path).map_err(|e| ExportError::io(path, "cannot open", e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
            ExportError::parquet(
                path,
                "not a complete Parquet file (a run killed before it finished leaves FILE.partial: salvage it with `mmio-trace recover FILE.partial`)",
                e,
            )
        })?;
        let pairs = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .cloned()
            .unwrap_or_default();
        Self::from_builder(path, builder, &pairs, table)
    }

    fn from_builder(
        path: &Path,
        builder: ParquetRecordBatchReaderBuilder<File>,
        pairs: &[KeyValue],
        table: &DeviceTable,
    ) -> Result<Self, ExportError> {
        check_schema(path, builder.schema())?;
        // Intern the stored device table first so that devices keep their sizes.
        if let Some(devices) = pairs
            .iter()
            .find(|kv| kv.key == format!("{KEY_PREFIX}devices"))
            .and_then(|kv| kv.value.as_deref())
        {
            let records: Vec<DeviceRecord> =
                serde_json::from_str(devices).map_err(|e| ExportError::BadParquet {
                    path: path.to_path_buf(),
                    message: format!("bad {KEY_PREFIX}devices metadata: {e}"),
                })?;
            for record in records {
                table
                    .intern(&record.name, record.base, record.size, record.kind)
                    .map_err(|full| ExportError::BadParquet {
                        path: path.to_path_buf(),
                        message: full.to_string(),
                    })?;
            }
        }
        let batches = builder
            .with_batch_size(8192)
            .build()
            .map_err(|e| ExportError::parquet(path, "cannot read", e))?;
        Ok(ParquetReader {
            path: path.to_path_buf(),
            batches,
            current: None,
            row: 0,
            decoder_panicked: false,
            info: info_from_metadata(pairs),
        })
    }

    pub fn next_event(&mut self, table: &DeviceTable) -> Option<Result<MmioEvent, ExportError>> {
        loop {
            if let Some(batch) = &self.current {
                if self.row < batch.rows {
                    let row = self.row;
                    self.row += 1;
                    return Some(batch.event(&self.path, row, table));
                }
            }
            if self.decoder_panicked {
                return None;
            }
            // The parquet crate panics on some malformed pages ("Decoder for dict
            // should have been set", found by fuzz/read_parquet): a corrupt file is an
            // error, not a crash. The reader is not used again after that.
            let next =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.batches.next()));
            let next = match next {
                Ok(next) => next?,
                Err(panic) => {
                    self.decoder_panicked = true;
                    let reason = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    return Some(Err(ExportError::BadParquet {
                        path: self.path.clone(),
                        message: format!("corrupt data, the Parquet decoder gave up: {reason}"),
                    }));
                }
            };
            match next {
                Ok(batch) => {
                    match BatchView::new(&self.path, &batch) {
                        Ok(view) => self.current = Some(view),
                        Err(e) => return Some(Err(e)),
                    }
                    self.row = 0;
                }
                Err(e) => {
                    return Some(Err(ExportError::BadParquet {
                        path: self.path.clone(),
                        message: format!("cannot decode a row group: {e}"),
                    }))
                }
            }
        }
    }
}

fn check_schema(path: &Path, found: &Schema) -> Result<(), ExportError> {
    for field in schema().fields() {
        let Ok(column) = found.field_with_name(field.name()) else {
            return Err(ExportError::BadParquet {
                path: path.to_path_buf(),
                message: format!("no column {:?}: not an mmio-trace file", field.name()),
            });
        };
        let compatible = match (field.data_type(), column.data_type()) {
            (DataType::Dictionary(..), DataType::Dictionary(_, values)) => {
                **values == DataType::Utf8
            }
            (DataType::Dictionary(..), DataType::Utf8) => true,
            (wanted, got) => wanted == got,
        };
        if !compatible {
            return Err(ExportError::BadParquet {
                path: path.to_path_buf(),
                message: format!(
                    "column {:?} has type {}, expected {}",
                    field.name(),
                    column.data_type(),
                    field.data_type()
                ),
            });
        }
    }
    Ok(())
}

/// A string column, plain or dictionary-encoded, decoded once per batch.
struct StringColumn {
    values: arrow_array::StringArray,
    /// Row -> index into `values`; `None` for a plain column.
    keys: Option<Vec<usize>>,
    nulls: Option<arrow_array::BooleanArray>,
}

impl StringColumn {
    fn new(array: &dyn Array) -> Option<StringColumn> {
        let nulls = array
            .logical_nulls()
            .map(|n| arrow_array::BooleanArray::from(n.inner().clone()));
        if let Some(strings) = array.as_string_opt::<i32>() {
            return Some(StringColumn {
                values: strings.clone(),
                keys: None,
                nulls,
            });
        }
        let dictionary = array.as_any_dictionary_opt()?;
        Some(StringColumn {
            values: dictionary.values().as_string_opt::<i32>()?.clone(),
            keys: Some(dictionary.normalized_keys()),
            nulls,
        })
    }

    fn get(&self, row: usize) -> Option<&str> {
        // `nulls` holds validity: true = present.
        if self.nulls.as_ref().is_some_and(|valid| !valid.value(row)) {
            return None;
        }
        let index = match &self.keys {
            Some(keys) => *keys.get(row)?,
            None => row,
        };
        (index < self.values.len()).then(|| self.values.value(index))
    }
}

/// A record batch with its columns checked and downcast once.
struct BatchView {
    seq: arrow_array::UInt64Array,
    cpu: arrow_array::UInt32Array,
    access: StringColumn,
    guest_pc: arrow_array::UInt64Array,
    phys_addr: arrow_array::UInt64Array,
    virt_addr: arrow_array::UInt64Array,
    offset: arrow_array::UInt64Array,
    size: arrow_array::UInt8Array,
    value: arrow_array::UInt64Array,
    device: StringColumn,
    device_kind: StringColumn,
    instr_count: arrow_array::UInt64Array,
    rows: usize,
}

impl BatchView {
    fn new(path: &Path, batch: &RecordBatch) -> Result<BatchView, ExportError> {
        let bad = |name: &str| ExportError::BadParquet {
            path: path.to_path_buf(),
            message: format!("column {name:?} is missing or of the wrong type"),
        };
        let column = |name: &str| batch.column_by_name(name).ok_or_else(|| bad(name));
        let u64s = |name: &str| -> Result<arrow_array::UInt64Array, ExportError> {
            column(name)?
                .as_primitive_opt::<UInt64Type>()
                .cloned()
                .ok_or_else(|| bad(name))
        };
        let strings =
            |name: &str| StringColumn::new(column(name)?.as_ref()).ok_or_else(|| bad(name));
        Ok(BatchView {
            seq: u64s("seq")?,
            cpu: column("cpu")?
                .as_primitive_opt::<UInt32Type>()
                .cloned()
                .ok_or_else(|| bad("cpu"))?,
            access: strings("type")?,
            guest_pc: u64s("guest_pc")?,
            phys_addr: u64s("phys_addr")?,
            virt_addr: u64s("virt_addr")?,
            offset: u64s("offset")?,
            size: column("size")?
                .as_primitive_opt::<UInt8Type>()
                .cloned()
                .ok_or_else(|| bad("size"))?,
            value: u64s("value")?,
            device: strings("device")?,
            device_kind: strings("device_kind")?,
            instr_count: u64s("instr_count")?,
            rows: batch.num_rows(),
        })
    }

    fn event(
        &self,
        path: &Path,
        row: usize,
        table: &DeviceTable,
    ) -> Result<MmioEvent, ExportError> {
        let bad = |message: String| ExportError::BadParquet {
            path: path.to_path_buf(),
            message,
        };
        let optional =
            |array: &arrow_array::UInt64Array| (!array.is_null(row)).then(|| array.value(row));
        let required = |name: &str, array: &arrow_array::UInt64Array| {
            optional(array).ok_or_else(|| bad(format!("null in required column {name:?}")))
        };
        let access_text = self.access.get(row).unwrap_or_default();
        let access = access_text
            .parse::<Access>()
            .map_err(|_| bad(format!("type {access_text:?} is not R or W")))?;
        let size = self.size.value(row);
        if !MmioEvent::is_valid_size(size) {
            return Err(bad(format!("size {size} is not 1, 2, 4 or 8")));
        }
        let kind = match self.device_kind.get(row) {
            Some(text) => Some(
                text.parse::<DeviceKind>()
                    .map_err(|_| bad(format!("unknown device_kind {text:?}")))?,
            ),
            None => None,
        };
        let phys_addr = optional(&self.phys_addr);
        let virt_addr = required("virt_addr", &self.virt_addr)?;
        let offset = required("offset", &self.offset)?;
        Ok(MmioEvent {
            seq: required("seq", &self.seq)?,
            cpu: self.cpu.value(row),
            access,
            guest_pc: required("guest_pc", &self.guest_pc)?,
            phys_addr,
            virt_addr,
            offset,
            size,
            value: required("value", &self.value)?,
            device: intern_read_device(
                table,
                self.device.get(row),
                kind,
                phys_addr.unwrap_or(virt_addr),
                offset,
            )
            .map_err(|full| bad(full.to_string()))?,
            instr_count: optional(&self.instr_count),
        })
    }
}

/// What [`recover_parquet`] salvaged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoverySummary {
    pub row_groups: usize,
    pub events: u64,
    pub output: PathBuf,
}

/// Rebuilds a valid Parquet file at `output` from `partial` (a `FILE.partial` left by a
/// killed run): every row group completed before the kill, as listed in
/// `FILE.partial.rowgroups`. Events of the last, unfinished row group are lost.
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
    let log_path = row_group_log_path(partial);
    let mut log = Vec::new();
    File::open(&log_path)
        .and_then(|mut f| f.read_to_end(&mut log))
        .map_err(|e| {
            ExportError::io(
                &log_path,
                "cannot read the row-group log written beside the partial trace",
                e,
            )
        })?;
    let mut row_groups = Vec::new();
    let mut file_metadata = None;
    let mut rest = log.as_slice();
    while rest.len() >= 4 {
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(footer) = rest.get(4..4 + len) else {
            break; // Cut short by the kill.
        };
        rest = &rest[4 + len..];
        let Ok(metadata) = ParquetMetaDataReader::decode_metadata(footer) else {
            break;
        };
        let complete = metadata.row_groups().iter().all(|group| {
            group.columns().iter().all(|column| {
                let start = column
                    .dictionary_page_offset()
                    .unwrap_or(column.data_page_offset());
                u64::try_from(start)
                    .ok()
                    .zip(u64::try_from(column.compressed_size()).ok())
                    .is_some_and(|(start, len)| start.saturating_add(len) <= length)
            })
        });
        if !complete {
            break;
        }
        file_metadata.get_or_insert_with(|| metadata.file_metadata().clone());
        row_groups.extend(metadata.row_groups().iter().cloned());
    }
    let Some(file_metadata) = file_metadata else {
        return Err(ExportError::BadParquet {
            path: partial.to_path_buf(),
            message: "no complete row group to salvage (the run was killed before its first row group was written)".into(),
        });
    };
    let rows = row_groups.iter().map(RowGroupMetaData::num_rows).sum();
    let file_metadata = FileMetaData::new(
        file_metadata.version(),
        rows,
        file_metadata.created_by().map(str::to_string),
        file_metadata.key_value_metadata().cloned(),
        file_metadata.schema_descr_ptr(),
        None,
    );
    let metadata = Arc::new(ParquetMetaData::new(file_metadata, row_groups));
    copy_events(partial, Some(metadata), output)
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
            let options = ArrowReaderOptions::new().with_schema(schema());
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
    let mut writer = ParquetWriter::create(&staging, info)?;
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

/// Where `mmio-trace recover FILE.partial` writes by default: `FILE`.
pub fn default_recovery_output(partial: &Path) -> PathBuf {
    let text = partial.as_os_str().to_string_lossy();
    match text.strip_suffix(".partial") {
        Some(target) => PathBuf::from(target),
        None => PathBuf::from(format!("{text}.recovered.parquet")),
    }
}
