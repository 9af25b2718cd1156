//! `mmio-trace`: trace firmware under QEMU and look at the traces.

mod inspect;
mod plot;
mod progress;
mod qemu;
mod qmp;
mod signals;
mod summary;
mod svd;
mod symbols;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

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
    /// Every command reading traces takes several files and directories (a directory's
    /// trace files, parts of a rotated trace among them) and reads them as one trace.
    ///
    /// Example:
    ///   mmio-trace summary trace.parquet
    ///   mmio-trace summary --by file traces/
    Summary {
        /// Trace files (.parquet, .jsonl, .ndjson, .json) and directories of them.
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// One summary per file instead of one for all.
        #[arg(long, value_enum)]
        by: Option<SummaryBy>,
        #[command(flatten)]
        symbols: SymbolArgs,
        #[command(flatten)]
        svd: SvdArgs,
    },
    /// Print events as a table.
    ///
    /// Example:
    ///   mmio-trace show trace.parquet --head 20
    Show {
        /// Trace files and directories.
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Only the first N events.
        #[arg(long)]
        head: Option<usize>,
        #[command(flatten)]
        symbols: SymbolArgs,
        #[command(flatten)]
        svd: SvdArgs,
        /// With --symbols: a `line` column, file:line from the ELF files' DWARF.
        #[arg(long, requires = "symbols")]
        lines: bool,
    },
    /// Per device and register (offset): reads, writes, most frequent values, PCs.
    ///
    /// Example:
    ///   mmio-trace registers trace.parquet --device pl011
    Registers {
        /// Trace files and directories.
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// Only this device.
        #[arg(long)]
        device: Option<String>,
        #[command(flatten)]
        symbols: SymbolArgs,
        #[command(flatten)]
        svd: SvdArgs,
    },
    /// Convert between formats (by extension), optionally keeping only some events.
    /// Several inputs become one trace; an output ending with / is a directory of parts.
    ///
    /// Example:
    ///   mmio-trace convert trace.parquet uart.jsonl --filter devices=pl011,access=w
    ///   mmio-trace convert big.parquet parts/ --rotate 1M
    Convert {
        /// The inputs (files, directories), then the output.
        #[arg(required = true, num_args = 2.., value_name = "INPUT... OUTPUT")]
        paths: Vec<PathBuf>,
        /// Events per part of a directory output (k and M suffixes allowed).
        #[arg(long, value_parser = parse_rotate)]
        rotate: Option<u64>,
        /// Format of a directory output's parts: parquet (default) or jsonl.
        #[arg(long)]
        format: Option<mmio_export::Format>,
        /// The output's run name (default: the first input's, where its format stores
        /// one, else a new UUID). Several runs converted into one output become one run.
        #[arg(long)]
        run: Option<String>,
        /// mmio-core filter syntax: devices=a+b,ranges=0x..-0x..,access=r|w,kinds=...
        #[arg(long)]
        filter: Option<String>,
        #[command(flatten)]
        symbols: SymbolArgs,
        #[command(flatten)]
        svd: SvdArgs,
    },
    /// Compare two traces: the first diverging event and per-device counts.
    /// Exit status 0 when equal, 1 when different, 2 on error.
    ///
    /// Example:
    ///   mmio-trace diff run1.parquet run2.parquet
    Diff {
        /// The first trace (a file or a directory).
        a: PathBuf,
        /// The second.
        b: PathBuf,
        #[command(flatten)]
        symbols: SymbolArgs,
    },
    /// Draw a timeline, one lane per device or register, reads and writes apart (.svg
    /// or .png).
    ///
    /// Example:
    ///   mmio-trace plot trace.parquet -o timeline.png
    ///   mmio-trace plot trace.parquet -o regs.svg --by register --svd chip.svd --symbols fw.elf
    Plot {
        /// Trace files and directories.
        #[arg(required = true, num_args = 1..)]
        files: Vec<PathBuf>,
        /// The picture to write: .svg or .png.
        #[arg(short, long)]
        output: PathBuf,
        /// One lane per device (default) or per register.
        #[arg(long, value_enum, default_value_t)]
        by: plot::PlotBy,
        #[command(flatten)]
        symbols: SymbolArgs,
        #[command(flatten)]
        svd: SvdArgs,
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

/// `--symbols`, shared by the commands that show PCs.
#[derive(clap::Args, Debug, Default)]
struct SymbolArgs {
    /// Name PCs from this file: an ELF (firmware, vmlinux) or a System.map /
    /// /proc/kallsyms copy. `function+0xoff` in tables, functions per register and
    /// device, on hover in plot's SVG, a `function` column in convert's output. May be
    /// given several times.
    #[arg(long = "symbols", value_name = "FILE")]
    symbols: Vec<PathBuf>,
}

impl SymbolArgs {
    fn load(&self, lines: bool) -> Result<symbols::Symbols> {
        symbols::Symbols::load(&self.symbols, lines)
    }
}

/// `--svd`, shared by the commands that show registers.
#[derive(clap::Args, Debug, Default)]
struct SvdArgs {
    /// Name each access's peripheral and register (`UART0.TXD`) from this CMSIS-SVD
    /// file and decode values into fields; plot --by register names its lanes, convert
    /// writes a `register` column.
    #[arg(long = "svd", value_name = "FILE")]
    svd: Option<PathBuf>,
}

impl SvdArgs {
    fn load(&self) -> Result<Option<svd::SvdMap>> {
        self.svd.as_deref().map(svd::SvdMap::load).transpose()
    }
}

/// `--by` of `summary`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum SummaryBy {
    /// One summary per trace file.
    File,
}

