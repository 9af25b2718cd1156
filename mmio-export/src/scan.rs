//! Column scans for analysis: a trace set read as batches of columns rather than
//! events, only the columns asked for, Parquet row groups decoded on several threads.
//! What `mmio-trace summary` and `registers` aggregate over.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, RecordBatch, UInt64Array};
use mmio_core::{Access, DeviceId, DeviceKind, DeviceTable, Space};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;

use crate::dataset::trace_files;
use crate::device_cache::intern_read_device;
use crate::parquet_format::{check_footer, check_schema, intern_stored_devices};
use crate::reader::open_trace_into;
use crate::{ExportError, Format};

/// Rows per batch handed to the fold.
const BATCH_ROWS: usize = 64 * 1024;

/// The optional columns a scan fills; the others stay empty. `seq`, `access`, `space`,
/// `guest_pc`, `address`, `offset` and `device` are always filled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Wanted {
    /// Fill [`EventColumns::value`].
    pub value: bool,
}

/// A batch of events, column by column: row `i` of every filled column is one event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventColumns {
    /// `seq` of each event.
    pub seq: Vec<u64>,
    /// Read, write or fetch.
    pub access: Vec<Access>,
    /// Memory or x86 port I/O.
    pub space: Vec<Space>,
    /// `guest_pc`.
    pub guest_pc: Vec<u64>,
    /// `phys_addr`, or `virt_addr` where the physical address is unknown.
    pub address: Vec<u64>,
    /// `offset` inside the device's region.
    pub offset: Vec<u64>,
    /// The device, in the scan's device table.
    pub device: Vec<DeviceId>,
    /// `value` (only when [`Wanted::value`]).
    pub value: Vec<u64>,
}

impl EventColumns {
    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    fn clear(&mut self) {
        self.seq.clear();
        self.access.clear();
        self.space.clear();
        self.guest_pc.clear();
        self.address.clear();
        self.offset.clear();
        self.device.clear();
        self.value.clear();
    }
}

/// One unit of work: a Parquet row group, or a whole file of a text format.
enum Work {
    RowGroup {
        path: PathBuf,
        metadata: ArrowReaderMetadata,
        row_group: usize,
    },
    TextFile(PathBuf),
}

/// Reads the trace files of `paths` (files and directories) in batches of the
/// `wanted` columns and folds each batch into an accumulator: one accumulator per
/// thread (at most `threads`), started with `new`, all returned for the caller to
/// merge. Batches reach the accumulators in no particular order; devices are interned
/// into `devices`. The first error stops the scan.
pub fn scan<T: Send>(
    paths: &[PathBuf],
    wanted: Wanted,
    threads: usize,
    devices: &Arc<DeviceTable>,
    new: impl Fn() -> T + Sync,
    fold: impl Fn(&mut T, &EventColumns) + Sync,
) -> Result<Vec<T>, ExportError> {
    let mut work = Vec::new();
    for path in trace_files(paths)? {
        if Format::from_path(&path)? != Format::Parquet {
            work.push(Work::TextFile(path));
            continue;
        }
        let file = File::open(&path).map_err(|e| ExportError::io(&path, "cannot open", e))?;
        check_footer(&path, &file)?;
        let metadata = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
            .map_err(|e| ExportError::parquet(&path, "cannot read the Parquet footer", e))?;
        check_schema(&path, metadata.schema())?;
        let pairs = metadata
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .cloned()
            .unwrap_or_default();
        intern_stored_devices(&path, &pairs, devices)?;
        for row_group in 0..metadata.metadata().num_row_groups() {
            work.push(Work::RowGroup {
                path: path.clone(),
                metadata: metadata.clone(),
                row_group,
            });
        }
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<ExportError>> = Mutex::new(None);
    let worker = || {
        let mut accumulator = new();
        let mut columns = EventColumns::default();
        while !failed.load(Ordering::Relaxed) {
            let Some(item) = work.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let result = match item {
                Work::RowGroup {
                    path,
                    metadata,
                    row_group,
                } => scan_row_group(
                    path,
                    metadata,
                    *row_group,
                    wanted,
                    devices,
                    &mut |c| fold(&mut accumulator, c),
                    &mut columns,
                ),
                Work::TextFile(path) => scan_text(
                    path,
                    wanted,
                    devices,
                    &mut |c| fold(&mut accumulator, c),
                    &mut columns,
                ),
            };
            if let Err(error) = result {
                failed.store(true, Ordering::Relaxed);
                let mut first = first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert(error);
            }
        }
        accumulator
    };
    let threads = threads.clamp(1, work.len().max(1));
    let accumulators = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..threads).map(|_| scope.spawn(worker)).collect();
        let mut accumulators = vec![worker()];
        for handle in handles {
            match handle.join() {
                Ok(accumulator) => accumulators.push(accumulator),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        accumulators
    });
    match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(error) => Err(error),
        None => Ok(accumulators),
    }
}

