//! Issue #14: the micro:bit firmware (nRF51822) under real qemu-system-arm, named with
//! Nordic's real `nrf51.svd` (from the PyPI sdist of cmsis-svd 0.4, fetched by
//! `scripts/setup-debian.sh` into `target/svd/`): peripheral and register names,
//! values decoded into fields, and the peripheral QEMU does not model (TEMP) named in
//! the missing-peripherals section, page by page inside QEMU's one 512 MiB stub.

use std::path::{Path, PathBuf};
use std::process::Output;

use integration_tests::{mmio_trace as cli, read_trace, workspace_root, Firmware};

fn nrf51_svd() -> PathBuf {
    let path = workspace_root().join("target/svd/nrf51.svd");
    assert!(
        path.is_file(),
        "{} is missing: scripts/setup-debian.sh fetches it (cmsis-svd==0.4 from PyPI)",
        path.display()
    );
    path
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Traces the firmware with `mmio-trace qemu` (which dumps the memory map first).
fn trace(firmware: &Firmware, out: &Path) {
    let elf = firmware.elf.to_str().unwrap();
    let output = cli(&[
        &"qemu",
        &"--out",
        &out,
        &"--",
        &"qemu-system-arm",
        &"-M",
        &"microbit",
        &"-kernel",
        &elf,
        &"-display",
        &"none",
        &"-serial",
        &"null",
        &"-semihosting-config",
        &"enable=on,target=native",
        &"-icount",
        &"shift=0",
    ]);
    stdout(&output);
}

/// The register of each of the firmware's accesses, in order.
const REGISTERS: [&str; 28] = [
    "GPIO.PIN_CNF3",
    "GPIO.DIRSET",
    "GPIO.OUTSET",
    "GPIO.OUTCLR",
    "UART0.PSELTXD",
    "UART0.BAUDRATE",
    "UART0.ENABLE",
    "UART0.TASKS_STARTTX",
    "UART0.TXD",
    "UART0.EVENTS_TXDRDY",
    "UART0.EVENTS_TXDRDY",
    "RNG.TASKS_START",
    "RNG.EVENTS_VALRDY",
    "RNG.EVENTS_VALRDY",
    "RNG.EVENTS_VALRDY",
    "RNG.VALUE",
    "TIMER0.MODE",
    "TIMER0.BITMODE",
    "TIMER0.PRESCALER",
    "TIMER0.TASKS_START",
    "TIMER0.TASKS_CAPTURE0",
    "TIMER0.CC0",
    "TIMER0.TASKS_STOP",
    "TEMP.TASKS_START",
    "TEMP.EVENTS_DATARDY",
    "TEMP.EVENTS_DATARDY",
    "TEMP.EVENTS_DATARDY",
    "TEMP.TEMP",
];

/// The label in front of each access (the firmware's function symbols), in order.
const LABELS: [&str; 28] = [
    "gpio_pin_cnf3_write",
    "gpio_dirset_write",
    "gpio_outset_write",
    "gpio_outclr_write",
    "uart_pseltxd_write",
    "uart_baudrate_write",
    "uart_enable_write",
    "uart_starttx_write",
    "uart_txd_write",
    "uart_txdrdy_read",
    "uart_txdrdy_clear",
    "rng_start_write",
    "rng_valrdy_read",
    "rng_valrdy_read",
    "rng_valrdy_read",
    "rng_value_read",
    "timer_mode_write",
    "timer_bitmode_write",
    "timer_prescaler_write",
    "timer_start_write",
    "timer_capture0_write",
    "timer_cc0_read",
    "timer_stop_write",
    "temp_start_write",
    "temp_datardy_read",
    "temp_datardy_read",
    "temp_datardy_read",
    "temp_read",
];

#[test]
fn svd_names_registers_decodes_values_and_the_missing_temp_sensor() {
    let firmware = Firmware::build("microbit", &[]);
    let svd = nrf51_svd();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("microbit.parquet");
    trace(&firmware, &out);
    let events = read_trace(&out);

    // show --svd: the register of every access, in order, and decoded values.
    let shown = stdout(&cli(&[&"show", &out, &"--svd", &svd]));
    let rows: Vec<Vec<&str>> = shown
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), events.len());
    let registers: Vec<&str> = rows.iter().map(|row| row[10]).collect();
    assert_eq!(registers, REGISTERS);
    let pcs: Vec<u64> = events.iter().map(|s| s.event.guest_pc).collect();
    let want_pcs: Vec<u64> = LABELS.iter().map(|l| firmware.pc(l)).collect();
    assert_eq!(pcs, want_pcs);
    let decoded = |index: usize| rows[index][11..].join(" ");
    assert_eq!(
        decoded(0),
        "SENSE=Disabled DRIVE=S0S1 PULL=Disabled INPUT=Connect DIR=Output"
    );
    assert_eq!(decoded(1), "PIN3=Output");
    assert_eq!(decoded(2), "PIN3=High");
    assert_eq!(decoded(5), "BAUDRATE=Baud115200");
    assert_eq!(decoded(6), "ENABLE=Enabled");
    assert_eq!(decoded(8), "TXD=0x48");
    assert_eq!(decoded(16), "MODE=Timer");
    assert_eq!(decoded(17), "BITMODE=32Bit");
    assert_eq!(decoded(23), "-", "a task register has no fields");

    // registers --svd: names and the most frequent values decoded on the next line.
    let table = stdout(&cli(&[
        &"registers",
        &out,
        &"--svd",
        &svd,
        &"--device",
        &"nrf51_soc.uart",
    ]));
    let enable = table
        .lines()
        .position(|l| l.contains("UART0.ENABLE"))
        .expect("a row for UART0.ENABLE");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[enable].split_whitespace().collect::<Vec<_>>(),
        [
            "nrf51_soc.uart",
            "0x500",
            "UART0.ENABLE",
            "0",
            "1",
            "1",
            "0x4(1)",
            &format!("{:#x}", firmware.pc("uart_enable_write"))
        ]
    );
    assert_eq!(lines[enable + 1], "    0x4 -> ENABLE=Enabled");

    // summary --svd: the TEMP sensor QEMU does not model, by its SVD name, on its page
    // of the 512 MiB stub (not the whole stub as one row).
    let summary = stdout(&cli(&[&"summary", &out, &"--svd", &svd]));
    let missing: Vec<&str> = summary
        .lines()
        .skip_while(|l| !l.starts_with("missing peripherals"))
        .skip(2)
        .collect();
    assert_eq!(missing.len(), 1, "{summary}");
    assert_eq!(
        missing[0].split_whitespace().collect::<Vec<_>>(),
        [
            "0x4000c000-0x4000cfff",
            "unimplemented",
            "nrf51_soc.io",
            "TEMP",
            "4",
            "1",
            "3",
            &format!("{:#x}", firmware.pc("temp_start_write"))
        ]
    );
}

