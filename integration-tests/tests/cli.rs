//! `mmio-trace` subcommands on traces of the test firmware and on bad input.

use std::path::Path;
use std::process::{Command, Output};

use integration_tests::{lm3s6965evb_args, mmio_trace as cli, plugin_arg, run_ok, tools, Firmware};

fn trace(firmware: &Firmware, out: &Path) {
    run_ok(
        Command::new("qemu-system-arm")
            .args(lm3s6965evb_args(firmware))
            .arg("-plugin")
            .arg(plugin_arg(out, "lm3s6965evb", "")),
        "qemu-system-arm with the plugin",
    );
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn diff_reports_the_first_divergence_of_two_runs() {
    let normal = Firmware::lm3s6965evb(&[]);
    let other = Firmware::lm3s6965evb(&["UART_CTL_VALUE=0x201"]);
    assert_eq!(normal.pc("uart_ctl_write"), other.pc("uart_ctl_write"));
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.parquet"),
        dir.path().join("b.jsonl"),
        dir.path().join("c.json"),
    );
    trace(&normal, &a);
    trace(&other, &b);
    trace(&normal, &c);

    let same = cli(&[&"diff", &a, &c]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    assert!(
        stdout(&same).starts_with("traces are equal ("),
        "{}",
        stdout(&same)
    );

    let different = cli(&[&"diff", &a, &b]);
    assert_eq!(different.status.code(), Some(1), "{}", stderr(&different));
    let pc = normal.pc("uart_ctl_write");
    let report = stdout(&different);
    let want = format!(
        "first difference at event 0:\n  {a}: W pc={pc:#x} addr=0x4000c030 size=4 value=0x301 device=pl011\n  {b}: W pc={pc:#x} addr=0x4000c030 size=4 value=0x201 device=pl011\nevents per device ({a} / {b}):\n",
        a = a.display(),
        b = b.display()
    );
    assert!(report.starts_with(&want), "{report}");
    // The same accesses otherwise: no device's count differs.
    assert!(!report.contains("<- differs"), "{report}");
}

#[test]
fn show_registers_and_convert_on_a_real_trace() {
    let firmware = Firmware::lm3s6965evb(&[]);
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("t.parquet");
    trace(&firmware, &parquet);

    let shown = stdout(&cli(&[&"show", &parquet, &"--head", &"2"]));
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3);
    let fields: Vec<&str> = lines[2].split_whitespace().collect();
    let data_pc = format!("{:#x}", firmware.pc("uart_data_write"));
    assert_eq!(
        fields,
        [
            "1",
            "0",
            "W",
            &data_pc,
            "0x4000c000",
            "0x4000c000",
            "1",
            "0x48",
            "pl011",
            "0x0"
        ]
    );

    let registers = stdout(&cli(&[&"registers", &parquet, &"--device", &"pl011"]));
    let data = registers
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("0x0"))
        .expect("a row for the data register");
    let fields: Vec<&str> = data.split_whitespace().collect();
    assert_eq!(
        fields,
        ["pl011", "0x0", "0", "3", "3", "0xa(1)", "0x48(1)", "0x69(1)", &data_pc]
    );
    assert_eq!(
        registers.lines().count(),
        1 + 12,
        "header and twelve registers:\n{registers}"
    );

    let uart = dir.path().join("uart-writes.jsonl");
    let converted = cli(&[
        &"convert",
        &parquet,
        &uart,
        &"--filter",
        &"devices=pl011,access=w",
    ]);
    assert_eq!(
        stdout(&converted),
        format!("wrote 5 events to {}\n", uart.display())
    );
    let events = integration_tests::read_trace(&uart);
    let got: Vec<(u64, u64)> = events
        .iter()
        .map(|s| (s.event.seq, s.event.value))
        .collect();
    assert_eq!(got, [(0, 0x301), (1, 0x48), (2, 0x69), (3, 0xa), (4, 0x68)]);

    // PANDA's JSON, which has no name columns, is written when none is asked for.
    let panda = dir.path().join("uart-writes.json");
    let converted = cli(&[&"convert", &uart, &panda]);
    assert_eq!(
        stdout(&converted),
        format!("wrote 5 events to {}\n", panda.display())
    );
    let values: Vec<u64> = integration_tests::read_trace(&panda)
        .iter()
        .map(|s| s.event.value)
        .collect();
    assert_eq!(values, [0x301, 0x48, 0x69, 0xa, 0x68]);
}

