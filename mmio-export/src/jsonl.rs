//! JSON Lines: one event object per line, the same keys on every line, numbers as JSON
//! integers. No header line, so `pandas.read_json(lines=True)` and DuckDB's
//! `read_json` read it as is. Lines may carry trailing spaces and a few lines may be
//! blank (see [`PAGE`]); JSON readers skip both.

use std::io::BufRead;
use std::path::Path;

use mmio_core::{Access, DeviceKind, DeviceTable, EventSink, MmioEvent, SinkError, Space};
use serde::Deserialize;

use crate::annotate::{columns_of, Names};
use crate::atomic::{PartialFile, Staging};
use crate::device_cache::{intern_read_device, DeviceCache};
use crate::text::{push_json_string, push_u64, LineSource};
use crate::NameColumns;
use crate::{ExportError, TraceInfo};

/// Bytes of whole lines gathered before a write.
const WRITE_CHUNK: usize = 256 * 1024;

/// Linux stops a `write` cut short by SIGKILL only at a page boundary of the file. No
/// line crosses one (a line that would is preceded by spaces up to it), so a killed
/// run's file always ends with a whole line.
const PAGE: u64 = 4096;

pub(crate) struct JsonLinesWriter {
    file: PartialFile,
    line_buffer: Vec<u8>,
    line: Vec<u8>,
    /// File offset at which `line_buffer` will be written.
    file_offset: u64,
    devices: DeviceCache,
    /// `,"run":"…"`: the same on every line.
    run_field: Vec<u8>,
    /// What fills the optional `function` and `register` keys, after `run`.
    names: Names,
    columns: NameColumns,
}

impl JsonLinesWriter {
    pub fn create(
        path: &Path,
        info: TraceInfo,
        staging: Staging,
        names: Names,
    ) -> Result<Self, ExportError> {
        let mut run_field = b",\"run\":".to_vec();
        push_json_string(&mut run_field, &info.run);
        Ok(JsonLinesWriter {
            file: PartialFile::create(path, staging)?,
            line_buffer: Vec::with_capacity(WRITE_CHUNK + PAGE as usize),
            line: Vec::with_capacity(512),
            file_offset: 0,
            devices: DeviceCache::default(),
            run_field,
            columns: columns_of(&names),
            names,
        })
    }

    fn push_line(&mut self, event: &MmioEvent, table: &DeviceTable) {
        self.line.clear();
        self.format_line(event, table);
        let position = self.file_offset + self.line_buffer.len() as u64;
        let line_len = self.line.len() as u64;
        let next_page = (position / PAGE + 1) * PAGE;
        if !position.is_multiple_of(PAGE) && position + line_len > next_page && line_len <= PAGE {
            let pad = (next_page - position) as usize;
            if self.line_buffer.pop().is_some() {
                // Widen the previous line with trailing spaces (valid JSON whitespace).
                self.line_buffer.resize(self.line_buffer.len() + pad, b' ');
            } else {
                // The previous line is already written: a whitespace-only line.
                self.line_buffer.resize(pad - 1, b' ');
            }
            self.line_buffer.push(b'\n');
        }
        self.line_buffer.extend_from_slice(&self.line);
    }

    fn format_line(&mut self, event: &MmioEvent, table: &DeviceTable) {
        let out = &mut self.line;
        out.extend_from_slice(b"{\"seq\":");
        push_u64(out, event.seq);
        out.extend_from_slice(b",\"cpu\":");
        push_u64(out, u64::from(event.cpu));
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(event.access.as_str().as_bytes());
        out.extend_from_slice(b"\",\"space\":\"");
        out.extend_from_slice(event.space.as_str().as_bytes());
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
        out.extend_from_slice(&self.run_field);
        if let Some(names) = &self.names {
            if self.columns.function {
                out.extend_from_slice(b",\"function\":");
                push_optional_string(out, names.function(event));
            }
            if self.columns.register {
                out.extend_from_slice(b",\"register\":");
                push_optional_string(out, names.register(event));
            }
        }
        out.extend_from_slice(b"}\n");
    }

    fn write_lines(&mut self) -> Result<(), ExportError> {
        if !self.line_buffer.is_empty() {
            self.file.write_all(&self.line_buffer)?;
            self.file_offset += self.line_buffer.len() as u64;
            self.line_buffer.clear();
        }
        Ok(())
    }
}

fn push_optional_string(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => push_json_string(out, value),
        None => out.extend_from_slice(b"null"),
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
    /// Absent before format version 3: memory.
    #[serde(default)]
    space: Space,
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
    lines: LineSource<R>,
}

impl<R: BufRead> JsonLinesReader<R> {
    pub fn new(path: &Path, input: R) -> Self {
        JsonLinesReader {
            lines: LineSource::new(path, input),
        }
    }

    pub fn next_event(&mut self, table: &DeviceTable) -> Option<Result<MmioEvent, ExportError>> {
        loop {
            if let Err(e) = self.lines.advance()? {
                return Some(Err(e));
            }
            let raw = self.lines.current();
            let text = raw.trim();
            if text.is_empty() {
                continue; // Page padding.
            }
            if !raw.ends_with('\n') {
                return Some(Err(self
                    .lines
                    .error("last line is cut short (the run was killed mid-write?)")));
            }
            let line: Line = match serde_json::from_str(text) {
                Ok(line) => line,
                Err(e) => return Some(Err(self.lines.error(e.to_string()))),
            };
            return Some(self.event(line, table));
        }
    }

    fn event(&self, line: Line, table: &DeviceTable) -> Result<MmioEvent, ExportError> {
        if !MmioEvent::is_valid_size(line.size) {
            return Err(self
                .lines
                .error(format!("size {} is not 1, 2, 4 or 8", line.size)));
        }
        let kind = match line.device_kind.as_deref() {
            Some(text) => Some(
                text.parse::<DeviceKind>()
                    .map_err(|_| self.lines.error(format!("unknown device_kind {text:?}")))?,
            ),
            None => None,
        };
        let address = line.phys_addr.unwrap_or(line.virt_addr);
        Ok(MmioEvent {
            seq: line.seq,
            cpu: line.cpu,
            access: line.access,
            space: line.space,
            guest_pc: line.guest_pc,
            phys_addr: line.phys_addr,
            virt_addr: line.virt_addr,
            offset: line.offset,
            size: line.size,
            value: line.value,
            device: intern_read_device(table, line.device.as_deref(), kind, address, line.offset)
                .map_err(|full| self.lines.error(full.to_string()))?,
            instr_count: line.instr_count,
        })
    }
}