/// `convert --svd --symbols` writes the names as columns, read back by DuckDB
/// (Parquet) and pandas (JSON Lines): every access's function and register.
#[test]
fn convert_writes_function_and_register_columns_for_duckdb_and_pandas() {
    let firmware = Firmware::build("microbit", &[]);
    let svd = nrf51_svd();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("microbit.parquet");
    trace(&firmware, &out);
    // The function of each access: the prefix of its label (one C function per
    // peripheral).
    let want: Vec<String> = LABELS
        .iter()
        .zip(REGISTERS)
        .map(|(label, register)| format!("{} {register}", label.split('_').next().unwrap()))
        .collect();
    for (name, query) in [
        (
            "named.parquet",
            "import duckdb, sys\nfor f, r in duckdb.execute('SELECT function, register FROM read_parquet(?) ORDER BY seq', [sys.argv[1]]).fetchall(): print(f, r)",
        ),
        (
            "named.jsonl",
            "import pandas, sys\nt = pandas.read_json(sys.argv[1], lines=True).sort_values('seq')\nfor f, r in zip(t['function'], t['register']): print(f, r)",
        ),
    ] {
        let named = dir.path().join(name);
        let converted = stdout(&cli(&[
            &"convert",
            &out,
            &named,
            &"--svd",
            &svd,
            &"--symbols",
            &firmware.elf,
        ]));
        assert_eq!(
            converted.trim(),
            format!("wrote 28 events to {}", named.display())
        );
        let output = std::process::Command::new("python3")
            .args(["-c", query])
            .arg(&named)
            .output()
            .expect("python3 runs");
        let got = stdout(&output);
        assert_eq!(got.lines().collect::<Vec<_>>(), want, "{name}");
    }

    // PANDA's JSON has no room for the names: refused before anything is written.
    let panda = dir.path().join("named.json");
    let output = cli(&[&"convert", &out, &panda, &"--svd", &svd]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        format!(
            "mmio-trace: {}: the PANDA JSON format has no function or register column: write .parquet or .jsonl",
            panda.display()
        )
    );
    assert!(!panda.exists());
}

