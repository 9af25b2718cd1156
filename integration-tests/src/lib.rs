//! Helpers for the end-to-end tests: build the plugin, the CLI and the test firmware,
//! run the real emulator, read traces back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use mmio_core::{DeviceKind, MmioEvent};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests lives in the workspace")
        .to_path_buf()
}

/// Paths of the freshly built plugin and `mmio-trace` binary.
pub struct Tools {
    pub plugin: PathBuf,
    pub cli: PathBuf,
}

/// Builds the plugin and the CLI once per test process, with the profile the tests
/// themselves were built with, so a test never runs a stale artifact.
pub fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Tools> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = !cfg!(debug_assertions);
        let mut command = Command::new(cargo);
        // With the test-only fault injection (MMIO_TRACE_PANIC_AT), which no release
        // build has.
        command.current_dir(workspace_root()).args([
            "build",
            "-q",
            "-p",
            "mmio-qemu",
            "-p",
            "mmio-cli",
            "--features",
            "mmio-qemu/fault-injection",
        ]);
        if release {
            command.arg("--release");
        }
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "building the plugin and the CLI failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"))
            .join(if release { "release" } else { "debug" });
        Tools {
            plugin: target.join("libmmio_trace_qemu.so"),
            cli: target.join("mmio-trace"),
        }
    })
}

/// Firmware built from `firmware/<board>` (the demo firmware too) with the Debian ARM
/// toolchain.
pub struct Firmware {
    pub elf: PathBuf,
    /// Global symbols: every MMIO access of the firmware has a label at its PC.
    pub symbols: HashMap<String, u64>,
    _dir: tempfile::TempDir,
}

impl Firmware {
    /// Builds `firmware/<board>` with its `build.sh` (the demo uses the same script);
    /// `defines` become `-D` flags.
    pub fn build(board: &str, defines: &[&str]) -> Firmware {
        let flags: Vec<String> = defines.iter().map(|d| format!("-D{d}")).collect();
        Firmware::build_with_flags(board, &flags)
    }

    /// Builds `firmware/<board>` with extra compiler flags (e.g. `-g`).
    pub fn build_with_flags(board: &str, flags: &[String]) -> Firmware {
        let dir = tempfile::tempdir().expect("temp dir");
        let elf = dir.path().join("fw.elf");
        run_ok(
            Command::new("bash")
                .arg(
                    workspace_root()
                        .join("firmware")
                        .join(board)
                        .join("build.sh"),
                )
                .arg(&elf)
                .args(flags),
            "the firmware build (needs gcc-arm-none-eabi)",
        );
        let nm = run_ok(
            Command::new("arm-none-eabi-nm").arg(&elf),
            "arm-none-eabi-nm",
        );
        let symbols = String::from_utf8_lossy(&nm.stdout)
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                let address = u64::from_str_radix(parts.next()?, 16).ok()?;
                let _kind = parts.next()?;
                Some((parts.next()?.to_string(), address))
            })
            .collect();
        Firmware {
            elf,
            symbols,
            _dir: dir,
        }
    }

    /// The Cortex-M3 firmware for lm3s6965evb.
    pub fn lm3s6965evb(defines: &[&str]) -> Firmware {
        Firmware::build("lm3s6965evb", defines)
    }

    /// The address of `label`, e.g. the PC of a labelled MMIO access.
    pub fn pc(&self, label: &str) -> u64 {
        *self
            .symbols
            .get(label)
            .unwrap_or_else(|| panic!("firmware has no symbol {label}"))
    }
}

