//! `mmio-trace qemu`: dump the memory map, run QEMU with the plugin, summarise.

use std::io::{IsTerminal, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::qmp::dump_memory_map;
use crate::signals::Forwarder;
use crate::summary::{Names, Summary};

/// The plugin's file name, as cargo builds it.
const PLUGIN_FILE: &str = "libmmio_trace_qemu.so";

#[derive(Args, Debug)]
pub struct QemuArgs {
    /// Trace file to write; its extension picks the format (.parquet, .jsonl, .ndjson, .json).
    /// A path ending with / is a directory of parts (part-00000.parquet, ...), each
    /// finished as soon as it holds --rotate events.
    #[arg(short, long, default_value = "mmio-trace.parquet")]
    out: PathBuf,
    /// Events per part of a directory output (k and M suffixes allowed; default 16M).
    #[arg(long, value_parser = crate::parse_rotate)]
    rotate: Option<u64>,
    /// Format of a directory output's parts: parquet (default) or jsonl.
    #[arg(long)]
    format: Option<mmio_export::Format>,
    /// The run's name, stored in the `run` column of every event (default: a random UUID).
    #[arg(long)]
    run: Option<String>,
    /// Keep only these devices ('+'-separated names), e.g. pl011+v7m_systick.
    #[arg(long)]
    devices: Option<String>,
    /// Keep only these physical address ranges, e.g. 0x40000000-0x4000ffff+0xe000e000-0xe000efff.
    #[arg(long)]
    ranges: Option<String>,
    /// Keep only reads (r) or writes (w).
    #[arg(long)]
    access: Option<String>,
    /// Keep only these device kinds, e.g. unimplemented+unassigned.
    #[arg(long)]
    kinds: Option<String>,
    /// Record each access's instruction count (slower).
    #[arg(long)]
    icount: bool,
    /// The plugin (default: $MMIO_TRACE_QEMU_PLUGIN, else libmmio_trace_qemu.so beside this program).
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// Write the memory map QEMU reported to this file as well.
    #[arg(long)]
    save_mtree: Option<PathBuf>,
    /// The QEMU command line: the system emulator and its arguments.
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<String>,
}

pub fn run(args: QemuArgs, stdout: &mut impl Write) -> Result<ExitCode> {
    let plugin = find_plugin(args.plugin.as_deref())?;
    let (qemu, qemu_args) = args
        .command
        .split_first()
        .context("no QEMU command after --")?;
    let out = args.out.to_string_lossy();
    let run = args.run.as_deref().unwrap_or_default();
    for (name, value) in [("--out", &*out), ("--run", run)] {
        if value.contains(',') {
            bail!("{name} {value}: QEMU splits plugin arguments on ',', so it cannot contain one");
        }
    }
    // Fail on a bad output before the memory map is even asked for.
    let mut output = mmio_export::OutputOptions::default();
    output.rotate = args.rotate;
    output.format = args.format;
    mmio_export::check_output(&args.out, &output)?;

    let signals = Forwarder::install()?;
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let mtree = dump_memory_map(qemu, qemu_args, scratch.path())?;
    if let Some(signal) = signals.received() {
        bail!("stopped by signal {signal} before the guest started: nothing was traced");
    }
    let mtree_path = scratch.path().join("mtree.txt");
    std::fs::write(&mtree_path, &mtree)?;
    if let Some(path) = &args.save_mtree {
        std::fs::write(path, &mtree).with_context(|| format!("cannot write {}", path.display()))?;
    }

    // A monitor of the plugin's own, to fetch a fresh map from when the guest maps or
    // moves a device.
    let plugin_qmp = scratch.path().join("plugin-qmp.sock");
    let mut plugin_arg = format!(
        "{},out_log={},mtree={},qmp={}",
        plugin.display(),
        args.out.display(),
        mtree_path.display(),
        plugin_qmp.display()
    );
    if let Some(machine) = machine_name(qemu_args) {
        plugin_arg.push_str(&format!(",machine={machine}"));
    }
    let rotate = args.rotate.map(|n| n.to_string());
    let format = args.format.map(|f| f.extension().to_string());
    for (key, value) in [
        ("rotate", &rotate),
        ("format", &format),
        ("run", &args.run),
        ("devices", &args.devices),
        ("ranges", &args.ranges),
        ("access", &args.access),
        ("kinds", &args.kinds),
    ] {
        if let Some(value) = value {
            plugin_arg.push_str(&format!(",{key}={value}"));
        }
    }
    if args.icount {
        plugin_arg.push_str(",icount=on");
    }
    if std::io::stderr().is_terminal() {
        plugin_arg.push_str(",progress=on");
    }

    let mut child = Command::new(qemu)
        .args(qemu_args)
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", plugin_qmp.display()))
        .arg("-plugin")
        .arg(&plugin_arg)
        .spawn()
        .with_context(|| format!("cannot run {qemu}"))?;
    signals.forward_to(&child);
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for {qemu}"))?;
    drop(signals);

    if !args.out.exists() || mmio_export::trace_files(std::slice::from_ref(&args.out)).is_err() {
        bail!(
            "{} exited ({status}) without writing {}",
            qemu,
            args.out.display()
        );
    }
    let summary = Summary::read(std::slice::from_ref(&args.out), &Names::default())?;
    writeln!(stdout, "trace: {}", args.out.display())?;
    summary.write_table(stdout)?;
    Ok(exit_code(status))
}

/// QEMU's status as this program's: its exit code, or 128 + the signal that killed it
/// (as a shell reports it).
fn exit_code(status: ExitStatus) -> ExitCode {
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn find_plugin(given: Option<&Path>) -> Result<PathBuf> {
    let candidate = match given {
        Some(path) => path.to_path_buf(),
        None => match std::env::var_os("MMIO_TRACE_QEMU_PLUGIN") {
            Some(path) => PathBuf::from(path),
            None => std::env::current_exe()?
                .parent()
                .map(|dir| dir.join(PLUGIN_FILE))
                .unwrap_or_else(|| PathBuf::from(PLUGIN_FILE)),
        },
    };
    if !candidate.is_file() {
        bail!(
            "QEMU plugin not found at {} (build it with `cargo build -p mmio-qemu`, or pass --plugin)",
            candidate.display()
        );
    }
    Ok(candidate.canonicalize()?)
}

/// The board named by `-M NAME` / `-machine NAME,...` / `-machine type=NAME`.
fn machine_name(args: &[String]) -> Option<String> {
    let position = args.iter().position(|a| a == "-M" || a == "-machine")?;
    let value = args.get(position + 1)?;
    value
        .split(',')
        .find_map(|part| match part.split_once('=') {
            Some(("type", name)) => Some(name.to_string()),
            Some(_) => None,
            None => Some(part.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn finds_the_machine_name() {
        assert_eq!(
            machine_name(&strings(&["-M", "lm3s6965evb", "-kernel", "fw.elf"])).as_deref(),
            Some("lm3s6965evb")
        );
        assert_eq!(
            machine_name(&strings(&["-machine", "virt,highmem=off"])).as_deref(),
            Some("virt")
        );
        assert_eq!(
            machine_name(&strings(&["-machine", "highmem=off,type=virt"])).as_deref(),
            Some("virt")
        );
        assert_eq!(machine_name(&strings(&["-kernel", "fw.elf"])), None);
    }
}
