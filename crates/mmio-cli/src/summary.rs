//! Per-device totals of a trace, computed while streaming it.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use mmio_core::{Access, DeviceId, DeviceKind};
use serde::Serialize;

/// One row of the summary: a device (or the accesses with no known device).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceSummary {
    /// Device name; `None` for accesses no device claimed.
    pub device: Option<String>,
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

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub events: u64,
    /// Sorted by accesses, most first.
    pub devices: Vec<DeviceSummary>,
}

#[derive(Default)]
struct Tally {
    row: DeviceSummary,
    offsets: HashSet<u64>,
    pcs: HashSet<u64>,
}

impl Summary {
    pub fn read(path: &Path) -> Result<Summary> {
        let mut reader = mmio_export::open_trace(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut tallies: BTreeMap<DeviceId, Tally> = BTreeMap::new();
        let mut events = 0u64;
        for event in reader.by_ref() {
            let event = event?;
            events += 1;
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
        let devices = reader.devices();
        let mut rows: Vec<DeviceSummary> = tallies
            .into_iter()
            .map(|(id, tally)| {
                let device = devices.get(id);
                let kind = devices.kind(id).map(DeviceKind::as_str).map(str::to_string);
                DeviceSummary {
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
        })
    }

    /// An aligned table, one device a line.
    pub fn write_table(&self, out: &mut impl Write) -> std::io::Result<()> {
        let header = [
            "device",
            "kind",
            "reads",
            "writes",
            "registers",
            "pcs",
            "first_pc",
            "last_pc",
        ];
        let rows: Vec<[String; 8]> = self
            .devices
            .iter()
            .map(|d| {
                [
                    d.device.clone().unwrap_or_else(|| "(none)".into()),
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
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }
        let line = |out: &mut dyn Write, cells: &[&str]| -> std::io::Result<()> {
            let mut text = String::new();
            for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
                // Names and kinds left-aligned, numbers right-aligned.
                if i < 2 {
                    text.push_str(&format!("{cell:<width$}  "));
                } else {
                    text.push_str(&format!("{cell:>width$}  "));
                }
            }
            writeln!(out, "{}", text.trim_end())
        };
        line(out, &header)?;
        for row in &rows {
            line(out, &row.each_ref().map(String::as_str))?;
        }
        writeln!(
            out,
            "{} events, {} devices",
            self.events,
            self.devices.len()
        )
    }
}
