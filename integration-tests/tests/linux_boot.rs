//! Debian's armhf Linux kernel under real qemu-system-arm on `-M vexpress-a9`, booted
//! to an initramfs that powers the board off (firmware/linux-vexpress): what a real
//! kernel does to a board that lacks some of its devices (issue #8), every console
//! byte found in the trace, the `instrument=last` and `skip_sp_pc` shortcuts
//! losing no event (issues #7, #12), and the kernel's own symbols naming the PCs,
//! a loaded module's among them (issue #14).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::{
    mmio_trace, read_trace, run_ok, tools, trace_variants_in_one_run, workspace_root, Seen,
};
use mmio_core::{Access, DeviceKind};

/// The motherboard configuration controller's SYS_CFGCTRL, and the value of the
/// kernel's power-off request (start, write, function 8 "shutdown").
const SYS_CFGCTRL: u64 = 0x1000_00a4;
const SYS_CFG_SHUTDOWN: u64 = 0xc080_0000;
/// The motherboard's DVI I2C controller (SBCon) and its PCIe one, which QEMU's
/// vexpress-a9 does not model, both driven by the `i2c-versatile` module.
const DVI_I2C: u64 = 0x1001_6000;
const PCIE_I2C: u64 = 0x1000_2000;
/// PL011 UART0's data register: the kernel console (`console=ttyAMA0`).
const UART0_DATA: u64 = 0x1000_9000;
/// The motherboard's SP810 system controller, which QEMU's vexpress-a9 does not model.
const SP810: u64 = 0x1000_1000;
/// PrimeCells the device tree lists and QEMU's vexpress-a9 leaves unmapped: SP805
/// watchdog, PL341 memory controller, PL354 static memory controller, the tile's SP805.
const ABSENT_PRIMECELLS: [u64; 4] = [0x1000_f000, 0x100e_0000, 0x100e_1000, 0x100e_5000];

/// Downloads (once) and builds the guest under `target/linux-guest`.
fn guest() -> PathBuf {
    let dir = workspace_root().join("target/linux-guest");
    run_ok(
        Command::new("bash")
            .arg(workspace_root().join("firmware/linux-vexpress/build.sh"))
            .arg(&dir),
        "firmware/linux-vexpress/build.sh (needs apt's armhf lists: scripts/setup-debian.sh)",
    );
    dir
}

