//! `show`, `registers`, `convert` and `diff`: streaming views of a trace.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use mmio_core::{Access, DeviceId, DeviceTable, Filter, MmioEvent};
use mmio_export::{
    create_annotated_output, Annotate, NameColumns, OutputOptions, TraceSet, Wanted,
};

use crate::progress::Progress;
use crate::summary::{address_text, device_of, slot, FastSet, MulHasher};
use crate::svd::{register_address, SvdMap};
use crate::symbols::{Functions, Symbols};

/// Trace files and directories read as one trace. The reader's errors name the file.
pub fn open(paths: &[PathBuf]) -> Result<TraceSet> {
    Ok(TraceSet::open(paths)?)
}

/// The inputs as the user gave them, for messages.
pub fn describe(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(" ")
}

fn device_name(devices: &DeviceTable, id: DeviceId) -> String {
    devices
        .get(id)
        .map(|d| d.name.to_string())
        .unwrap_or_else(|| "-".into())
}

/// `show`: events as an aligned table; with an SVD file a `register` column, with
/// symbols a `function` column (and with `lines` a `line` column), and with an SVD
/// file last the value decoded into the register's fields.
pub fn show(
    paths: &[PathBuf],
    head: Option<usize>,
    symbols: &Symbols,
    svd: Option<&SvdMap>,
    lines: bool,
    out: &mut impl Write,
) -> Result<()> {
    let mut reader = open(paths)?;
    let devices = reader.devices().clone();
    let mut header = format!(
        "{:>8}  {:>3}  t  {:>10}  {:>18}  {:>18}  {:>4}  {:>18}  {:<16}  {:>8}",
        "seq", "cpu", "pc", "phys_addr", "virt_addr", "size", "value", "device", "offset"
    );
    if svd.is_some() {
        header.push_str(&format!("  {:<24}", "register"));
    }
    if !symbols.is_empty() {
        header.push_str("  function");
    }
    if lines {
        header.push_str("  line");
    }
    if svd.is_some() {
        header.push_str("  decoded");
    }
    writeln!(out, "{}", header.trim_end())?;
    let mut addresses = Vec::new();
    for event in reader.by_ref().take(head.unwrap_or(usize::MAX)) {
        let e = event?;
        let phys = e
            .phys_addr
            .map_or_else(|| "-".into(), |p| address_text(e.space, p));
        let mut row = format!(
            "{:>8}  {:>3}  {}  {:>10}  {:>18}  {:>18}  {:>4}  {:>18}  {:<16}  {:>8}",
            e.seq,
            e.cpu,
            e.access,
            format!("{:#x}", e.guest_pc),
            phys,
            format!("{:#x}", e.virt_addr),
            e.size,
            format!("{:#x}", e.value),
            device_name(&devices, e.device),
            format!("{:#x}", e.offset),
        );
        let address = register_address(&e);
        let register = svd.and_then(|svd| svd.register(address));
        if svd.is_some() {
            addresses.push(address);
            let name = register.map_or("-", |r| r.name.as_str());
            row.push_str(&format!("  {name:<24}"));
        }
        if !symbols.is_empty() {
            row.push_str("  ");
            row.push_str(&symbols.describe(e.guest_pc));
        }
        if lines {
            row.push_str("  ");
            row.push_str(symbols.line(e.guest_pc).as_deref().unwrap_or("-"));
        }
        if svd.is_some() {
            let decoded = register.map(|r| r.decode(e.value)).unwrap_or_default();
            row.push_str("  ");
            row.push_str(if decoded.is_empty() { "-" } else { &decoded });
        }
        writeln!(out, "{}", row.trim_end())?;
    }
    if let Some(svd) = svd {
        svd.warn_unless_covering(addresses.into_iter());
    }
    Ok(())
}

/// One register's accesses.
#[derive(Default)]
struct Register {
    /// The register's address (phys_addr of an access to it).
    address: u64,
    reads: u64,
    writes: u64,
    values: HashMap<u64, u64, BuildHasherDefault<MulHasher>>,
    pcs: FastSet,
}

impl Register {
    fn merge(&mut self, other: Register) {
        if self.reads + self.writes == 0 {
            self.address = other.address;
        }
        self.reads += other.reads;
        self.writes += other.writes;
        for (value, count) in other.values {
            *self.values.entry(value).or_default() += count;
        }
        self.pcs.extend(other.pcs);
    }
}

