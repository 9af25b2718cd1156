//! The Parquet reader: record batches decoded by the parquet crate, checked once per
//! batch and turned into events, with the crate's panics on corrupt pages contained.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::{UInt32Type, UInt64Type, UInt8Type};
use arrow_array::{Array, RecordBatch};
use bytes::Bytes;
use mmio_core::{Access, DeviceKind, DeviceTable, MmioEvent, Space};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::KeyValue;
use parquet::file::reader::{ChunkReader, Length};

use super::row_group_log::RowGroupLog;
use super::schema::{check_schema, info_from_metadata, intern_stored_devices, schema};
use crate::device_cache::intern_read_device;
use crate::{ExportError, TraceInfo};

const MAGIC: &[u8; 4] = b"PAR1";

/// Fails unless the input ends with a footer: [`ExportError::Incomplete`] for a
/// Parquet file a killed run left (`FILE.partial`, or one with a row-group log, which
/// `recover` salvages), `BadParquet` for anything else.
pub(crate) fn check_footer(path: &Path, chunks: &impl ChunkReader) -> Result<(), ExportError> {
    if has_footer(chunks) {
        return Ok(());
    }
    let left_by_a_run =
        path.to_string_lossy().ends_with(".partial") || RowGroupLog::path_for(path).exists();
    Err(if starts_like_parquet(chunks) && left_by_a_run {
        ExportError::Incomplete {
            path: path.to_path_buf(),
        }
    } else if starts_like_parquet(chunks) {
        ExportError::BadParquet {
            path: path.to_path_buf(),
            message: "truncated or corrupt Parquet file (no footer)".into(),
        }
    } else {
        ExportError::BadParquet {
            path: path.to_path_buf(),
            message: "not a Parquet file (no PAR1 magic)".into(),
        }
    })
}

/// Whether the input ends with Parquet's closing magic, written last with the footer.
fn has_footer(chunks: &impl ChunkReader) -> bool {
    chunks.len() >= 12
        && chunks
            .get_bytes(chunks.len() - 4, 4)
            .is_ok_and(|tail| tail.as_ref() == MAGIC)
}

/// Whether the input starts with Parquet's opening magic, written first.
fn starts_like_parquet(chunks: &impl ChunkReader) -> bool {
    chunks.len() >= 4
        && chunks
            .get_bytes(0, 4)
            .is_ok_and(|head| head.as_ref() == MAGIC)
}

/// Any `Read + Seek` input as the parquet crate's [`ChunkReader`]: reads seek first,
/// under a lock, so that several readers can share the input.
pub(crate) struct SeekableChunks<R> {
    input: Arc<Mutex<R>>,
    len: u64,
}

impl<R: Read + Seek> SeekableChunks<R> {
    pub fn new(mut input: R) -> std::io::Result<Self> {
        let len = input.seek(SeekFrom::End(0))?;
        Ok(SeekableChunks {
            input: Arc::new(Mutex::new(input)),
            len,
        })
    }
}

impl<R> Length for SeekableChunks<R> {
    fn len(&self) -> u64 {
        self.len
    }
}

impl<R: Read + Seek + Send + 'static> ChunkReader for SeekableChunks<R> {
    type T = SeekableRead<R>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(SeekableRead {
            input: Arc::clone(&self.input),
            position: start,
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let mut bytes = vec![0; length];
        self.get_read(start)?.read_exact(&mut bytes)?;
        Ok(bytes.into())
    }
}

/// A reader from a position of a shared seekable input.
pub(crate) struct SeekableRead<R> {
    input: Arc<Mutex<R>>,
    position: u64,
}

impl<R: Read + Seek> Read for SeekableRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut input = self
            .input
            .lock()
            .map_err(|_| std::io::Error::other("the input was poisoned by a panic"))?;
        input.seek(SeekFrom::Start(self.position))?;
        let read = input.read(buf)?;
        self.position += read as u64;
        Ok(read)
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
    /// Opens the Parquet trace at `path`.
    pub fn open(path: &Path, table: &DeviceTable) -> Result<Self, ExportError> {
        let file = File::open(path).map_err(|e| ExportError::io(path, "cannot open", e))?;
        Self::from_chunks(path, file, table)
    }

    /// Reads a Parquet trace from `chunks` (a file, bytes in memory, any seekable
    /// input through [`SeekableChunks`]); `path` names it in errors.
    pub fn from_chunks<T: ChunkReader + 'static>(
        path: &Path,
        chunks: T,
        table: &DeviceTable,
    ) -> Result<Self, ExportError> {
        check_footer(path, &chunks)?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(chunks)
            .map_err(|e| ExportError::parquet(path, "cannot read the Parquet footer", e))?;
        let pairs = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .cloned()
            .unwrap_or_default();
        Self::from_builder(path, builder, &pairs, table)
    }

    /// The reader over `builder`, whose metadata's key-value pairs are `pairs`.
    pub fn from_builder<T: ChunkReader + 'static>(
        path: &Path,
        builder: ParquetRecordBatchReaderBuilder<T>,
        pairs: &[KeyValue],
        table: &DeviceTable,
    ) -> Result<Self, ExportError> {
        check_schema(path, builder.schema())?;
        // Intern the stored device table first so that devices keep their sizes.
        intern_stored_devices(path, pairs, table)?;
        // The recorded columns only: the optional name columns are not events'.
        let recorded_schema = schema();
        let recorded: Vec<&str> = recorded_schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|name| builder.schema().field_with_name(name).is_ok())
            .collect();
        let mask = ProjectionMask::columns(builder.parquet_schema(), recorded);
        let batches = builder
            .with_projection(mask)
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

    /// The next event; `None` at the end or after a panic of the decoder was reported.
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
    /// Absent before format version 3: every event was a memory access.
    space: Option<StringColumn>,
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
            space: match batch.column_by_name("space") {
                Some(space) => Some(StringColumn::new(space.as_ref()).ok_or_else(|| bad("space"))?),
                None => None,
            },
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
            .map_err(|_| bad(format!("type {access_text:?} is not R, W or X")))?;
        let space = match &self.space {
            Some(column) => {
                let text = column.get(row).unwrap_or_default();
                text.parse::<Space>()
                    .map_err(|_| bad(format!("space {text:?} is not memory or io")))?
            }
            None => Space::Memory,
        };
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
            space,
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