/// A deterministic boot: instruction-counted time, a real-time clock that follows it
/// instead of the host's, and a fixed seed for the random bytes QEMU puts in the
/// device tree (both steer the kernel's boot). Given `kallsyms`, the guest's init
/// copies `/proc/kallsyms` there on the host through semihosting.
fn qemu_args(guest: &Path, console: &Path, kallsyms: Option<&Path>) -> Vec<String> {
    let path = |name: &str| guest.join(name).to_string_lossy().into_owned();
    let mut append = "console=ttyAMA0".to_string();
    let mut semihosting = Vec::new();
    if let Some(kallsyms) = kallsyms {
        append.push_str(&format!(" -- {}", kallsyms.display()));
        semihosting = vec![
            "-semihosting-config".to_string(),
            "enable=on,target=native,userspace=on".to_string(),
        ];
    }
    let args: Vec<String> = [
        "-M",
        "vexpress-a9",
        "-m",
        "256",
        "-kernel",
        &path("vmlinuz"),
        "-dtb",
        &path("vexpress-v2p-ca9.dtb"),
        "-initrd",
        &path("initrd.gz"),
        "-append",
        &append,
        "-display",
        "none",
        "-audio",
        "none",
        "-serial",
        &format!("file:{}", console.display()),
        "-icount",
        "shift=0,sleep=off",
        "-rtc",
        "base=2026-01-01T00:00:00,clock=vm",
        "-seed",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.into_iter().chain(semihosting).collect()
}

#[test]
fn linux_boot_on_vexpress_a9() {
    let guest = guest();
    let tools = tools();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("boot.parquet");
    let mtree = dir.path().join("vexpress-a9.mtree");
    let console = dir.path().join("console");
    let kallsyms = dir.path().join("kallsyms");
    let cli = run_ok(
        Command::new(&tools.cli)
            .arg("qemu")
            .arg("--out")
            .arg(&trace)
            .arg("--save-mtree")
            .arg(&mtree)
            .args(["--", "qemu-system-arm"])
            .args(qemu_args(&guest, &console, Some(&kallsyms))),
        "mmio-trace qemu on the Linux guest",
    );
    let seen = read_trace(&trace);
    let printed = std::fs::read(&console).unwrap();
    let text = String::from_utf8_lossy(&printed);
    // init says nothing but that it was reached: the module loaded, kallsyms copied.
    let said: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("mmio-trace guest:"))
        .map(str::trim_end)
        .collect();
    assert_eq!(
        said,
        ["mmio-trace guest: init reached, powering off"],
        "{text}"
    );
    check_shortcuts_lose_no_event(&guest, &mtree);
    check_kernel_symbols(&trace, &kallsyms);
    check_module_symbols(&seen, &trace, &kallsyms, dir.path());

    // Every byte the console printed was a write to UART0's data register, in order.
    let written: Vec<u8> = seen
        .iter()
        .filter(|s| s.event.access == Access::Write && s.event.phys_addr == Some(UART0_DATA))
        .map(|s| s.event.value as u8)
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&printed)
    );
    assert!(
        text.starts_with("[    0.000000] Booting Linux on physical CPU 0x0"),
        "{text}"
    );
    assert!(
        text.contains("Run /init as init process")
            && text.contains("mmio-trace guest: init reached, powering off\r\n"),
        "{text}"
    );

    check_missing_devices(&seen);

    // The devices a booting kernel touches, named from the map.
    let touched: BTreeSet<&str> = seen.iter().filter_map(|s| s.device.as_deref()).collect();
    assert_eq!(
        touched,
        BTreeSet::from([
            "a9-scu",
            "arm-sysctl",
            "arm_sbcon_i2c",
            "arm_mptimer_timer",
            "gic_cpu",
            "gic_dist",
            "l2x0_cc",
            "pl011",
            "pl031",
            "pl041",
            "pl050",
            "pl110",
            "pl181",
            "sp804",
        ])
    );

    let summary = String::from_utf8_lossy(&cli.stdout);
    // Four UARTs share a name; the summary tells them apart by base.
    let uart_bases: BTreeSet<&str> = summary
        .lines()
        .filter(|line| line.starts_with("pl011 "))
        .filter_map(|line| line.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        uart_bases,
        BTreeSet::from(["0x10009000", "0x1000a000", "0x1000b000", "0x1000c000"]),
        "{summary}"
    );
    for base in [SP810, PCIE_I2C].iter().chain(&ABSENT_PRIMECELLS) {
        let range = format!("{base:#x}-{:#x}  unassigned", base + 0xfff);
        assert!(summary.contains(&range), "{range} missing from:\n{summary}");
    }
}

/// Issues #7 and #12: the same boot traced at once by the plugin as it ships
/// (`instrument=last`, `skip_sp_pc=on`), by a copy instrumenting every instruction but
/// the stack and literal-pool ones, and by a copy instrumenting every load and store:
/// the same events. The first comparison is the tripwire for QEMU's "only the last
/// instruction of a block reaches I/O" invariant, the second for the skipping decoder.
/// (Two QEMU runs would not do: -icount alone leaves the boot a little host-timing
/// dependent.)
fn check_shortcuts_lose_no_event(guest: &Path, mtree: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let traces = trace_variants_in_one_run(
        Command::new("qemu-system-arm").args(qemu_args(guest, &dir.path().join("console"), None)),
        mtree,
        &["", ",instrument=all", ",instrument=all,skip_sp_pc=off"],
        dir.path(),
    );
    // Up to the guest's power-off request: what the vCPU still does while QEMU shuts
    // down is seen by one copy or another, depending on host timing.
    let until_power_off = |trace: &[Seen]| -> Vec<Seen> {
        let end = trace
            .iter()
            .position(|s| {
                s.event.phys_addr == Some(SYS_CFGCTRL)
                    && s.event.access == Access::Write
                    && s.event.value == SYS_CFG_SHUTDOWN
            })
            .expect("the trace holds the power-off request");
        trace[..=end].to_vec()
    };
    let shipped = until_power_off(&traces[0]);
    assert!(shipped.len() > 50_000, "{} events", shipped.len());
    assert!(
        until_power_off(&traces[1]) == shipped,
        "instrumenting only the last instruction of each block lost or changed events"
    );
    assert!(
        until_power_off(&traces[2]) == shipped,
        "skipping stack and literal-pool instructions lost or changed events"
    );
}