/// `plot --by register --svd --symbols`: a lane per register under its SVD name, and
/// over each access's cell a hover title naming the function behind it.
#[test]
fn plot_draws_a_lane_per_register_and_names_functions_on_hover() {
    let firmware = Firmware::build("microbit", &[]);
    let svd = nrf51_svd();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("microbit.parquet");
    trace(&firmware, &out);
    let svg = dir.path().join("registers.svg");
    stdout(&cli(&[
        &"plot",
        &out,
        &"-o",
        &svg,
        &"--by",
        &"register",
        &"--svd",
        &svd,
        &"--symbols",
        &firmware.elf,
    ]));
    let text = std::fs::read_to_string(&svg).unwrap();
    let mut lanes: Vec<&str> = REGISTERS.to_vec();
    lanes.dedup();
    assert_eq!(lanes.len(), 23);
    for lane in lanes {
        let label = format!("\n{lane}\n</text>");
        assert_eq!(text.matches(&label).count(), 1, "lane for {lane}");
    }
    // 28 accesses at seq 0..27, each alone in its cell (600 cells).
    let titles: Vec<&str> = text
        .split("<title>")
        .skip(1)
        .map(|rest| &rest[..rest.find("</title>").unwrap()])
        .collect();
    let want: Vec<String> = LABELS
        .iter()
        .zip(REGISTERS)
        .enumerate()
        .map(|(seq, (label, register))| {
            let counts = if label.ends_with("_read") {
                "1 read, 0 writes"
            } else {
                "0 reads, 1 write"
            };
            let function = label.split('_').next().unwrap();
            format!("{register}: {counts} at event (seq) {seq}: {function} (1)")
        })
        .collect();
    let mut titles = titles;
    titles.sort_by_key(|t| {
        t.rsplit_once("(seq) ")
            .unwrap()
            .1
            .split(':')
            .next()
            .unwrap()
            .parse::<u32>()
            .unwrap()
    });
    assert_eq!(titles, want);
}

#[test]
fn bad_svd_files_are_named_and_a_foreign_one_is_a_warning() {
    let firmware = Firmware::build("microbit", &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("microbit.jsonl");
    trace(&firmware, &out);

    let broken = dir.path().join("broken.svd");
    std::fs::write(&broken, "<device><name>x</name><peripherals>").unwrap();
    let output = cli(&[&"show", &out, &"--svd", &broken]);
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.starts_with(&format!(
            "mmio-trace: {}: not a valid CMSIS-SVD file: ",
            broken.display()
        )),
        "{message}"
    );
    let missing = dir.path().join("missing.svd");
    let output = cli(&[&"registers", &out, &"--svd", &missing]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr)
        .starts_with(&format!("mmio-trace: cannot read {}: ", missing.display())));

    // A valid SVD of another chip: the output comes, with a warning.
    let foreign = dir.path().join("foreign.svd");
    std::fs::write(
        &foreign,
        r#"<?xml version="1.0" encoding="utf-8"?>
<device schemaVersion="1.1">
  <name>OTHER</name>
  <version>1</version>
  <description>A chip whose peripherals are elsewhere.</description>
  <addressUnitBits>8</addressUnitBits>
  <width>32</width>
  <size>32</size>
  <resetValue>0</resetValue>
  <resetMask>0xFFFFFFFF</resetMask>
  <peripherals>
    <peripheral>
      <name>UART9</name>
      <baseAddress>0x90000000</baseAddress>
      <addressBlock><offset>0</offset><size>0x1000</size><usage>registers</usage></addressBlock>
      <registers>
        <register><name>DATA</name><addressOffset>0</addressOffset></register>
      </registers>
    </peripheral>
  </peripherals>
</device>
"#,
    )
    .unwrap();
    let output = cli(&[&"summary", &out, &"--svd", &foreign]);
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!(
            "{}: the SVD file covers none of the trace's addresses (another chip's?)",
            foreign.display()
        )),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