pub fn run_ok(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// QEMU arguments that run `firmware` on lm3s6965evb deterministically and let it exit
/// through semihosting.
pub fn lm3s6965evb_args(firmware: &Firmware) -> Vec<String> {
    [
        "-M",
        "lm3s6965evb",
        "-kernel",
        firmware.elf.to_str().expect("utf-8 path"),
        "-display",
        "none",
        "-serial",
        "null",
        "-semihosting-config",
        "enable=on,target=native",
        "-icount",
        "shift=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The `info mtree -f` dump of `board` kept as an mmio-frontend fixture (taken from this
/// QEMU), for the plugin's `mtree=` argument.
pub fn mtree_fixture(board: &str) -> PathBuf {
    workspace_root()
        .join("mmio-frontend/tests/fixtures")
        .join(format!("{board}.mtree"))
}

/// The `-plugin` argument that traces into `out` with `board`'s memory map; `extra`
/// is appended as is (`,icount=on`...).
pub fn plugin_arg(out: &Path, board: &str, extra: &str) -> String {
    format!(
        "{},out_log={},mtree={}{extra}",
        tools().plugin.display(),
        out.display(),
        mtree_fixture(board).display()
    )
}

/// Runs `qemu` (a command with the guest's arguments and no plugin) once, with one
/// copy of the plugin per entry of `variants`, each tracing into its own
/// `DIR/<index>.parquet` with `mtree` and the variant's arguments (`,instrument=all`),
/// and returns each copy's events in that order. QEMU loads a plugin path only once,
/// so every copy after the first is a file of its own.
pub fn trace_variants_in_one_run(
    qemu: &mut Command,
    mtree: &Path,
    variants: &[&str],
    dir: &Path,
) -> Vec<Vec<Seen>> {
    let outputs: Vec<PathBuf> = (0..variants.len())
        .map(|index| dir.join(format!("{index}.parquet")))
        .collect();
    for (index, (variant, out)) in variants.iter().zip(&outputs).enumerate() {
        let plugin = if index == 0 {
            tools().plugin.clone()
        } else {
            let copy = dir.join(format!("libmmio_trace_qemu_{index}.so"));
            std::fs::copy(&tools().plugin, &copy).expect("copy the plugin");
            copy
        };
        qemu.arg("-plugin").arg(format!(
            "{},out_log={},mtree={}{variant}",
            plugin.display(),
            out.display(),
            mtree.display()
        ));
    }
    run_ok(qemu, "qemu-system-arm with several copies of the plugin");
    outputs.iter().map(|out| read_trace(out)).collect()
}

/// An event as the tests compare it: device by name and kind instead of id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub event: MmioEvent,
    pub device: Option<String>,
    pub kind: Option<DeviceKind>,
}

/// Reads every event of a trace file.
pub fn read_trace(path: &Path) -> Vec<Seen> {
    let mut reader = mmio_export::open_trace(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let events: Vec<MmioEvent> = reader
        .by_ref()
        .map(|e| e.unwrap_or_else(|e| panic!("bad event: {e}")))
        .collect();
    let devices = reader.devices();
    events
        .into_iter()
        .map(|event| Seen {
            device: devices.get(event.device).map(|d| d.name.to_string()),
            kind: devices.kind(event.device),
            event,
        })
        .collect()
}

/// Runs `integration-tests/python/check_trace.py` on `trace` (DuckDB, pandas, pyarrow).
pub fn python_check(trace: &Path, expected_counts: &[(Option<&str>, u64)], max_value: u64) {
    let counts: serde_json::Map<String, serde_json::Value> = expected_counts
        .iter()
        .map(|(device, count)| (device.unwrap_or("null").to_string(), (*count).into()))
        .collect();
    run_ok(
        Command::new("python3")
            .arg(workspace_root().join("integration-tests/python/check_trace.py"))
            .arg(trace)
            .arg(serde_json::Value::Object(counts).to_string())
            .arg(max_value.to_string()),
        "python3 check_trace.py (needs duckdb, pandas, pyarrow: scripts/setup-debian.sh)",
    );
}

/// Runs the `mmio-trace` CLI with `args` and returns what it did.
pub fn mmio_trace(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(&tools().cli)
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("mmio-trace runs")
}