/// Issue #14 on a real kernel: with the guest's `/proc/kallsyms`, the console
/// driver's PCs are `pl011_*` functions, and the one access made before the MMU is on
/// (a physical PC, which no kernel symbol holds) stays raw and is counted as such.
fn check_kernel_symbols(trace: &Path, kallsyms: &Path) {
    let text = std::fs::read_to_string(kallsyms).expect("the guest copied /proc/kallsyms");
    assert!(text.contains(" t pl011_console_putchar\n"), "{kallsyms:?}");

    let registers = mmio_trace(&[
        &"registers",
        &trace,
        &"--device",
        &"pl011",
        &"--symbols",
        &kallsyms,
    ]);
    assert!(registers.status.success(), "{registers:?}");
    let registers = String::from_utf8_lossy(&registers.stdout);
    let functions_of = |offset: &str| -> Vec<&str> {
        let line = registers
            .lines()
            .find(|line| line.split_whitespace().nth(1) == Some(offset))
            .unwrap_or_else(|| panic!("no register {offset} in:\n{registers}"));
        let (_, functions) = line.split_at(line.find("  pl011_").expect("functions"));
        functions.split_whitespace().collect()
    };
    // The data register is written by the console (printk) and the tty (init's write).
    assert_eq!(
        functions_of("0x0"),
        ["pl011_console_putchar", "pl011_tx_chars"]
    );
    assert!(functions_of("0x18")
        .iter()
        .all(|name| name.starts_with("pl011_")));

    let summary = summary_with_symbols(trace, kallsyms);
    let uart0 = summary_device(&summary, "pl011", UART0_DATA);
    let top: Vec<&str> = uart0["top_functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_str().unwrap())
        .collect();
    assert_eq!(
        top,
        [
            "pl011_console_putchar",
            "pl011_console_write",
            "pl011_tx_chars"
        ]
    );
    let scu = summary_device(&summary, "a9-scu", 0x1e00_0000);
    assert_eq!(
        scu["top_functions"],
        serde_json::json!([["(no symbol)", 1]])
    );
    assert!(scu["first_pc"].as_u64().unwrap() < 0xc000_0000, "{scu}");
}

/// `summary --json` of `trace` with the functions of `symbols`.
fn summary_with_symbols(trace: &Path, symbols: &Path) -> serde_json::Value {
    let summary = mmio_trace(&[&"summary", &"--json", &trace, &"--symbols", &symbols]);
    assert!(summary.status.success(), "{summary:?}");
    serde_json::from_slice(&summary.stdout).unwrap()
}

/// The summary's row of the device `name` at `base`.
fn summary_device<'a>(
    summary: &'a serde_json::Value,
    name: &str,
    base: u64,
) -> &'a serde_json::Value {
    summary["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"] == name && d["base"] == base)
        .unwrap_or_else(|| panic!("no {name} at {base:#x}"))
}

/// Issue #14 on a real kernel module: init loads `i2c-versatile.ko`, whose probe makes
/// one write to each I2C controller the device tree lists (the DVI one QEMU models, the
/// PCIe one it does not), from module text. The guest's kallsyms (read after the load)
/// names them `i2c_versatile_probe+0x.. [i2c_versatile]`; kernel symbols alone leave
/// them raw, counted as `(no symbol)`.
fn check_module_symbols(seen: &[Seen], trace: &Path, kallsyms: &Path, dir: &Path) {
    let from_module: Vec<&Seen> = seen
        .iter()
        .filter(|s| (0xbf00_0000..0xc000_0000).contains(&s.event.guest_pc))
        .collect();
    // SCL and SDA released: writel(SCL | SDA, base + I2C_CONTROLS).
    let writes: Vec<(Access, Option<u64>, Option<&str>, u64)> = from_module
        .iter()
        .map(|s| {
            (
                s.event.access,
                s.event.phys_addr,
                s.device.as_deref(),
                s.event.value,
            )
        })
        .collect();
    assert_eq!(
        writes,
        [
            (Access::Write, Some(PCIE_I2C), None, 0x3),
            (Access::Write, Some(DVI_I2C), Some("arm_sbcon_i2c"), 0x3)
        ]
    );
    assert_eq!(from_module[0].kind, Some(DeviceKind::Unassigned));
    let pc = from_module[0].event.guest_pc;
    assert_eq!(from_module[1].event.guest_pc, pc, "the same instruction");

    let text = std::fs::read_to_string(kallsyms).unwrap();
    assert!(
        text.contains(" t i2c_versatile_probe\t[i2c_versatile]\n"),
        "{kallsyms:?}"
    );
    let show = mmio_trace(&[&"show", &trace, &"--symbols", &kallsyms]);
    assert!(show.status.success(), "{show:?}");
    let show = String::from_utf8_lossy(&show.stdout);
    let named: Vec<&str> = show
        .lines()
        .filter(|line| line.contains(&format!(" {pc:#x} ")))
        .map(|line| {
            line.rsplit_once("  ")
                .map_or(line, |(_, function)| function)
        })
        .collect();
    assert_eq!(named.len(), 2, "{named:?}");
    for name in named {
        let offset = name
            .strip_prefix("i2c_versatile_probe+0x")
            .and_then(|rest| rest.strip_suffix(" [i2c_versatile]"))
            .unwrap_or_else(|| panic!("not named in its module: {name}"));
        assert!(u64::from_str_radix(offset, 16).is_ok(), "{name}");
    }

    let registers = mmio_trace(&[
        &"registers",
        &trace,
        &"--device",
        &"arm_sbcon_i2c",
        &"--symbols",
        &kallsyms,
    ]);
    assert!(registers.status.success(), "{registers:?}");
    let registers = String::from_utf8_lossy(&registers.stdout);
    assert_eq!(registers.lines().count(), 2, "one register: {registers}");
    let row: Vec<&str> = registers
        .lines()
        .nth(1)
        .expect("one register")
        .split_whitespace()
        .collect();
    assert_eq!(
        row,
        [
            "arm_sbcon_i2c",
            "0x0",
            "0",
            "1",
            "1",
            "0x3(1)",
            "i2c_versatile_probe",
            "[i2c_versatile]"
        ],
        "{registers}"
    );

    // Without the module's lines: raw, and counted as such.
    let kernel_only = dir.join("kallsyms-kernel");
    let kernel_lines: String = text
        .lines()
        .filter(|line| !line.contains('['))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&kernel_only, kernel_lines).unwrap();
    let summary = summary_with_symbols(trace, &kernel_only);
    assert_eq!(
        summary_device(&summary, "arm_sbcon_i2c", DVI_I2C)["top_functions"],
        serde_json::json!([["(no symbol)", 1]])
    );
}

