//! The columns, their types and the key-value metadata of an mmio-trace Parquet file:
//! what the writer produces and the reader checks. `docs/FORMAT.md` documents them.

use std::path::Path;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use mmio_core::{DeviceKind, DeviceTable, Space};
use parquet::file::metadata::KeyValue;
use serde::{Deserialize, Serialize};

use crate::{ExportError, NameColumns, TraceInfo, FORMAT_VERSION};

pub(super) const KEY_PREFIX: &str = "mmio_trace.";

fn dictionary(keys: DataType) -> DataType {
    DataType::Dictionary(Box::new(keys), Box::new(DataType::Utf8))
}

/// The recorded columns.
pub(crate) fn schema() -> SchemaRef {
    schema_with(NameColumns::default())
}

/// The recorded columns, then the optional name columns of `names`.
pub(crate) fn schema_with(names: NameColumns) -> SchemaRef {
    let mut fields = vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("cpu", DataType::UInt32, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("space", dictionary(DataType::UInt8), false),
        Field::new("guest_pc", DataType::UInt64, false),
        Field::new("phys_addr", DataType::UInt64, true),
        Field::new("virt_addr", DataType::UInt64, false),
        Field::new("offset", DataType::UInt64, false),
        Field::new("size", DataType::UInt8, false),
        Field::new("value", DataType::UInt64, false),
        Field::new("device", dictionary(DataType::UInt16), true),
        Field::new("device_kind", dictionary(DataType::UInt8), true),
        Field::new("instr_count", DataType::UInt64, true),
        Field::new("run", dictionary(DataType::UInt8), false),
    ];
    if names.function {
        fields.push(Field::new("function", dictionary(DataType::UInt32), true));
    }
    if names.register {
        fields.push(Field::new("register", dictionary(DataType::UInt32), true));
    }
    Arc::new(Schema::new(fields))
}

/// The optional name columns a file has, by its Parquet schema.
pub(crate) fn name_columns_of(parquet: &parquet::schema::types::SchemaDescriptor) -> NameColumns {
    let has = |name: &str| parquet.columns().iter().any(|c| c.name() == name);
    NameColumns {
        function: has("function"),
        register: has("register"),
    }
}

/// One device of the `mmio_trace.devices` metadata key.
#[derive(Serialize, Deserialize)]
struct DeviceRecord {
    name: String,
    base: u64,
    size: u64,
    kind: DeviceKind,
}

pub(super) fn info_metadata(info: &TraceInfo) -> Vec<KeyValue> {
    [
        ("format_version", FORMAT_VERSION.to_string()),
        ("tool_version", env!("CARGO_PKG_VERSION").to_string()),
        ("emulator", info.emulator.clone()),
        ("target_arch", info.target_arch.clone()),
        ("machine", info.machine.clone()),
        ("start_time", info.start_time.clone()),
        ("word_size", info.word_size.to_string()),
        ("run", info.run.clone()),
    ]
    .into_iter()
    .map(|(key, value)| KeyValue::new(format!("{KEY_PREFIX}{key}"), value))
    .collect()
}

pub(super) fn info_from_metadata(pairs: &[KeyValue]) -> Option<TraceInfo> {
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
        run: get("run").unwrap_or_default(),
    })
}

/// The dictionary of the `device_kind` column: every kind, in a fixed order.
pub(super) const KINDS: [DeviceKind; 5] = [
    DeviceKind::Device,
    DeviceKind::Unimplemented,
    DeviceKind::Unassigned,
    DeviceKind::Ram,
    DeviceKind::Rom,
];

/// The dictionary of the `space` column, in a fixed order.
pub(super) const SPACES: [Space; 2] = [Space::Memory, Space::Io];

pub(super) fn space_key(space: Space) -> u8 {
    SPACES.iter().position(|&s| s == space).unwrap_or(0) as u8
}

pub(super) fn kind_key(kind: DeviceKind) -> u8 {
    KINDS.iter().position(|&k| k == kind).unwrap_or(0) as u8
}
/// Fails unless `found` has every column of [`schema`] with a compatible type.
pub(crate) fn check_schema(path: &Path, found: &Schema) -> Result<(), ExportError> {
    // `run` came with format version 2, `space` with 3; older files have every other
    // column.
    for field in schema()
        .fields()
        .iter()
        .filter(|f| !matches!(f.name().as_str(), "run" | "space"))
    {
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

/// The `mmio_trace.devices` key: the whole device table as JSON, written at the end.
pub(super) fn devices_metadata(table: &DeviceTable) -> KeyValue {
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
    KeyValue::new(format!("{KEY_PREFIX}devices"), devices)
}

/// Interns the devices stored under `mmio_trace.devices` into `table`, so that they
/// keep their base and size (the rows only name them).
pub(crate) fn intern_stored_devices(
    path: &Path,
    pairs: &[KeyValue],
    table: &DeviceTable,
) -> Result<(), ExportError> {
    let Some(devices) = pairs
        .iter()
        .find(|kv| kv.key == format!("{KEY_PREFIX}devices"))
        .and_then(|kv| kv.value.as_deref())
    else {
        return Ok(());
    };
    let bad = |message: String| ExportError::BadParquet {
        path: path.to_path_buf(),
        message,
    };
    let records: Vec<DeviceRecord> = serde_json::from_str(devices)
        .map_err(|e| bad(format!("bad {KEY_PREFIX}devices metadata: {e}")))?;
    for record in records {
        table
            .intern(&record.name, record.base, record.size, record.kind)
            .map_err(|full| bad(full.to_string()))?;
    }
    Ok(())
}
