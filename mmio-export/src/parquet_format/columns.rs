//! Events turned into Arrow record batches, column by column.

use std::sync::Arc;

use std::collections::HashMap;

use arrow_array::types::{UInt16Type, UInt32Type, UInt8Type};
use arrow_array::{
    ArrayRef, DictionaryArray, RecordBatch, StringArray, UInt16Array, UInt32Array, UInt64Array,
    UInt8Array,
};
use arrow_buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use mmio_core::{Device, DeviceId, DeviceKind, MmioEvent};

use super::schema::{kind_key, schema_with, space_key, KINDS, SPACES};
use crate::annotate::{columns_of, Names};
use crate::NameColumns;

/// Rows per record batch handed to the Parquet encoder.
pub(super) const BATCH_ROWS: usize = 64 * 1024;

/// The rows of one record batch, column by column, in plain vectors that become Arrow
/// arrays without copying: no per-row hashing or string building.
pub(super) struct Columns {
    seq: Vec<u64>,
    cpu: Vec<u32>,
    /// `R`, `W` or `X`, one byte a row.
    access: Vec<u8>,
    /// Index into `SPACES` per row.
    space: Vec<u8>,
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
    /// The optional name columns, filled by the writer's annotator; which ones was
    /// decided when the file was created.
    names: Names,
    function: Option<NameDictionary>,
    register: Option<NameDictionary>,
}

/// One optional name column of a batch: a dictionary key per row, the names in key
/// order. A name is copied once per batch, when first seen.
#[derive(Default)]
struct NameDictionary {
    keys: Vec<Option<u32>>,
    names: Vec<String>,
    key_of: HashMap<String, u32>,
}

impl NameDictionary {
    fn push(&mut self, name: Option<&str>) {
        let key = name.map(|name| match self.key_of.get(name) {
            Some(&key) => key,
            None => {
                let key = self.names.len() as u32;
                self.names.push(name.to_string());
                self.key_of.insert(name.to_string(), key);
                key
            }
        });
        self.keys.push(key);
    }

    fn finish(&mut self) -> Result<ArrayRef, arrow_schema::ArrowError> {
        let keys: UInt32Array = std::mem::take(&mut self.keys).into_iter().collect();
        let values = StringArray::from_iter_values(self.names.drain(..));
        self.key_of.clear();
        Ok(Arc::new(DictionaryArray::<UInt32Type>::try_new(
            keys,
            Arc::new(values),
        )?))
    }
}

impl Columns {
    pub(super) fn new(names: Names) -> Columns {
        let wanted = columns_of(&names);
        Columns {
            function: wanted.function.then(NameDictionary::default),
            register: wanted.register.then(NameDictionary::default),
            names,
            seq: Vec::with_capacity(BATCH_ROWS),
            cpu: Vec::with_capacity(BATCH_ROWS),
            access: Vec::with_capacity(BATCH_ROWS),
            space: Vec::with_capacity(BATCH_ROWS),
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

    /// The optional name columns the batches carry.
    pub(super) fn name_columns(&self) -> NameColumns {
        NameColumns {
            function: self.function.is_some(),
            register: self.register.is_some(),
        }
    }

    pub(super) fn rows(&self) -> usize {
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
    pub(super) fn push(
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
        self.space.push(space_key(event.space));
        self.guest_pc.push(event.guest_pc);
        self.phys_addr.push(event.phys_addr.unwrap_or(0));
        self.phys_addr_valid.push(event.phys_addr.is_some());
        self.virt_addr.push(event.virt_addr);
        self.offset.push(event.offset);
        self.size.push(event.size);
        self.value.push(event.value);
        self.instr_count.push(event.instr_count.unwrap_or(0));
        self.instr_count_valid.push(event.instr_count.is_some());
        if let Some(names) = &self.names {
            if let Some(function) = &mut self.function {
                function.push(names.function(event));
            }
            if let Some(register) = &mut self.register {
                register.push(names.register(event));
            }
        }
        true
    }

    /// The rows as a record batch of the run `run`; the columns start empty again.
    pub(super) fn finish(&mut self, run: &str) -> Result<RecordBatch, arrow_schema::ArrowError> {
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
        let space = DictionaryArray::<UInt8Type>::try_new(
            UInt8Array::from(take(&mut self.space)),
            Arc::new(StringArray::from_iter_values(
                SPACES.iter().map(|s| s.as_str()),
            )),
        )?;
        // One run a file: every row's key is 0.
        let run = DictionaryArray::<UInt8Type>::try_new(
            UInt8Array::from(vec![0; rows]),
            Arc::new(StringArray::from_iter_values([run])),
        )?;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(take(&mut self.seq))),
            Arc::new(UInt32Array::from(take(&mut self.cpu))),
            Arc::new(access),
            Arc::new(space),
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
            Arc::new(run),
        ];
        for names in [&mut self.function, &mut self.register]
            .into_iter()
            .flatten()
        {
            columns.push(names.finish()?);
        }
        RecordBatch::try_new(schema_with(self.name_columns()), columns)
    }
}