#[test]
fn bad_input_names_the_file_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.parquet");
    let output = cli(&[&"summary", &missing]);
    assert_eq!(output.status.code(), Some(2));
    // The path once, the cause once.
    assert_eq!(
        stderr(&output),
        format!(
            "mmio-trace: {}: cannot open: No such file or directory (os error 2)\n",
            missing.display()
        )
    );

    let csv = dir.path().join("trace.csv");
    std::fs::write(&csv, "x").unwrap();
    let output = cli(&[&"show", &csv]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unsupported trace file extension"),
        "{}",
        stderr(&output)
    );

    let corrupt = dir.path().join("corrupt.parquet");
    std::fs::write(&corrupt, b"PAR1 not really").unwrap();
    let output = cli(&[&"summary", &corrupt]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!(
            "mmio-trace: {}: truncated or corrupt Parquet file (no footer)\n",
            corrupt.display()
        )
    );
    // What a killed run leaves points to `recover`.
    let partial = dir.path().join("killed.parquet.partial");
    std::fs::write(&partial, b"PAR1 cut short").unwrap();
    let output = cli(&[&"summary", &partial]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(&format!("mmio-trace recover {}", partial.display())),
        "{}",
        stderr(&output)
    );

    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let output = cli(&[&"summary", &empty]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stdout(&output),
        "device  base  kind  reads  writes  registers  pcs  first_pc  last_pc\n0 events, 0 devices\n"
    );
    let output = cli(&[&"diff", &empty, &missing]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn output_into_a_closed_pipe_is_not_an_error() {
    let firmware = Firmware::lm3s6965evb(&[]);
    let dir = tempfile::tempdir().unwrap();
    let trace_file = dir.path().join("t.jsonl");
    trace(&firmware, &trace_file);
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {} show {} | head -1",
            tools().cli.display(),
            trace_file.display()
        ))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
}

