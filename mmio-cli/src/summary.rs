//! Per-device totals of a trace, computed while streaming it.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use mmio_core::{Access, DeviceId, DeviceKind, DeviceTable, Space};
use mmio_export::{EventColumns, Wanted};

use crate::svd::SvdMap;
use crate::symbols::{FunctionCounts, Symbols};
use serde::Serialize;

/// One row of the summary: a device (or the accesses with no known device).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceSummary {
    /// Device name; `None` for accesses no device claimed.
    pub device: Option<String>,
    /// Where the device's region starts: tells apart devices of one name (a board's
    /// four `pl011` UARTs).
    pub base: Option<u64>,
    /// `memory`, or `io` for x86 port I/O (whose base is a port).
    pub space: Space,
    pub kind: Option<String>,
    pub reads: u64,
    pub writes: u64,
    /// Instructions fetched from the device's region (counted among `reads` too):
    /// the guest executed from I/O.
    #[serde(skip_serializing_if = "is_zero")]
    pub fetches: u64,
    /// Distinct offsets (registers) touched.
    pub registers: usize,
    /// Distinct PCs that touched the device.
    pub pcs: usize,
    /// With `--symbols`: the functions that touched the device most, with their
    /// accesses, most first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top_functions: Vec<(String, u64)>,
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
    /// With `--svd`: the SVD's peripheral at the range, what the guest wanted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svd_peripheral: Option<String>,
    pub kind: String,
    /// `memory`, or `io` for x86 ports.
    pub space: Space,
    /// The stub's region (a 4 KiB page of it when it is larger), or the 4 KiB page of
    /// an unassigned address.
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

/// A missing peripheral's accesses: the range counted (a stub's region or a 4 KiB
/// page) and the device's [`slot`].
type MissingKey = (u64, u64, usize);

/// Where accesses to a device count as a missing peripheral.
#[derive(Clone, Copy)]
enum Missing {
    /// Modelled: not missing.
    No,
    /// Each 4 KiB page touched (unassigned addresses, a stub of unknown size or
    /// larger than a page: micro:bit's one stub covers 512 MiB of peripherals).
    Page,
    /// The stub's whole region, a page at most.
    Region(u64, u64),
}

/// What names PCs and addresses in a summary: `--symbols` and `--svd`.
#[derive(Default)]
pub struct Names {
    /// Function names.
    pub symbols: Symbols,
    /// Peripheral and register names.
    pub svd: Option<SvdMap>,
}

/// A set of `u64`s hashed with one multiplication: PCs and offsets, not attacker input.
pub(crate) type FastSet = HashSet<u64, BuildHasherDefault<MulHasher>>;
/// A count per `u64` (PC), hashed likewise.
pub(crate) type FastCounts = HashMap<u64, u64, BuildHasherDefault<MulHasher>>;

/// Fibonacci hashing of one `u64`.
#[derive(Default)]
pub(crate) struct MulHasher(u64);