/// `--rotate`: a number of events, at least 1, with `k` or `M` allowed.
pub(crate) fn parse_rotate(text: &str) -> Result<u64, String> {
    mmio_export::parse_count(text)
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            format!("{text:?} is not a number of events, at least 1 (k and M suffixes allowed)")
        })
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
        Command::Summary {
            files,
            json,
            by,
            symbols,
            svd,
        } => {
            let names = summary::Names {
                symbols: symbols.load(false)?,
                svd: svd.load()?,
            };
            match by {
                None => {
                    summary::write(&summary::Summary::read(&files, &names)?, json, &mut stdout)?
                }
                Some(SummaryBy::File) => summary::write_by_file(&files, &names, json, &mut stdout)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show {
            files,
            head,
            symbols,
            svd,
            lines,
        } => {
            let symbols = symbols.load(lines)?;
            inspect::show(
                &files,
                head,
                &symbols,
                svd.load()?.as_ref(),
                lines,
                &mut stdout,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Registers {
            files,
            device,
            symbols,
            svd,
        } => {
            let symbols = symbols.load(false)?;
            let svd = svd.load()?;
            inspect::registers(
                &files,
                device.as_deref(),
                &symbols,
                svd.as_ref(),
                &mut stdout,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Convert {
            mut paths,
            rotate,
            format,
            run,
            filter,
            symbols,
            svd,
        } => {
            let output = paths.pop().context("no output given")?;
            let mut options = mmio_export::OutputOptions::default();
            options.rotate = rotate;
            options.format = format;
            let names = inspect::ConvertNames::new(symbols.load(false)?, svd.load()?);
            inspect::convert(
                &paths,
                &output,
                &options,
                run,
                filter.as_deref(),
                names,
                &mut stdout,
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff { a, b, symbols } => {
            inspect::diff(&a, &b, &symbols.load(false)?, &mut stdout)
        }
        Command::Plot {
            files,
            output,
            by,
            symbols,
            svd,
        } => {
            let symbols = symbols.load(false)?;
            let svd = svd.load()?;
            let options = plot::PlotOptions {
                by,
                symbols: &symbols,
                svd: svd.as_ref(),
            };
            plot::plot(&files, &output, &options)?;
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