/// The names of the Parquet columns a scan reads.
fn column_names(wanted: Wanted) -> Vec<&'static str> {
    let mut names = vec![
        "seq",
        "type",
        // Absent before format version 3 (every event a memory access).
        "space",
        "guest_pc",
        "phys_addr",
        "virt_addr",
        "offset",
        "device",
        "device_kind",
    ];
    if wanted.value {
        names.push("value");
    }
    names
}

fn scan_row_group(
    path: &Path,
    metadata: &ArrowReaderMetadata,
    row_group: usize,
    wanted: Wanted,
    devices: &DeviceTable,
    fold: &mut dyn FnMut(&EventColumns),
    columns: &mut EventColumns,
) -> Result<(), ExportError> {
    let file = File::open(path).map_err(|e| ExportError::io(path, "cannot open", e))?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata.clone());
    let mask = ProjectionMask::columns(builder.parquet_schema(), column_names(wanted));
    let mut reader = builder
        .with_projection(mask)
        .with_row_groups(vec![row_group])
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| ExportError::parquet(path, "cannot read", e))?;
    loop {
        // The parquet crate panics on some corrupt pages: an error, as in the reader.
        // Only the decoder is guarded; a panic of ours stays a panic.
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader.next()))
            .map_err(|_| ExportError::BadParquet {
                path: path.to_path_buf(),
                message: "corrupt data, the Parquet decoder gave up".into(),
            })?;
        let Some(batch) = next else {
            return Ok(());
        };
        let batch = batch.map_err(|e| ExportError::BadParquet {
            path: path.to_path_buf(),
            message: format!("cannot decode a row group: {e}"),
        })?;
        columns.clear();
        fill(path, &batch, wanted, devices, columns)?;
        fold(columns);
    }
}

fn fill(
    path: &Path,
    batch: &RecordBatch,
    wanted: Wanted,
    devices: &DeviceTable,
    columns: &mut EventColumns,
) -> Result<(), ExportError> {
    let bad = |name: &str| ExportError::BadParquet {
        path: path.to_path_buf(),
        message: format!("column {name:?} is missing or of the wrong type"),
    };
    let u64s = |name: &str| -> Result<&UInt64Array, ExportError> {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_primitive_opt::<UInt64Type>())
            .ok_or_else(|| bad(name))
    };
    let seq = u64s("seq")?;
    let guest_pc = u64s("guest_pc")?;
    let phys_addr = u64s("phys_addr")?;
    let virt_addr = u64s("virt_addr")?;
    let offset = u64s("offset")?;
    for (name, column) in [
        ("seq", seq),
        ("guest_pc", guest_pc),
        ("virt_addr", virt_addr),
        ("offset", offset),
    ] {
        if column.null_count() > 0 {
            return Err(ExportError::BadParquet {
                path: path.to_path_buf(),
                message: format!("null in required column {name:?}"),
            });
        }
    }
    columns.seq.extend_from_slice(seq.values());
    columns.guest_pc.extend_from_slice(guest_pc.values());
    columns.offset.extend_from_slice(offset.values());
    match phys_addr.nulls() {
        None => columns.address.extend_from_slice(phys_addr.values()),
        Some(nulls) => columns.address.extend((0..batch.num_rows()).map(|row| {
            if nulls.is_valid(row) {
                phys_addr.value(row)
            } else {
                virt_addr.value(row)
            }
        })),
    }
    if wanted.value {
        columns.value.extend_from_slice(u64s("value")?.values());
    }
    let access = batch.column_by_name("type").ok_or_else(|| bad("type"))?;
    let access_text = StringKeys::new(access.as_ref()).ok_or_else(|| bad("type"))?;
    for row in 0..batch.num_rows() {
        columns.access.push(match access_text.get(row) {
            Some("R") => Access::Read,
            Some("W") => Access::Write,
            Some("X") => Access::Fetch,
            other => {
                return Err(ExportError::BadParquet {
                    path: path.to_path_buf(),
                    message: format!("type {:?} is not R, W or X", other.unwrap_or_default()),
                })
            }
        });
    }
    match batch.column_by_name("space") {
        None => columns
            .space
            .extend(std::iter::repeat_n(Space::Memory, batch.num_rows())),
        Some(space) => {
            let space_text = StringKeys::new(space.as_ref()).ok_or_else(|| bad("space"))?;
            for row in 0..batch.num_rows() {
                columns.space.push(match space_text.get(row) {
                    Some("memory") => Space::Memory,
                    Some("io") => Space::Io,
                    other => {
                        return Err(ExportError::BadParquet {
                            path: path.to_path_buf(),
                            message: format!(
                                "space {:?} is not memory or io",
                                other.unwrap_or_default()
                            ),
                        })
                    }
                });
            }
        }
    }
    let device = StringKeys::new(
        batch
            .column_by_name("device")
            .ok_or_else(|| bad("device"))?
            .as_ref(),
    )
    .ok_or_else(|| bad("device"))?;
    let kind = StringKeys::new(
        batch
            .column_by_name("device_kind")
            .ok_or_else(|| bad("device_kind"))?
            .as_ref(),
    )
    .ok_or_else(|| bad("device_kind"))?;
    // A device is its name and region base (address - offset). Per dictionary key of
    // this batch (a batch has one dictionary), the last (base, kind, id) met: rows
    // mostly repeat it. A plain column is looked up row by row.
    let mut last: Vec<Option<(u64, Option<usize>, DeviceId)>> = vec![None; device.dictionary_len()];
    let table_full = |full: mmio_core::TableFull| ExportError::BadParquet {
        path: path.to_path_buf(),
        message: full.to_string(),
    };
    let first_row = columns.device.len();
    for row in 0..batch.num_rows() {
        let address = columns.address[first_row + row];
        let base = address.wrapping_sub(columns.offset[first_row + row]);
        let kind_key = kind.key(row);
        let id = match device.key(row) {
            Some(key) => match last.get(key).copied().flatten() {
                Some((last_base, last_kind, id)) if last_base == base && last_kind == kind_key => {
                    id
                }
                _ => {
                    let kind = parse_kind(path, kind.text(kind_key))?;
                    let offset = columns.offset[first_row + row];
                    let id =
                        intern_read_device(devices, device.text(Some(key)), kind, address, offset)
                            .map_err(table_full)?;
                    if let Some(slot) = last.get_mut(key) {
                        *slot = Some((base, kind_key, id));
                    }
                    id
                }
            },
            None => match parse_kind(path, kind.text(kind_key))? {
                Some(DeviceKind::Unassigned) => DeviceId::UNASSIGNED,
                _ => DeviceId::UNKNOWN,
            },
        };
        columns.device.push(id);
    }
    Ok(())
}