impl Hasher for MulHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = (self.0 ^ value)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The slot of a device in a per-device vector: the absent ids first (unassigned
/// addresses and unassigned ports apart).
pub(crate) fn slot(id: DeviceId, space: Space) -> usize {
    match (id, space) {
        (DeviceId::UNKNOWN, _) => 0,
        (DeviceId::UNASSIGNED, Space::Memory) => 1,
        (DeviceId::UNASSIGNED, Space::Io) => 2,
        (DeviceId(index), _) => index as usize + 3,
    }
}

/// The device of `slot`.
pub(crate) fn device_of(slot: usize) -> DeviceId {
    match slot {
        0 => DeviceId::UNKNOWN,
        1 | 2 => DeviceId::UNASSIGNED,
        n => DeviceId((n - 3) as u32),
    }
}

/// An address as the tables show it: `io:0x3f8` for a port.
pub(crate) fn address_text(space: Space, address: u64) -> String {
    match space {
        Space::Memory => format!("{address:#x}"),
        Space::Io => format!("io:{address:#x}"),
    }
}

/// One device's counts in part of the trace.
#[derive(Clone, Default)]
struct Tally {
    reads: u64,
    writes: u64,
    fetches: u64,
    /// The space of the accesses (a device lives in one).
    space: Space,
    /// (seq, pc) of the lowest and highest `seq`.
    first: (u64, u64),
    last: (u64, u64),
    offsets: FastSet,
    /// Accesses per PC.
    pcs: FastCounts,
}

impl Tally {
    fn count(&mut self, seq: u64, pc: u64, access: Access, space: Space) {
        if self.reads + self.writes == 0 || seq < self.first.0 {
            self.first = (seq, pc);
        }
        if self.reads + self.writes == 0 || seq >= self.last.0 {
            self.last = (seq, pc);
        }
        self.space = space;
        match access {
            Access::Write => self.writes += 1,
            Access::Read => self.reads += 1,
            Access::Fetch => {
                self.reads += 1;
                self.fetches += 1;
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        if other.reads + other.writes == 0 {
            return;
        }
        if self.reads + self.writes == 0 {
            *self = other;
            return;
        }
        if other.first.0 < self.first.0 {
            self.first = other.first;
        }
        if other.last.0 >= self.last.0 {
            self.last = other.last;
        }
        self.reads += other.reads;
        self.writes += other.writes;
        self.fetches += other.fetches;
        self.space = other.space;
        self.offsets.extend(other.offsets);
        for (pc, n) in other.pcs {
            *self.pcs.entry(pc).or_default() += n;
        }
    }
}

/// What one scanning thread has counted.
#[derive(Default)]
struct Partial {
    events: u64,
    /// By [`slot`].
    devices: Vec<Tally>,
    /// By [`slot`]: where a missing device's accesses are counted (`None`: it is not
    /// missing), worked out once per device and thread.
    missing_range: Vec<Option<Missing>>,
    missing: HashMap<MissingKey, Tally>,
}

impl Summary {
    /// The summary of the trace made of `paths` (files and directories): Parquet row
    /// groups are scanned on every core, only the columns needed. With `symbols`, each
    /// device's top functions too.
    pub fn read(paths: &[PathBuf], names: &Names) -> Result<Summary> {
        let devices = Arc::new(DeviceTable::new());
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let partials = mmio_export::scan(
            paths,
            Wanted::default(),
            threads,
            &devices,
            Partial::default,
            |partial, columns| partial.add(columns, &devices),
        )?;
        let mut total = Partial::default();
        for partial in partials {
            total.events += partial.events;
            if total.devices.len() < partial.devices.len() {
                total
                    .devices
                    .resize_with(partial.devices.len(), Tally::default);
            }
            for (slot, tally) in partial.devices.into_iter().enumerate() {
                total.devices[slot].merge(tally);
            }
            for (key, tally) in partial.missing {
                total.missing.entry(key).or_default().merge(tally);
            }
        }
        let summary = total.into_summary(&devices, names);
        if let Some(svd) = &names.svd {
            svd.warn_unless_covering(
                summary
                    .devices
                    .iter()
                    .filter_map(|d| d.base)
                    .chain(summary.missing.iter().map(|m| m.first_address)),
            );
        }
        Ok(summary)
    }
}

impl Partial {
    fn add(&mut self, columns: &EventColumns, devices: &DeviceTable) {
        self.events += columns.len() as u64;
        for row in 0..columns.len() {
            let (seq, pc, access, space) = (
                columns.seq[row],
                columns.guest_pc[row],
                columns.access[row],
                columns.space[row],
            );
            let slot = slot(columns.device[row], space);
            if slot >= self.devices.len() {
                self.devices.resize_with(slot + 1, Tally::default);
                self.missing_range.resize(slot + 1, None);
            }
            let tally = &mut self.devices[slot];
            tally.count(seq, pc, access, space);
            tally.offsets.insert(columns.offset[row]);
            *tally.pcs.entry(pc).or_default() += 1;
            let missing = *self.missing_range[slot]
                .get_or_insert_with(|| missing_range(devices, device_of(slot)));
            let address = columns.address[row];
            let (first, last) = match missing {
                Missing::No => continue,
                Missing::Page => (address & !0xfff, address | 0xfff),
                Missing::Region(first, last) => (first, last),
            };
            let tally = self.missing.entry((first, last, slot)).or_default();
            tally.count(seq, pc, access, space);
            *tally.pcs.entry(pc).or_default() += 1;
        }
    }

    fn into_summary(self, devices: &DeviceTable, names: &Names) -> Summary {
        let symbols = &names.symbols;
        let mut rows: Vec<DeviceSummary> = self
            .devices
            .into_iter()
            .enumerate()
            .filter(|(_, tally)| tally.reads + tally.writes > 0)
            .map(|(slot, tally)| {
                let id = device_of(slot);
                let device = devices.get(id);
                DeviceSummary {
                    base: device.as_ref().map(|d| d.base),
                    space: tally.space,
                    device: device.map(|d| d.name.to_string()),
                    kind: devices.kind(id).map(|k| k.as_str().to_string()),
                    reads: tally.reads,
                    writes: tally.writes,
                    fetches: tally.fetches,
                    registers: tally.offsets.len(),
                    pcs: tally.pcs.len(),
                    top_functions: top_functions(symbols, &tally.pcs),
                    first_pc: tally.first.1,
                    last_pc: tally.last.1,
                    first_seq: tally.first.0,
                    last_seq: tally.last.0,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            (b.reads + b.writes)
                .cmp(&(a.reads + a.writes))
                .then(a.first_seq.cmp(&b.first_seq))
                .then(a.base.cmp(&b.base))
        });
        let mut missing: Vec<MissingPeripheral> = self
            .missing
            .into_iter()
            .map(|((first, last, slot), tally)| MissingPeripheral {
                device: devices.get(device_of(slot)).map(|d| d.name.to_string()),
                svd_peripheral: names
                    .svd
                    .as_ref()
                    .and_then(|svd| svd.peripheral(first))
                    .map(|p| p.name.clone()),
                kind: devices
                    .kind(device_of(slot))
                    .unwrap_or(DeviceKind::Unassigned)
                    .as_str()
                    .to_string(),
                space: tally.space,
                first_address: first,
                last_address: last,
                reads: tally.reads,
                writes: tally.writes,
                pcs: tally.pcs.len(),
                first_pc: tally.first.1,
            })
            .collect();
        missing.sort_by(|a, b| {
            (a.space, a.first_address, a.last_address, &a.device).cmp(&(
                b.space,
                b.first_address,
                b.last_address,
                &b.device,
            ))
        });
        Summary {
            events: self.events,
            devices: rows,
            missing,
        }
    }
}

/// The three functions with the most accesses among `pcs` (none without symbols).
fn top_functions(symbols: &Symbols, pcs: &FastCounts) -> Vec<(String, u64)> {
    if symbols.is_empty() {
        return Vec::new();
    }
    let mut counts = FunctionCounts::default();
    for (&pc, &n) in pcs {
        counts.add(symbols.function_name(pc), n);
    }
    counts.top(3)
}

/// Where accesses to `id` count as a missing peripheral.
fn missing_range(devices: &DeviceTable, id: DeviceId) -> Missing {
    match devices.kind(id) {
        Some(DeviceKind::Unassigned) => Missing::Page,
        Some(DeviceKind::Unimplemented) => match devices.get(id) {
            Some(d) if d.size > 0 && d.size <= 0x1000 => {
                Missing::Region(d.base, d.base.saturating_add(d.size - 1))
            }
            _ => Missing::Page,
        },
        _ => Missing::No,
    }
}

impl Summary {
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
                        .map_or_else(|| "-".into(), |base| address_text(d.space, base)),
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
        for d in self.devices.iter().filter(|d| d.fetches > 0) {
            writeln!(
                out,
                "the guest executed {} instructions fetched from {} ({}): code where the board has a device or nothing",
                d.fetches,
                d.device.as_deref().unwrap_or("unassigned addresses"),
                d.kind.as_deref().unwrap_or("-"),
            )?;
        }
        if self.devices.iter().any(|d| !d.top_functions.is_empty()) {
            writeln!(out, "\ntop functions per device (accesses):")?;
            for d in &self.devices {
                let functions: Vec<String> = d
                    .top_functions
                    .iter()
                    .map(|(name, n)| format!("{name}({n})"))
                    .collect();
                let name = d.device.as_deref().unwrap_or("(none)");
                writeln!(out, "  {name:<22} {}", functions.join(" "))?;
            }
        }
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
                    format!(
                        "{}-{:#x}",
                        address_text(m.space, m.first_address),
                        m.last_address
                    ),
                    m.kind.clone(),
                    m.device.clone().unwrap_or_else(|| "-".into()),
                    m.reads.to_string(),
                    m.writes.to_string(),
                    m.pcs.to_string(),
                    format!("{:#x}", m.first_pc),
                ]
            })
            .collect();
        if self.missing.iter().all(|m| m.svd_peripheral.is_none()) {
            return write_aligned(out, &header, &rows, 3);
        }
        // With --svd: what the guest wanted there, after the stub's name.
        let header = [
            "range", "kind", "device", "svd", "reads", "writes", "pcs", "first_pc",
        ];
        let rows: Vec<[String; 8]> = rows
            .into_iter()
            .zip(&self.missing)
            .map(|(row, m)| {
                let [range, kind, device, reads, writes, pcs, first_pc] = row;
                let svd = m.svd_peripheral.clone().unwrap_or_else(|| "-".into());
                [range, kind, device, svd, reads, writes, pcs, first_pc]
            })
            .collect();
        write_aligned(out, &header, &rows, 4)
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
pub fn write_by_file(
    paths: &[PathBuf],
    names: &Names,
    json: bool,
    out: &mut impl Write,
) -> Result<()> {
    let files = mmio_export::trace_files(paths)?;
    let mut summaries = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let summary = Summary::read(std::slice::from_ref(file), names)?;
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