#[test]
fn plot_draws_one_lane_per_device_as_svg_and_png() {
    let firmware = Firmware::lm3s6965evb(&[]);
    let dir = tempfile::tempdir().unwrap();
    let trace_file = dir.path().join("t.parquet");
    trace(&firmware, &trace_file);
    let svg = dir.path().join("timeline.svg");
    let output = cli(&[&"plot", &trace_file, &"-o", &svg]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = std::fs::read_to_string(&svg).unwrap();
    // A lane label per device.
    for name in [
        "pl011",
        "v7m_systick",
        "flash-control",
        "hibernation",
        "(none)",
    ] {
        let label = format!("\n{name}\n</text>");
        assert_eq!(text.matches(&label).count(), 1, "lane for {name}");
    }
    let png = dir.path().join("timeline.png");
    let output = cli(&[&"plot", &trace_file, &"-o", &png]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let output = cli(&[&"plot", &trace_file, &"-o", &dir.path().join("t.bmp")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("plot writes .svg or .png"),
        "{}",
        stderr(&output)
    );
}

/// The function symbols of `elf` (`arm-none-eabi-nm -S`: name, address, size), the
/// expected answer computed without the code under test.
fn functions(elf: &Path) -> Vec<(String, u64, u64)> {
    let nm = run_ok(
        Command::new("arm-none-eabi-nm")
            .args(["-S", "--defined-only"])
            .arg(elf),
        "arm-none-eabi-nm",
    );
    String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields[..] {
                [address, size, "T" | "t", name] => Some((
                    name.to_string(),
                    u64::from_str_radix(address, 16).ok()?,
                    u64::from_str_radix(size, 16).ok()?,
                )),
                _ => None,
            }
        })
        .collect()
}

/// Issue #14: `--symbols` names each PC `function+0xoff`, from the firmware's ELF (its
/// function symbols) or from a System.map made by `nm` (every text symbol, so each
/// access is named by the global label in front of it).
#[test]
fn symbols_name_each_pc_from_an_elf_or_a_system_map() {
    let firmware = Firmware::lm3s6965evb(&[]);
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("t.parquet");
    trace(&firmware, &parquet);
    let trace = integration_tests::read_trace(&parquet);

    // The ELF: every labelled access lies inside `reset`, named as reset+offset.
    let functions = functions(&firmware.elf);
    let (reset_start, reset_size) = functions
        .iter()
        .find(|(name, ..)| name == "reset")
        .map(|(_, address, size)| (address & !1, *size))
        .expect("reset is a function");
    let shown = stdout(&cli(&[&"show", &parquet, &"--symbols", &firmware.elf]));
    let named: Vec<String> = shown
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().last().unwrap().to_string())
        .collect();
    assert_eq!(named.len(), trace.len());
    for (seen, name) in trace.iter().zip(&named) {
        let pc = seen.event.guest_pc;
        assert!(pc >= reset_start && pc < reset_start + reset_size);
        assert_eq!(name, &format!("reset+{:#x}", pc - reset_start));
    }
    assert_eq!(
        named[0],
        format!("reset+{:#x}", firmware.pc("uart_ctl_write") - reset_start)
    );

    // A System.map: the labels are text symbols too, so each access is its label.
    let nm = run_ok(
        Command::new("arm-none-eabi-nm")
            .arg("-n")
            .arg(&firmware.elf),
        "arm-none-eabi-nm",
    );
    let map = dir.path().join("System.map");
    std::fs::write(&map, &nm.stdout).unwrap();
    let shown = stdout(&cli(&[
        &"show",
        &parquet,
        &"--head",
        &"2",
        &"--symbols",
        &map,
    ]));
    let last: Vec<&str> = shown
        .lines()
        .map(|line| line.split_whitespace().last().unwrap())
        .collect();
    assert_eq!(last, ["function", "uart_ctl_write", "uart_data_write"]);

    // registers: the functions touching each register; summary: the top functions.
    let registers = stdout(&cli(&[
        &"registers",
        &parquet,
        &"--device",
        &"v7m_systick",
        &"--symbols",
        &map,
    ]));
    let ctrl = registers
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("0x0"))
        .expect("a row for SysTick CTRL");
    assert!(
        ctrl.ends_with("systick_ctrl_write systick_ctrl_read"),
        "{registers}"
    );
    let output = cli(&[&"summary", &"--json", &parquet, &"--symbols", &map]);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let systick = summary["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"] == "v7m_systick")
        .unwrap();
    let polls = trace
        .iter()
        .filter(|s| s.event.guest_pc == firmware.pc("systick_ctrl_read"))
        .count();
    assert_eq!(
        systick["top_functions"][0],
        serde_json::json!(["systick_ctrl_read", polls])
    );

    // --lines: file:line from the DWARF of a build with -g.
    let debug = Firmware::build_with_flags("lm3s6965evb", &["-g".to_string()]);
    let debug_trace = dir.path().join("debug.parquet");
    self::trace(&debug, &debug_trace);
    let source = std::fs::read_to_string(
        integration_tests::workspace_root().join("firmware/lm3s6965evb/fw.c"),
    )
    .unwrap();
    let line = 1 + source
        .lines()
        .position(|l| l.contains("STORE(\"uart_ctl_write\""))
        .unwrap();
    let shown = stdout(&cli(&[
        &"show",
        &debug_trace,
        &"--head",
        &"1",
        &"--symbols",
        &debug.elf,
        &"--lines",
    ]));
    let first = shown.lines().nth(1).unwrap();
    assert!(
        first.ends_with(&format!("/firmware/lm3s6965evb/fw.c:{line}")),
        "{shown}"
    );
    let output = cli(&[&"show", &parquet, &"--lines"]);
    assert_eq!(output.status.code(), Some(2), "--lines needs --symbols");

    // Bad symbol files: exit 2, the file and what is wrong named.
    let bad = dir.path().join("bad.map");
    std::fs::write(&bad, "00000052 T uart_ctl_write\nzz T x\n").unwrap();
    let output = cli(&[&"show", &parquet, &"--symbols", &bad]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!(
            "mmio-trace: {}: line 2: \"zz\" is not a hex address: invalid digit found in string\n",
            bad.display()
        )
    );
    let missing = dir.path().join("missing.elf");
    let output = cli(&[&"summary", &parquet, &"--symbols", &missing]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with(&format!("mmio-trace: cannot read {}: ", missing.display())),
        "{}",
        stderr(&output)
    );
    // An ELF file cut short, and one stripped of its symbols.
    let elf = std::fs::read(&firmware.elf).unwrap();
    let truncated = dir.path().join("truncated.elf");
    std::fs::write(&truncated, &elf[..100]).unwrap();
    let output = cli(&[&"registers", &parquet, &"--symbols", &truncated]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).starts_with(&format!(
            "mmio-trace: {}: not a readable ELF file: ",
            truncated.display()
        )),
        "{}",
        stderr(&output)
    );
    let stripped = dir.path().join("stripped.elf");
    run_ok(
        Command::new("arm-none-eabi-strip")
            .arg("-o")
            .arg(&stripped)
            .arg(&firmware.elf),
        "arm-none-eabi-strip",
    );
    let output = cli(&[
        &"convert",
        &parquet,
        &dir.path().join("n.parquet"),
        &"--symbols",
        &stripped,
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        format!(
            "mmio-trace: {}: the ELF file has no function symbols (stripped?)\n",
            stripped.display()
        )
    );
}
