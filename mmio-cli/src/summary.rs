//! Per-device totals of a trace, computed while streaming it.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use mmio_core::{Access, DeviceId, DeviceKind};
use serde::Serialize;

/// One row of the summary: a device (or the accesses with no known device).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceSummary {
    /// Device name; `None` for accesses no device claimed.
    pub device: Option<String>,
    /// Where the device's region starts: tells apart devices of one name (a board's
    /// four `pl011` UARTs).
    pub base: Option<u64>,
    pub kind: Option<String>,
    pub reads: u64,
    pub writes: u64,
    /// Distinct offsets (registers) touched.
    pub registers: usize,
    /// Distinct PCs that touched the device.
    pub pcs: usize,
    pub first_pc: u64,
    pub last_pc: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// Accesses to what the board does not model: an unimplemented-device stub, or an
/// address where nothing is mapped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MissingPeripheral {
    /// The stub's name; `None` for unassigned addresses.
    pub device: Option<String>,
    pub kind: String,
    /// The stub's region, or the 4 KiB page of an unassigned address.
    pub first_address: u64,
    pub last_address: u64,
    pub reads: u64,
    pub writes: u64,
    pub pcs: usize,
    pub first_pc: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub events: u64,
    /// Sorted by accesses, most first.
    pub devices: Vec<DeviceSummary>,
    /// In address order.
    pub missing: Vec<MissingPeripheral>,
}

/// A missing peripheral: its address range and stub name.
type MissingKey = (u64, u64, Option<String>);

#[derive(Default)]
struct Tally {
    row: DeviceSummary,
    offsets: HashSet<u64>,
    pcs: HashSet<u64>,
}

impl Summary {
    /// The summary of the trace made of `paths` (files and directories).
    pub fn read(paths: &[PathBuf]) -> Result<Summary> {
        let mut reader = crate::inspect::open(paths)?;
        let mut tallies: BTreeMap<DeviceId, Tally> = BTreeMap::new();
        let mut missing: BTreeMap<MissingKey, (MissingPeripheral, HashSet<u64>)> = BTreeMap::new();
        let mut events = 0u64;
        let devices = reader.devices().clone();
        let mut progress = crate::progress::Progress::new("reading");
        for event in reader.by_ref() {
            let event = event?;
            progress.tick();
            events += 1;
            let kind = devices.kind(event.device);
            if let Some(kind @ (DeviceKind::Unimplemented | DeviceKind::Unassigned)) = kind {
                let device = devices.get(event.device);
                let address = event.phys_addr.unwrap_or(event.virt_addr);
                let (first, last) = match &device {
                    Some(d) if d.size > 0 => (d.base, d.base.saturating_add(d.size - 1)),
                    _ => (address & !0xfff, address | 0xfff),
                };
                let name = device.map(|d| d.name.to_string());
                let (entry, pcs) =
                    missing
                        .entry((first, last, name.clone()))
                        .or_insert_with(|| {
                            (
                                MissingPeripheral {
                                    device: name,
                                    kind: kind.as_str().to_string(),
                                    first_address: first,
                                    last_address: last,
                                    first_pc: event.guest_pc,
                                    ..MissingPeripheral::default()
                                },
                                HashSet::new(),
                            )
                        });
                match event.access {
                    Access::Read => entry.reads += 1,
                    Access::Write => entry.writes += 1,
                }
                pcs.insert(event.guest_pc);
                entry.pcs = pcs.len();
            }
            let tally = tallies.entry(event.device).or_default();
            let row = &mut tally.row;
            if row.reads + row.writes == 0 {
                row.first_pc = event.guest_pc;
                row.first_seq = event.seq;
            }
            match event.access {
                Access::Read => row.reads += 1,
                Access::Write => row.writes += 1,
            }
            row.last_pc = event.guest_pc;
            row.last_seq = event.seq;
            tally.offsets.insert(event.offset);
            tally.pcs.insert(event.guest_pc);
        }
        let mut rows: Vec<DeviceSummary> = tallies
            .into_iter()
            .map(|(id, tally)| {
                let device = devices.get(id);
                let kind = devices.kind(id).map(DeviceKind::as_str).map(str::to_string);
                DeviceSummary {
                    base: device.as_ref().map(|d| d.base),
                    device: device.map(|d| d.name.to_string()),
                    kind,
                    registers: tally.offsets.len(),
                    pcs: tally.pcs.len(),
                    ..tally.row
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            (b.reads + b.writes)
                .cmp(&(a.reads + a.writes))
                .then(a.first_seq.cmp(&b.first_seq))
        });
        Ok(Summary {
            events,
            devices: rows,
            missing: missing.into_values().map(|(entry, _)| entry).collect(),
        })
    }

    /// An aligned table, one device a line.
    pub fn write_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        let header = [
            "device",
            "base",
            "kind",
            "reads",
            "writes",
            "registers",
            "pcs",
            "first_pc",
            "last_pc",
        ];
        let rows: Vec<[String; 9]> = self
            .devices
            .iter()
            .map(|d| {
                [
                    d.device.clone().unwrap_or_else(|| "(none)".into()),
                    d.base
                        .map_or_else(|| "-".into(), |base| format!("{base:#x}")),
                    d.kind.clone().unwrap_or_else(|| "-".into()),
                    d.reads.to_string(),
                    d.writes.to_string(),
                    d.registers.to_string(),
                    d.pcs.to_string(),
                    format!("{:#x}", d.first_pc),
                    format!("{:#x}", d.last_pc),
                ]
            })
            .collect();
        write_aligned(out, &header, &rows, 3)?;
        writeln!(
            out,
            "{} events, {} devices",
            self.events,
            self.devices.len()
        )?;
        if self.missing.is_empty() {
            return Ok(());
        }
        writeln!(
            out,
            "\nmissing peripherals (what the board does not model):"
        )?;
        let header = [
            "range", "kind", "device", "reads", "writes", "pcs", "first_pc",
        ];
        let rows: Vec<[String; 7]> = self
            .missing
            .iter()
            .map(|m| {
                [
                    format!("{:#x}-{:#x}", m.first_address, m.last_address),
                    m.kind.clone(),
                    m.device.clone().unwrap_or_else(|| "-".into()),
                    m.reads.to_string(),
                    m.writes.to_string(),
                    m.pcs.to_string(),
                    format!("{:#x}", m.first_pc),
                ]
            })
            .collect();
        write_aligned(out, &header, &rows, 3)
    }
}

