//! The upstream PANDA `mmio_trace` plugin's format: a JSON array, one object per line,
//! numbers as `"0x…"` strings zero-padded to twice the guest word size, unknown device
//! `"[NONE]"`. x86 port I/O, which upstream never records, carries `"space": "io"`
//! (other objects keep upstream's keys). Unlike upstream, names are JSON-escaped, `phys_addr` is the absolute
//! physical address (`null` where the emulator could not translate), and the file is
//! written as events arrive instead of at exit.

use std::io::BufRead;
use std::path::Path;

use mmio_core::{Access, DeviceId, DeviceTable, EventSink, MmioEvent, SinkError, Space};
use serde::Deserialize;

use crate::atomic::{PartialFile, Staging};
use crate::device_cache::{intern_read_device, DeviceCache};
use crate::text::{push_hex_string, push_json_string, LineSource};
use crate::{ExportError, TraceInfo};

/// The upstream plugin's name for "no device".
pub const NO_DEVICE: &str = "[NONE]";

pub(crate) struct PandaJsonWriter {
    file: PartialFile,
    buffer: Vec<u8>,
    devices: DeviceCache,
    hex_digits: usize,
    first: bool,
}

impl PandaJsonWriter {
    pub fn create(path: &Path, info: TraceInfo, staging: Staging) -> Result<Self, ExportError> {
        let mut file = PartialFile::create(path, staging)?;
        file.write_all(b"[\n")?;
        Ok(PandaJsonWriter {
            file,
            buffer: Vec::with_capacity(256 * 1024),
            devices: DeviceCache::default(),
            hex_digits: usize::from(info.word_size.clamp(1, 8)) * 2,
            first: true,
        })
    }

    fn push_event(&mut self, event: &MmioEvent, table: &DeviceTable) {
        let digits = self.hex_digits;
        let out = &mut self.buffer;
        if !self.first {
            out.extend_from_slice(b",\n");
        }
        self.first = false;
        out.extend_from_slice(b"{ \"type\": \"");
        out.extend_from_slice(event.access.as_str().as_bytes());
        if event.space == Space::Io {
            out.extend_from_slice(b"\", \"space\": \"io");
        }
        out.extend_from_slice(b"\", \"guest_pc\": ");
        push_hex_string(out, event.guest_pc, digits);
        out.extend_from_slice(b", \"phys_addr\": ");
        match event.phys_addr {
            Some(addr) => push_hex_string(out, addr, digits),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b", \"virt_addr\": ");
        push_hex_string(out, event.virt_addr, digits);
        out.extend_from_slice(b", \"size\": ");
        push_hex_string(out, u64::from(event.size), digits);
        out.extend_from_slice(b", \"value\": ");
        push_hex_string(out, event.value, digits);
        out.extend_from_slice(b", \"device\": ");
        let name = self
            .devices
            .get(event.device, table)
            .map_or(NO_DEVICE, |device| &*device.name);
        push_json_string(out, name);
        out.extend_from_slice(b" }");
    }
}

impl EventSink for PandaJsonWriter {
    fn target(&self) -> String {
        self.file.target().display().to_string()
    }

    fn write(&mut self, events: &[MmioEvent], table: &DeviceTable) -> Result<(), SinkError> {
        for event in events {
            self.push_event(event, table);
        }
        self.file.write_all(&self.buffer).map_err(SinkError::new)?;
        self.buffer.clear();
        Ok(())
    }

    fn finish(&mut self, _: &DeviceTable) -> Result<(), SinkError> {
        self.file.write_all(b"\n]\n").map_err(SinkError::new)?;
        self.file.commit().map_err(SinkError::new)
    }
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "type")]
    access: String,
    #[serde(default)]
    space: Space,
    guest_pc: String,
    phys_addr: Option<String>,
    virt_addr: String,
    size: String,
    value: String,
    device: String,
}

/// Reads the one-object-per-line layout that both PANDA and mmio-trace write.
pub(crate) struct PandaJsonReader<R> {
    lines: LineSource<R>,
    seq: u64,
}

impl<R: BufRead> PandaJsonReader<R> {
    pub fn new(path: &Path, input: R) -> Self {
        PandaJsonReader {
            lines: LineSource::new(path, input),
            seq: 0,
        }
    }

    pub fn next_event(&mut self, table: &DeviceTable) -> Option<Result<MmioEvent, ExportError>> {
        loop {
            if let Err(e) = self.lines.advance()? {
                return Some(Err(e));
            }
            let text = self.lines.current().trim();
            let text = text.strip_suffix(',').unwrap_or(text).trim_end();
            if text.is_empty() || text == "[" || text == "]" {
                continue;
            }
            if self.lines.number() == 1 && !text.starts_with('[') {
                return Some(Err(self
                    .lines
                    .error("expected '[' (a PANDA mmio_trace JSON array)")));
            }
            let record: Record = match serde_json::from_str(text) {
                Ok(record) => record,
                Err(e) => return Some(Err(self.lines.error(e.to_string()))),
            };
            return Some(self.event(record, table));
        }
    }

    fn hex(&self, key: &str, text: &str) -> Result<u64, ExportError> {
        text.strip_prefix("0x")
            .and_then(|digits| u64::from_str_radix(digits, 16).ok())
            .ok_or_else(|| {
                self.lines
                    .error(format!("{key}: {text:?} is not a 0x… hex number"))
            })
    }

    fn event(&mut self, record: Record, table: &DeviceTable) -> Result<MmioEvent, ExportError> {
        let access = record.access.parse::<Access>().map_err(|_| {
            self.lines
                .error(format!("type: {:?} is not R, W or X", record.access))
        })?;
        let size = self.hex("size", &record.size)?;
        let size = u8::try_from(size)
            .ok()
            .filter(|&s| MmioEvent::is_valid_size(s))
            .ok_or_else(|| self.lines.error(format!("size {size} is not 1, 2, 4 or 8")))?;
        let phys_addr = match record.phys_addr.as_deref() {
            Some(text) => Some(self.hex("phys_addr", text)?),
            None => None,
        };
        let virt_addr = self.hex("virt_addr", &record.virt_addr)?;
        let address = phys_addr.unwrap_or(virt_addr);
        let device = if record.device == NO_DEVICE {
            DeviceId::UNKNOWN
        } else {
            // The format has no offsets: the device's base is unknown.
            intern_read_device(table, Some(&record.device), None, 0, 0)
                .map_err(|full| self.lines.error(full.to_string()))?
        };
        let event = MmioEvent {
            seq: self.seq,
            cpu: 0,
            access,
            space: record.space,
            guest_pc: self.hex("guest_pc", &record.guest_pc)?,
            phys_addr,
            virt_addr,
            offset: address,
            size,
            value: self.hex("value", &record.value)?,
            device,
            instr_count: None,
        };
        self.seq += 1;
        Ok(event)
    }
}
