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
        Firmware::build_with(board, flags, "arm-none-eabi-nm")
    }

    /// Builds `firmware/<board>` with `build.sh OUT.elf ARGS...` (the board's own
    /// arguments: word size, endianness, `-D` flags) and reads its symbols with `nm`,
    /// the binutils of its architecture.
    pub fn build_with(board: &str, args: &[String], nm: &str) -> Firmware {
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
                .args(args),
            &format!("the {board} firmware build (scripts/setup-debian.sh installs its compiler)"),
        );
        let listing = run_ok(Command::new(nm).arg(&elf), nm);
        // A 32-bit ELF's addresses (MIPS nm prints kseg0 ones sign-extended).
        let elf32 = std::fs::read(&elf)
            .ok()
            .and_then(|bytes| bytes.get(4).copied())
            == Some(1);
        let symbols = String::from_utf8_lossy(&listing.stdout)
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                let address = u64::from_str_radix(parts.next()?, 16).ok()?;
                let _kind = parts.next()?;
                let address = if elf32 {
                    address & 0xffff_ffff
                } else {
                    address
                };
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
            .arg(max_value.to_string())
            .arg(mmio_export::FORMAT_VERSION.to_string()),
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

/// One line of QEMU's own `-trace memory_region_ops_read/write` log: an access a
/// device model handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuAccess {
    pub cpu: u32,
    pub write: bool,
    /// The address QEMU prints: absolute in the region's root (the system address
    /// space, the I/O space for ports, or, for a region reached through an alias such
    /// as a PCI window or an ECAM, the space the alias leads to).
    pub addr: u64,
    /// As the device returned or received it; a read may show more bits than were
    /// asked for (a flash returning both chips' data).
    pub value: u64,
    /// The size the device handled, which may differ from the guest's access.
    pub size: u8,
    pub name: String,
}

/// The vCPUs' device accesses in a `-trace memory_region_ops_*` log (QEMU 10.0.2's
/// format: `memory_region_ops_read cpu 0 mr 0x... addr 0x... value 0x... size 4 name
/// 'pl011'`); lines of `cpu -1` (QEMU's own accesses at reset) are left out.
pub fn read_qemu_trace(log: &Path) -> Vec<QemuAccess> {
    let text = std::fs::read_to_string(log)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", log.display()));
    let hex = |word: &str| u64::from_str_radix(word.trim_start_matches("0x"), 16).ok();
    text.lines()
        .filter_map(|line| {
            let rest = line.split_once("memory_region_ops_")?.1;
            let words: Vec<&str> = rest.split_whitespace().collect();
            let field = |key: &str| {
                words
                    .iter()
                    .position(|w| *w == key)
                    .and_then(|i| words.get(i + 1).copied())
            };
            let name = rest.split_once(" name '")?.1.strip_suffix('\'')?;
            Some(QemuAccess {
                cpu: field("cpu")?.parse().ok()?,
                write: match *words.first()? {
                    "write" => true,
                    "read" => false,
                    _ => return None,
                },
                addr: hex(field("addr")?)?,
                value: hex(field("value")?)?,
                size: field("size")?.parse().ok()?,
                name: name.to_string(),
            })
        })
        .collect()
}