/// `registers`: per device and offset, reads, writes, the most frequent values, PCs.
/// Scans the columns it needs on every core.
/// With an SVD file, each register's name follows its offset, and its most frequent
/// values are decoded into fields on the lines below it (`  0x4 -> ENABLE=Enabled`).
pub fn registers(
    paths: &[PathBuf],
    only: Option<&str>,
    symbols: &Symbols,
    svd: Option<&SvdMap>,
    out: &mut impl Write,
) -> Result<()> {
    let devices = Arc::new(DeviceTable::new());
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let mut wanted = Wanted::default();
    wanted.value = true;
    // Per thread: (device slot, offset) -> register; and per slot whether it is shown.
    type Partial = (
        HashMap<(usize, u64), Register, BuildHasherDefault<MulHasher>>,
        Vec<Option<bool>>,
    );
    let partials = mmio_export::scan(
        paths,
        wanted,
        threads,
        &devices,
        Partial::default,
        |(registers, shown), columns| {
            for row in 0..columns.len() {
                let id = columns.device[row];
                let slot = slot(id, columns.space[row]);
                if slot >= shown.len() {
                    shown.resize(slot + 1, None);
                }
                let show = *shown[slot].get_or_insert_with(|| {
                    only.is_none_or(|wanted| wanted == device_name(&devices, id))
                });
                if !show {
                    continue;
                }
                let register = registers.entry((slot, columns.offset[row])).or_default();
                match columns.access[row] {
                    Access::Write => register.writes += 1,
                    Access::Read | Access::Fetch => register.reads += 1,
                }
                *register.values.entry(columns.value[row]).or_default() += 1;
                register.pcs.insert(columns.guest_pc[row]);
                register.address = columns.address[row];
            }
        },
    )?;
    // Devices of one name (a board's UARTs) share their rows, as the name is shown.
    let mut table: BTreeMap<(String, u64), Register> = BTreeMap::new();
    for (registers, _) in partials {
        for ((slot, offset), register) in registers {
            let name = device_name(&devices, device_of(slot));
            table.entry((name, offset)).or_default().merge(register);
        }
    }
    // With symbols, the functions touching each register replace its PCs.
    let last_column = if symbols.is_empty() {
        "pcs"
    } else {
        "functions"
    };
    let register_column = |name: &str| match svd {
        Some(_) => format!("  {name:<24}"),
        None => String::new(),
    };
    writeln!(
        out,
        "{:<16}  {:>8}{}  {:>7}  {:>7}  {:>7}  {:<40}  {last_column}",
        "device",
        "offset",
        register_column("register"),
        "reads",
        "writes",
        "values",
        "most frequent values (count)"
    )?;
    for ((device, offset), register) in &table {
        let mut values: Vec<(u64, u64)> = register.values.iter().map(|(v, n)| (*v, *n)).collect();
        values.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let top: Vec<String> = values
            .iter()
            .take(3)
            .map(|(value, count)| format!("{value:#x}({count})"))
            .collect();
        let mut pcs: Vec<u64> = register.pcs.iter().copied().collect();
        pcs.sort_unstable();
        let mut pcs: Vec<String> = pcs
            .iter()
            .map(|&pc| match symbols.function_name(pc) {
                _ if symbols.is_empty() => format!("{pc:#x}"),
                Some(name) => name.to_string(),
                None => format!("{pc:#x}"),
            })
            .collect();
        // Several PCs of one function name it once, in PC order.
        let mut seen = std::collections::HashSet::new();
        pcs.retain(|name| seen.insert(name.clone()));
        let svd_register = svd.and_then(|svd| svd.register(register.address));
        writeln!(
            out,
            "{:<16}  {:>8}{}  {:>7}  {:>7}  {:>7}  {:<40}  {}",
            device,
            format!("{offset:#x}"),
            register_column(svd_register.map_or("-", |r| r.name.as_str())),
            register.reads,
            register.writes,
            register.values.len(),
            top.join(" "),
            pcs.join(" ")
        )?;
        if let Some(svd_register) = svd_register {
            for (value, _) in values.iter().take(3) {
                let decoded = svd_register.decode(*value);
                if !decoded.is_empty() {
                    writeln!(out, "    {value:#x} -> {decoded}")?;
                }
            }
        }
    }
    if let Some(svd) = svd {
        svd.warn_unless_covering(table.values().map(|r| r.address));
    }
    Ok(())
}

/// The name columns `convert` adds: `function` from symbol files, `register` from an
/// SVD file.
pub struct ConvertNames {
    functions: Functions,
    svd: Option<SvdMap>,
    /// Whether an event fell in a peripheral of the SVD file.
    svd_covers: AtomicBool,
}

impl ConvertNames {
    /// Names from what the user gave (either may be empty).
    pub fn new(symbols: Symbols, svd: Option<SvdMap>) -> ConvertNames {
        ConvertNames {
            functions: symbols.into_functions(),
            svd,
            svd_covers: AtomicBool::new(false),
        }
    }
}

impl Annotate for ConvertNames {
    fn columns(&self) -> NameColumns {
        let mut columns = NameColumns::default();
        if !self.functions.is_empty() {
            columns = columns.with_function();
        }
        if self.svd.is_some() {
            columns = columns.with_register();
        }
        columns
    }

    fn function(&self, event: &MmioEvent) -> Option<&str> {
        self.functions.function_name(event.guest_pc)
    }