/// Issue #8 on a real kernel: the accesses to what the board lacks, and nothing else,
/// are recorded as unassigned.
fn check_missing_devices(seen: &[Seen]) {
    let unassigned: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.kind == Some(DeviceKind::Unassigned))
        .collect();
    assert!(unassigned
        .iter()
        .all(|s| s.device.is_none() && s.event.size == 4));

    // The SP810 clock driver selects the timers' reference clock: reads see 0, and
    // its three writes set TimerEn0Sel, TimerEn1Sel, TimerEn2Sel.
    let sp810: Vec<(Access, u64)> = unassigned
        .iter()
        .filter(|s| s.event.phys_addr == Some(SP810))
        .map(|s| (s.event.access, s.event.value))
        .collect();
    let sp810_writes: Vec<u64> = sp810
        .iter()
        .filter(|(access, _)| *access == Access::Write)
        .map(|&(_, value)| value)
        .collect();
    assert_eq!(sp810_writes, [0x8000, 0x2_0000, 0x20_0000]);
    assert!(sp810.contains(&(Access::Read, 0)));
    assert!(sp810
        .iter()
        .all(|&(access, value)| access == Access::Write || value == 0));

    // The PCIe I2C controller: only the i2c-versatile module's probe writes it.
    let pcie_i2c: Vec<(Access, u64)> = unassigned
        .iter()
        .filter(|s| s.event.phys_addr == Some(PCIE_I2C))
        .map(|s| (s.event.access, s.event.value))
        .collect();
    assert_eq!(pcie_i2c, [(Access::Write, 0x3)]);

    // The AMBA bus reads each absent PrimeCell's peripheral and cell ID registers
    // (0xfe0-0xffc), finds 0, and tries again later: the same number of times each.
    let mut id_reads: BTreeMap<u64, usize> = BTreeMap::new();
    for s in unassigned
        .iter()
        .filter(|s| s.event.phys_addr != Some(SP810) && s.event.phys_addr != Some(PCIE_I2C))
    {
        assert_eq!((s.event.access, s.event.value), (Access::Read, 0), "{s:?}");
        *id_reads.entry(s.event.phys_addr.unwrap()).or_default() += 1;
    }
    let expected: BTreeSet<u64> = ABSENT_PRIMECELLS
        .iter()
        .flat_map(|base| (0xfe0..=0xffc).step_by(4).map(move |offset| base + offset))
        .collect();
    assert_eq!(id_reads.keys().copied().collect::<BTreeSet<_>>(), expected);
    let tries: BTreeSet<usize> = id_reads.values().copied().collect();
    assert_eq!(tries.len(), 1, "ID registers read unevenly: {id_reads:x?}");
}