fn parse_kind(path: &Path, text: Option<&str>) -> Result<Option<DeviceKind>, ExportError> {
    text.map(|text| {
        text.parse::<DeviceKind>()
            .map_err(|_| ExportError::BadParquet {
                path: path.to_path_buf(),
                message: format!("unknown device_kind {text:?}"),
            })
    })
    .transpose()
}

/// A string column, dictionary-encoded (any key type) or plain, as a key per row.
struct StringKeys<'a> {
    values: &'a arrow_array::StringArray,
    /// Per row, the index into `values` of a dictionary column; `None` for a plain one.
    keys: Option<Vec<usize>>,
    /// Validity of the rows (`None`: all present).
    nulls: Option<arrow_buffer::NullBuffer>,
}

impl<'a> StringKeys<'a> {
    fn new(array: &'a dyn Array) -> Option<StringKeys<'a>> {
        let nulls = array.logical_nulls();
        if let Some(values) = array.as_string_opt::<i32>() {
            return Some(StringKeys {
                values,
                keys: None,
                nulls,
            });
        }
        let dictionary = array.as_any_dictionary_opt()?;
        Some(StringKeys {
            values: dictionary.values().as_string_opt::<i32>()?,
            keys: Some(dictionary.normalized_keys()),
            nulls,
        })
    }

    /// Distinct keys there can be (0 for a plain column: no key repeats).
    fn dictionary_len(&self) -> usize {
        match self.keys {
            Some(_) => self.values.len(),
            None => 0,
        }
    }

    /// The key of `row`: its dictionary index, or for a plain column the row itself.
    fn key(&self, row: usize) -> Option<usize> {
        if self.nulls.as_ref().is_some_and(|nulls| nulls.is_null(row)) {
            return None;
        }
        let key = match &self.keys {
            Some(keys) => *keys.get(row)?,
            None => row,
        };
        (key < self.values.len()).then_some(key)
    }

    fn text(&self, key: Option<usize>) -> Option<&'a str> {
        key.map(|key| self.values.value(key))
    }

    fn get(&self, row: usize) -> Option<&'a str> {
        self.text(self.key(row))
    }
}

fn scan_text(
    path: &Path,
    wanted: Wanted,
    devices: &Arc<DeviceTable>,
    fold: &mut dyn FnMut(&EventColumns),
    columns: &mut EventColumns,
) -> Result<(), ExportError> {
    // The text formats name devices per row: read them as events.
    let mut reader = open_trace_into(path, Arc::clone(devices))?;
    columns.clear();
    for event in reader.by_ref() {
        let event = event?;
        columns.seq.push(event.seq);
        columns.access.push(event.access);
        columns.space.push(event.space);
        columns.guest_pc.push(event.guest_pc);
        columns
            .address
            .push(event.phys_addr.unwrap_or(event.virt_addr));
        columns.offset.push(event.offset);
        columns.device.push(event.device);
        if wanted.value {
            columns.value.push(event.value);
        }
        if columns.len() == BATCH_ROWS {
            fold(columns);
            columns.clear();
        }
    }
    if !columns.is_empty() {
        fold(columns);
    }
    Ok(())
}
