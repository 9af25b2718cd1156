//! JSON Lines: one event object per line, the same keys on every line, numbers as JSON
//! integers. No header line, so `pandas.read_json(lines=True)` and DuckDB's
//! `read_json` read it as is.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use mmio_core::{Access, DeviceKind, DeviceTable, EventSink, MmioEvent, SinkError};
use serde::Deserialize;

use crate::atomic::PartialFile;
use crate::device_cache::{intern_read_device, DeviceCache};
use crate::text::{push_json_string, push_u64};
use crate::{ExportError, TraceInfo};

/// Bytes of whole lines gathered before a write; lines are never split across writes,
/// so a killed run leaves no torn line behind (short of a kill inside one `write`).
const WRITE_CHUNK: usize = 256 * 1024;

pub(crate) struct JsonLinesWriter {
    file: PartialFile,
    line_buffer: Vec<u8>,
    devices: DeviceCache,
}

impl JsonLinesWriter {
    pub fn create(path: &Path, _info: TraceInfo) -> Result<Self, ExportError> {
        Ok(JsonLinesWriter {
            file: PartialFile::create(path)?,
            line_buffer: Vec::with_capacity(WRITE_CHUNK + 512),
            devices: DeviceCache::default(),
        })
    }

    fn push_line(&mut self, event: &MmioEvent, table: &DeviceTable) {
        let out = &mut self.line_buffer;
        out.extend_from_slice(b"{\"seq\":");
        push_u64(out, event.seq);
        out.extend_from_slice(b",\"cpu\":");
        push_u64(out, u64::from(event.cpu));
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(event.access.as_str().as_bytes());
        out.extend_from_slice(b"\",\"guest_pc\":");
        push_u64(out, event.guest_pc);
        out.extend_from_slice(b",\"phys_addr\":");
        push_optional(out, event.phys_addr);
        out.extend_from_slice(b",\"virt_addr\":");
        push_u64(out, event.virt_addr);
        out.extend_from_slice(b",\"offset\":");
        push_u64(out, event.offset);
        out.extend_from_slice(b",\"size\":");
        push_u64(out, u64::from(event.size));
        out.extend_from_slice(b",\"value\":");
        push_u64(out, event.value);
        out.extend_from_slice(b",\"device\":");
        match self.devices.get(event.device, table) {
            Some(device) => push_json_string(out, &device.name),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"device_kind\":");
        match self.devices.kind(event.device, table) {
            Some(kind) => push_json_string(out, kind.as_str()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"instr_count\":");
        push_optional(out, event.instr_count);
        out.extend_from_slice(b"}\n");
    }

    fn write_lines(&mut self) -> Result<(), ExportError> {
        if !self.line_buffer.is_empty() {
            self.file.write_all(&self.line_buffer)?;
            self.line_buffer.clear();
        }
        Ok(())
    }
}

fn push_optional(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        Some(value) => push_u64(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

impl EventSink for JsonLinesWriter {
    fn target(&self) -> String {
        self.file.target().display().to_string()
    }

    fn write(&mut self, events: &[MmioEvent], table: &DeviceTable) -> Result<(), SinkError> {
        for event in events {
            self.push_line(event, table);
            if self.line_buffer.len() >= WRITE_CHUNK {
                self.write_lines().map_err(SinkError::new)?;
            }
        }
        self.write_lines().map_err(SinkError::new)
    }

    fn finish(&mut self, _: &DeviceTable) -> Result<(), SinkError> {
        self.write_lines().map_err(SinkError::new)?;
        self.file.commit().map_err(SinkError::new)
    }
}

#[derive(Deserialize)]
struct Line {
    seq: u64,
    cpu: u32,
    #[serde(rename = "type")]
    access: Access,
    guest_pc: u64,
    phys_addr: Option<u64>,
    virt_addr: u64,
    offset: u64,
    size: u8,
    value: u64,
    device: Option<String>,
    #[serde(default)]
    device_kind: Option<String>,
    instr_count: Option<u64>,
}

pub(crate) struct JsonLinesReader<R> {
    path: PathBuf,
    input: R,
    line: String,
    line_number: u64,
}

impl<R: BufRead> JsonLinesReader<R> {
    pub fn new(path: &Path, input: R) -> Self {
        JsonLinesReader {
            path: path.to_path_buf(),
            input,
            line: String::new(),
            line_number: 0,
        }
    }

    fn bad_line(&self, message: String) -> ExportError {
        ExportError::BadLine {
            path: self.path.clone(),
            line: self.line_number,
            message,
        }
    }

    pub fn next_event(&mut self, table: &DeviceTable) -> Option<Result<MmioEvent, ExportError>> {
        loop {
            self.line.clear();
            self.line_number += 1;
            match self.input.read_line(&mut self.line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(ExportError::io(&self.path, "read failed", e))),
            }
            let text = self.line.trim();
            if text.is_empty() {
                continue;
            }
            if !self.line.ends_with('\n') {
                return Some(Err(self.bad_line(
                    "last line is cut short (the run was killed mid-write?)".into(),
                )));
            }
            let line: Line = match serde_json::from_str(text) {
                Ok(line) => line,
                Err(e) => return Some(Err(self.bad_line(e.to_string()))),
            };
            return Some(self.event(line, table));
        }
    }

    fn event(&self, line: Line, table: &DeviceTable) -> Result<MmioEvent, ExportError> {
        if !MmioEvent::is_valid_size(line.size) {
            return Err(self.bad_line(format!("size {} is not 1, 2, 4 or 8", line.size)));
        }
        let kind = match line.device_kind.as_deref() {
            Some(text) => Some(
                DeviceKind::parse(text)
                    .ok_or_else(|| self.bad_line(format!("unknown device_kind {text:?}")))?,
            ),
            None => None,
        };
        let address = line.phys_addr.unwrap_or(line.virt_addr);
        Ok(MmioEvent {
            seq: line.seq,
            cpu: line.cpu,
            access: line.access,
            guest_pc: line.guest_pc,
            phys_addr: line.phys_addr,
            virt_addr: line.virt_addr,
            offset: line.offset,
            size: line.size,
            value: line.value,
            device: intern_read_device(table, line.device.as_deref(), kind, address, line.offset),
            instr_count: line.instr_count,
        })
    }
}