    fn register(&self, event: &MmioEvent) -> Option<&str> {
        let svd = self.svd.as_ref()?;
        let address = register_address(event);
        if !self.svd_covers.load(Ordering::Relaxed) && svd.peripheral(address).is_some() {
            self.svd_covers.store(true, Ordering::Relaxed);
        }
        svd.register(address).map(|r| r.name.as_str())
    }
}

/// `convert`: any format to any format (a file, or a directory of parts), optionally
/// filtered; several inputs become one trace, numbered anew; with `names`' columns
/// when it has any.
pub fn convert(
    inputs: &[PathBuf],
    output: &Path,
    options: &OutputOptions,
    run: Option<String>,
    filter: Option<&str>,
    names: ConvertNames,
    out: &mut impl Write,
) -> Result<()> {
    let filter = Filter::parse(filter.unwrap_or("")).context("bad --filter")?;
    let mut reader = open(inputs)?;
    let devices = reader.devices().clone();
    let info = reader.info().cloned().unwrap_or_default();
    let info = match run {
        Some(run) => info.with_run(run),
        None => info,
    };
    // Without --symbols and --svd the annotator names no column: a plain output.
    let names = Arc::new(names);
    let mut writer = create_annotated_output(output, options, info, names.clone())?;
    let mut batch = Vec::with_capacity(4096);
    let (mut kept, mut seq) = (0u64, 0u64);
    let mut progress = Progress::new("converting");
    for event in reader.by_ref() {
        let event = event?;
        progress.tick();
        let device = devices.get(event.device);
        if !filter.matches(&event, device.as_ref()) {
            continue;
        }
        batch.push(MmioEvent { seq, ..event });
        seq += 1;
        if batch.len() == batch.capacity() {
            writer.write(&batch, &devices).context("write failed")?;
            kept += batch.len() as u64;
            batch.clear();
        }
    }
    writer.write(&batch, &devices).context("write failed")?;
    kept += batch.len() as u64;
    writer
        .finish(&devices)
        .context("cannot finish the output")?;
    if let Some(svd) = &names.svd {
        if kept > 0 && !names.svd_covers.load(Ordering::Relaxed) {
            svd.warn_covers_none();
        }
    }
    writeln!(out, "wrote {kept} events to {}", output.display())?;
    Ok(())
}

/// What is compared between two traces' events.
fn key(devices: &DeviceTable, e: &MmioEvent) -> (Access, u64, Option<String>, u8, u64, String) {
    (
        e.access,
        e.guest_pc,
        e.phys_addr.map(|p| address_text(e.space, p)),
        e.size,
        e.value,
        device_name(devices, e.device),
    )
}

/// `diff`: the first diverging event and per-device count differences; 0 when equal,
/// 1 when different.
pub fn diff(a: &Path, b: &Path, symbols: &Symbols, out: &mut impl Write) -> Result<ExitCode> {
    let (mut left, mut right) = (open(&[a.to_path_buf()])?, open(&[b.to_path_buf()])?);
    let (left_devices, right_devices) = (left.devices().clone(), right.devices().clone());
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut first: Option<String> = None;
    let mut index = 0u64;
    let mut progress = Progress::new("comparing");
    loop {
        progress.tick();
        let (l, r) = (left.next().transpose()?, right.next().transpose()?);
        if l.is_none() && r.is_none() {
            break;
        }
        if let Some(e) = &l {
            counts
                .entry(device_name(&left_devices, e.device))
                .or_default()
                .0 += 1;
        }
        if let Some(e) = &r {
            counts
                .entry(device_name(&right_devices, e.device))
                .or_default()
                .1 += 1;
        }
        if first.is_none() {
            let lk = l.as_ref().map(|e| key(&left_devices, e));
            let rk = r.as_ref().map(|e| key(&right_devices, e));
            if lk != rk {
                let describe = |k: Option<(Access, u64, Option<String>, u8, u64, String)>| {
                    match k {
                    Some((access, pc, phys, size, value, device)) => format!(
                        "{access} pc={pc:#x}{} addr={} size={size} value={value:#x} device={device}",
                        if symbols.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", symbols.describe(pc))
                        },
                        phys.unwrap_or_else(|| "-".into())
                    ),
                    None => "(trace ended)".into(),
                }
                };
                first = Some(format!(
                    "first difference at event {index}:\n  {}: {}\n  {}: {}",
                    a.display(),
                    describe(lk),
                    b.display(),
                    describe(rk)
                ));
            }
        }
        index += 1;
    }
    let Some(first) = first else {
        writeln!(out, "traces are equal ({index} events)")?;
        return Ok(ExitCode::SUCCESS);
    };
    writeln!(out, "{first}")?;
    writeln!(
        out,
        "events per device ({} / {}):",
        a.display(),
        b.display()
    )?;
    for (device, (l, r)) in &counts {
        let mark = if l == r { "" } else { "  <- differs" };
        writeln!(out, "  {device:<16} {l:>10} {r:>10}{mark}")?;
    }
    Ok(ExitCode::from(1))
}