/// Prints `summary` as a table or JSON.
pub fn write(summary: &Summary, json: bool, out: &mut impl Write) -> Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, summary)?;
        writeln!(out)?;
    } else {
        summary.write_table(out)?;
    }
    Ok(())
}

/// One file's summary, for `summary --by file`.
#[derive(Serialize)]
struct FileSummary<'a> {
    file: &'a Path,
    #[serde(flatten)]
    summary: Summary,
}

/// `summary --by file`: the summary of each trace file of `paths` in turn (as a JSON
/// array with `--json`).
pub fn write_by_file(paths: &[PathBuf], json: bool, out: &mut impl Write) -> Result<()> {
    let files = mmio_export::trace_files(paths)?;
    let mut summaries = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let summary = Summary::read(std::slice::from_ref(file))?;
        if json {
            summaries.push(FileSummary { file, summary });
        } else {
            if index > 0 {
                writeln!(out)?;
            }
            writeln!(out, "== {}", file.display())?;
            summary.write_table(out)?;
        }
    }
    if json {
        serde_json::to_writer_pretty(&mut *out, &summaries)?;
        writeln!(out)?;
    }
    Ok(())
}

/// A table: the first `text_columns` columns left-aligned, the rest (numbers)
/// right-aligned, two spaces apart.
fn write_aligned<const N: usize>(
    out: &mut impl Write,
    header: &[&str; N],
    rows: &[[String; N]],
    text_columns: usize,
) -> std::io::Result<()> {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut line = |cells: [&str; N]| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i < text_columns {
                text.push_str(&format!("{cell:<width$}  "));
            } else {
                text.push_str(&format!("{cell:>width$}  "));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(*header)?;
    for row in rows {
        line(row.each_ref().map(String::as_str))?;
    }
    Ok(())
}