/// The `info mtree -f` dump of the machine `program args` describe, read over QMP
/// with the machine stopped (as `mmio-trace qemu` does), saved as `dir/map.mtree`.
pub fn dump_mtree(program: &str, args: &[String], dir: &Path) -> PathBuf {
    let socket = dir.join("dump-qmp.sock");
    let mut child = Command::new(program)
        .args(args)
        .args(["-S", "-display", "none", "-qmp"])
        .arg(format!("unix:{},server=on,wait=off", socket.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut qmp = loop {
        match mmio_frontend::qmp::Qmp::connect(&socket, std::time::Duration::from_secs(30)) {
            Ok(qmp) => break qmp,
            Err(error) => {
                assert!(
                    std::time::Instant::now() < deadline
                        && child.try_wait().expect("wait").is_none(),
                    "{program}'s monitor never came up: {error}"
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    };
    let text = qmp.human("info mtree -f").expect("info mtree -f");
    // QEMU may close the monitor before its reply to `quit` is read.
    let _ = qmp.execute(&serde_json::json!({"execute": "quit"}));
    child.wait().expect("QEMU exits");
    let path = dir.join("map.mtree");
    std::fs::write(&path, text).expect("write the map");
    path
}

/// What one run of QEMU traced: one trace per plugin copy, and QEMU's own log.
pub struct TracedRun {
    /// Each plugin copy's events, in the order of the variants asked for.
    pub traces: Vec<Vec<Seen>>,
    /// QEMU's own `memory_region_ops_*` log of the run.
    pub qemu: Vec<QemuAccess>,
}

/// Runs `program args` once with one copy of the plugin per entry of `variants` (its
/// extra arguments, e.g. `",instrument=all"`), each given the machine's map (dumped
/// first) and a QMP socket of its own to follow the guest's changes to it, as
/// `mmio-trace qemu` gives them, and with QEMU's own `memory_region_ops_*` trace.
/// QEMU must exit with `status`. QEMU loads a plugin path only once, so every copy
/// after the first is a file of its own.
pub fn run_traced(
    program: &str,
    args: &[String],
    variants: &[&str],
    status: i32,
    dir: &Path,
) -> TracedRun {
    run_traced_with_console(program, args, variants, status, dir, &[], None).0
}

/// [`run_traced`] for a guest driven through its console: `args` give the guest a
/// `-serial stdio`; each `(prompt, line)` of `script` waits for `prompt` in what the
/// guest printed since the last one (a minute at most), then types `line`. A guest
/// that never ends is stopped with SIGTERM `stop_after` its start. Returns the run
/// and everything the guest printed.
pub fn run_traced_with_console(
    program: &str,
    args: &[String],
    variants: &[&str],
    status: i32,
    dir: &Path,
    script: &[(&str, &str)],
    stop_after: Option<std::time::Duration>,
) -> (TracedRun, String) {
    let mtree = dump_mtree(program, args, dir);
    let log = dir.join("qemu-trace.log");
    let mut command = Command::new(program);
    command.args(args);
    let mut outputs = Vec::new();
    for (index, variant) in variants.iter().enumerate() {
        let plugin = if index == 0 {
            tools().plugin.clone()
        } else {
            let copy = dir.join(format!("libmmio_trace_qemu_{index}.so"));
            std::fs::copy(&tools().plugin, &copy).expect("copy the plugin");
            copy
        };
        let out = dir.join(format!("{index}.parquet"));
        let socket = dir.join(format!("plugin-{index}.sock"));
        command
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", socket.display()))
            .arg("-plugin")
            .arg(format!(
                "{},out_log={},mtree={},qmp={}{variant}",
                plugin.display(),
                out.display(),
                mtree.display(),
                socket.display()
            ));
        outputs.push(out);
    }
    command
        .args(["-trace", "memory_region_ops_*", "-D"])
        .arg(&log);
    let stderr = dir.join("qemu-stderr.txt");
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&stderr).expect("create the stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = {
        let printed = printed.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = std::io::Read::read(&mut stdout, &mut buffer) {
                if read == 0 {
                    break;
                }
                printed.lock().unwrap().extend_from_slice(&buffer[..read]);
            }
        })
    };
    let console = || String::from_utf8_lossy(&printed.lock().unwrap()).into_owned();
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut seen = 0;
    for (prompt, line) in script {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let text = console();
            if let Some(at) = text[seen.min(text.len())..].find(prompt) {
                seen += at + prompt.len();
                break;
            }
            if std::time::Instant::now() > deadline || child.try_wait().expect("wait").is_some() {
                let _ = child.kill();
                panic!("{program} never printed {prompt:?}:\n{text}");
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::io::Write::write_all(&mut stdin, line.as_bytes()).expect("type into the console");
    }
    drop(stdin);
    if let Some(delay) = stop_after {
        std::thread::sleep(delay);
        run_ok(
            Command::new("kill").args(["-TERM", &child.id().to_string()]),
            "kill",
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{program} did not exit:\n{}", console());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    reader.join().expect("the console reader");
    assert_eq!(
        exit.code(),
        Some(status),
        "{program} with the plugin:\n{}\n{}",
        std::fs::read_to_string(&stderr).unwrap_or_default(),
        console()
    );
    (
        TracedRun {
            traces: outputs.iter().map(|out| read_trace(out)).collect(),
            qemu: read_qemu_trace(&log),
        },
        console(),
    )
}

/// Asserts that `trace` holds exactly the device accesses of QEMU's own log of the
/// same run, in order: vCPU, direction, region name, address, size and value.
///
/// QEMU logs what each device model handled, the plugin what the guest did, so:
/// - one event may be several lines (a device taking narrower accesses: an edid
///   region read byte by byte; an 8-byte read QEMU splits in two), whose values make
///   the event's in either byte order, or one wider line (a pl011 taking each byte
///   write as 4 bytes) whose value masked to the event's size is the event's;
/// - the address is the event's physical address, or its offset (a region QEMU reaches
///   through an alias prints addresses in the aliased space: an ECAM's offsets, a
///   Malta UART's I/O port), or at least in the same place of a 4 KiB page;
/// - an access to unassigned memory is an event without a line (QEMU's unassigned
///   region takes no access, so no device model logs it), while an unassigned port is
///   a line of QEMU's `io` region;
/// - an interrupt QEMU's IOAPIC (or a device) delivers as a write to the APIC's MSI
///   region is a line of `apic-msi` no guest instruction made: such lines are passed;
/// - a fetch from I/O (`X`) is a read line, and lines repeating it: QEMU fetches an
///   instruction from I/O each time it translates it, and translates it again when an
///   interrupt or a stop came before it ran; the plugin records it when it runs.
pub fn assert_matches_qemu_trace(trace: &[Seen], qemu: &[QemuAccess]) {
    let next = match_qemu_trace(trace, qemu);
    assert!(
        next == qemu.len(),
        "QEMU logged accesses after the trace's last: {:#?}",
        &qemu[next..(next + 5).min(qemu.len())]
    );
}

/// [`assert_matches_qemu_trace`] up to the trace's last event: how many of QEMU's
/// lines it covers (a run stopped from outside may leave a fetch QEMU logged but no
/// instruction ran).
pub fn match_qemu_trace(trace: &[Seen], qemu: &[QemuAccess]) -> usize {
    let mut next = 0;
    for (index, seen) in trace.iter().enumerate() {
        let event = &seen.event;
        let write = event.access == mmio_core::Access::Write;
        let address = event.phys_addr.unwrap_or(event.virt_addr);
        let name = match (&seen.device, event.space) {
            (Some(name), _) => name.clone(),
            (None, mmio_core::Space::Io) => "io".to_string(),
            (None, mmio_core::Space::Memory) => String::new(),
        };
        let fits = |line: &QemuAccess, delta: u64| {
            line.cpu == event.cpu
                && line.write == write
                && line.name == name
                && (line.addr == address + delta
                    || line.addr == event.offset + delta
                    || (line.addr & 0xfff) == ((address + delta) & 0xfff))
        };
        if seen.kind == Some(mmio_core::DeviceKind::Unassigned)
            && event.space == mmio_core::Space::Memory
            && !qemu.get(next).is_some_and(|line| fits(line, 0))
        {
            continue;
        }
        let context = |from: usize, got: &str| {
            format!(
                "event {index} ({event}, device {:?}): {got}; QEMU's lines from there: {:#?}",
                seen.device,
                &qemu[from.min(qemu.len())..(from + 4).min(qemu.len())]
            )
        };
        // A region whose model passes the access on to another (armv7m's
        // `v7m_systick` to `systick`) makes a second line, at the offset, of the same
        // value: the inner one before the outer for a read, after it for a write.
        let forwarded = |line: &QemuAccess, delta: u64| {
            let bytes = line.size.min(event.size);
            line.cpu == event.cpu
                && line.write == write
                && line.name != name
                && line.addr == event.offset + delta
                && mmio_core::MmioEvent::mask_value(line.value, bytes)
                    == mmio_core::MmioEvent::mask_value(event.value >> (8 * delta), bytes)
        };
        while qemu
            .get(next)
            .is_some_and(|line| line.write && line.name == "apic-msi" && !fits(line, 0))
        {
            next += 1;
        }
        let (mut covered, mut little, mut big) = (0u64, 0u64, 0u64);
        let size = u64::from(event.size);
        let first = next;
        while covered < size {
            let Some(line) = qemu.get(next) else {
                panic!("{}", context(first, "QEMU's log ended"));
            };
            if !fits(line, covered) && forwarded(line, covered) {
                next += 1;
                continue;
            }
            assert!(
                fits(line, covered),
                "{}",
                context(first, "QEMU's next line differs")
            );
            let piece = u64::from(line.size).min(size - covered);
            let bits = mmio_core::MmioEvent::mask_value(line.value, piece as u8);
            little |= bits << (8 * covered);
            big = if piece == 8 {
                bits
            } else {
                (big << (8 * piece)) | bits
            };
            covered += piece;
            next += 1;
        }
        assert!(
            event.value == little || event.value == big,
            "{}",
            context(
                first,
                &format!(
                    "value {:#x}, QEMU's lines make {little:#x} (or {big:#x} big-endian)",
                    event.value
                )
            )
        );
        while qemu.get(next).is_some_and(|line| forwarded(line, 0))
            && !trace.get(index + 1).is_some_and(|following| {
                following.device.as_deref() == qemu.get(next).map(|line| line.name.as_str())
            })
        {
            next += 1;
        }
        if event.access == mmio_core::Access::Fetch {
            let fetched = qemu[first..next].to_vec();
            let again = |at: usize| qemu.get(at..at + fetched.len()) == Some(&fetched[..]);
            let next_is_the_same_fetch = trace.get(index + 1).is_some_and(|following| {
                following.event.access == mmio_core::Access::Fetch
                    && following.event.guest_pc == event.guest_pc
            });
            while !next_is_the_same_fetch && again(next) {
                next += fetched.len();
            }
        }
    }
    next
}
