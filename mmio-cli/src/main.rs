//! `mmio-trace`: trace firmware under QEMU and look at the traces.

mod inspect;
mod plot;
mod progress;
mod qemu;
mod qmp;
mod signals;
mod summary;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mmio-trace",
    version,
    about = "Record and inspect the MMIO accesses of emulated firmware"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run QEMU with the tracing plugin and print a per-device summary.
    ///
    /// Example:
    ///   mmio-trace qemu --out trace.parquet -- qemu-system-arm -M lm3s6965evb -kernel fw.elf -nographic
    Qemu(qemu::QemuArgs),
    /// Print a per-device table of a trace: reads, writes, registers, PCs.
    ///
    /// Example:
    ///   mmio-trace summary trace.parquet
    Summary {
        /// Trace file (.parquet, .jsonl, .ndjson, .json).
        file: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print events as a table.
    ///
    /// Example:
    ///   mmio-trace show trace.parquet --head 20
    Show {
        file: PathBuf,
        /// Only the first N events.
        #[arg(long)]
        head: Option<usize>,
    },
    /// Per device and register (offset): reads, writes, most frequent values, PCs.
    ///
    /// Example:
    ///   mmio-trace registers trace.parquet --device pl011
    Registers {
        file: PathBuf,
        /// Only this device.
        #[arg(long)]
        device: Option<String>,
    },
    /// Convert between formats (by extension), optionally keeping only some events.
    ///
    /// Example:
    ///   mmio-trace convert trace.parquet uart.jsonl --filter devices=pl011,access=w
    Convert {
        input: PathBuf,
        output: PathBuf,
        /// mmio-core filter syntax: devices=a+b,ranges=0x..-0x..,access=r|w,kinds=...
        #[arg(long)]
        filter: Option<String>,
    },
    /// Compare two traces: the first diverging event and per-device counts.
    /// Exit status 0 when equal, 1 when different, 2 on error.
    ///
    /// Example:
    ///   mmio-trace diff run1.parquet run2.parquet
    Diff { a: PathBuf, b: PathBuf },
    /// Draw a timeline, one lane per device, reads and writes apart (.svg or .png).
    ///
    /// Example:
    ///   mmio-trace plot trace.parquet -o timeline.png
    Plot {
        file: PathBuf,
        /// The picture to write: .svg or .png.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Rebuild a valid Parquet trace from the FILE.parquet.partial a killed run left.
    ///
    /// Example:
    ///   mmio-trace recover trace.parquet.partial      # writes trace.parquet
    Recover {
        /// The partial file.
        partial: PathBuf,
        /// Where to write (default: the name without `.partial`).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            // A closed pipe (`| head`) is not an error worth reporting.
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            let _ = writeln!(std::io::stderr(), "mmio-trace: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Qemu(args) => qemu::run(args, &mut stdout),
        Command::Summary { file, json } => {
            let summary = summary::Summary::read(&file)?;
            if json {
                serde_json::to_writer_pretty(&mut stdout, &summary)?;
                writeln!(stdout)?;
            } else {
                summary.write_table(&mut stdout)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { file, head } => {
            inspect::show(&file, head, &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Registers { file, device } => {
            inspect::registers(&file, device.as_deref(), &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Convert {
            input,
            output,
            filter,
        } => {
            inspect::convert(&input, &output, filter.as_deref(), &mut stdout)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff { a, b } => inspect::diff(&a, &b, &mut stdout),
        Command::Plot { file, output } => {
            plot::plot(&file, &output)?;
            writeln!(stdout, "wrote {}", output.display())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Recover { partial, output } => {
            let output = output.unwrap_or_else(|| mmio_export::default_recovery_output(&partial));
            let recovered = mmio_export::recover_parquet(&partial, &output)
                .with_context(|| format!("cannot recover {}", partial.display()))?;
            writeln!(
                stdout,
                "recovered {} events in {} row groups into {}",
                recovered.events,
                recovered.row_groups,
                recovered.output.display()
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
