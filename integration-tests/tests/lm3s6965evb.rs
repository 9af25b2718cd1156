//! The Cortex-M3 test firmware under real qemu-system-arm (lm3s6965evb) with the
//! plugin: the exact event list, in every format, through the plugin and the CLI.

use std::path::Path;
use std::process::Command;

use integration_tests::{
    lm3s6965evb_args, plugin_arg, python_check, read_trace, run_ok, tools, Firmware, Seen,
};
use mmio_core::{Access, DeviceKind};

/// QEMU's Stellaris UART ("pl011_luminary" in hw/char/pl011.c) answers these at
/// 0xfe0..0xffc: peripheral ID 0-3, PrimeCell ID 0-3.
const LUMINARY_UART_ID: [u64; 8] = [0x11, 0x00, 0x18, 0x01, 0x0d, 0xf0, 0x05, 0xb1];
const UART0: u64 = 0x4000_c000;
const SYSTICK: u64 = 0xe000_e010;
const HOLE: u64 = 0x4000_1000;

/// (access, PC label, address, size, value, device, kind, offset)
type Expected = (
    Access,
    &'static str,
    u64,
    u8,
    u64,
    Option<&'static str>,
    DeviceKind,
    u64,
);

fn expected_before_polling() -> Vec<Expected> {
    use Access::{Read as R, Write as W};
    use DeviceKind::Device as D;
    let mut list: Vec<Expected> = vec![(
        W,
        "uart_ctl_write",
        UART0 + 0x30,
        4,
        0x301,
        Some("pl011"),
        D,
        0x30,
    )];
    for byte in b"Hi\n" {
        list.push((
            W,
            "uart_data_write",
            UART0,
            1,
            u64::from(*byte),
            Some("pl011"),
            D,
            0,
        ));
    }
    // TXFE | RXFE: nothing to send, nothing received.
    list.push((
        R,
        "uart_flags_read",
        UART0 + 0x18,
        4,
        0x90,
        Some("pl011"),
        D,
        0x18,
    ));
    list.push((
        W,
        "uart_ibrd_write",
        UART0 + 0x24,
        2,
        0x68,
        Some("pl011"),
        D,
        0x24,
    ));
    list.push((
        R,
        "uart_ibrd_read",
        UART0 + 0x24,
        2,
        0x68,
        Some("pl011"),
        D,
        0x24,
    ));
    for (i, id) in LUMINARY_UART_ID.iter().enumerate() {
        let offset = 0xfe0 + 4 * i as u64;
        list.push((
            R,
            "uart_id_read",
            UART0 + offset,
            4,
            *id,
            Some("pl011"),
            D,
            offset,
        ));
    }
    // One 8-byte guest access (LDRD) is one event: ID0 | ID1 << 32.
    let pair = LUMINARY_UART_ID[0] | LUMINARY_UART_ID[1] << 32;
    list.push((
        R,
        "uart_id_pair_read",
        UART0 + 0xfe0,
        8,
        pair,
        Some("pl011"),
        D,
        0xfe0,
    ));
    list.push((
        W,
        "systick_load_write",
        SYSTICK + 4,
        4,
        0x1f,
        Some("v7m_systick"),
        D,
        4,
    ));
    list.push((
        W,
        "systick_current_write",
        SYSTICK + 8,
        4,
        0,
        Some("v7m_systick"),
        D,
        8,
    ));
    list.push((
        W,
        "systick_ctrl_write",
        SYSTICK,
        4,
        5,
        Some("v7m_systick"),
        D,
        0,
    ));
    list
}

fn expected_after_polling() -> Vec<Expected> {
    use Access::{Read as R, Write as W};
    use DeviceKind::{Unassigned as H, Unimplemented as U};
    let (flash, hibernation) = (Some("flash-control"), Some("hibernation"));
    vec![
        (
            W,
            "flash_control_write",
            0x400f_d000,
            4,
            0x1234,
            flash,
            U,
            0,
        ),
        (R, "flash_control_read", 0x400f_d004, 4, 0, flash, U, 4),
        (R, "hibernation_read", 0x400f_c000, 4, 0, hibernation, U, 0),
        // Nothing mapped: no device, and the offset counts from address 0.
        (W, "hole_write", HOLE, 4, 0xdead, None, H, HOLE),
        (R, "hole_read", HOLE + 4, 4, 0, None, H, HOLE + 4),
    ]
}

/// What a trace format stores beyond the PANDA JSON format's fields.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fields {
    /// Parquet and JSON Lines: offsets and device kinds too.
    All,
    /// The PANDA JSON format: no offsets, no kinds.
    Panda,
}

fn check_event(
    firmware: &Firmware,
    seen: &Seen,
    expected: &Expected,
    index: usize,
    fields: Fields,
) {
    let (access, label, address, size, value, device, kind, mut offset) = *expected;
    let mut kind = Some(kind);
    if fields == Fields::Panda {
        // The format has "a device" or "[NONE]", and no offsets.
        kind = device.map(|_| DeviceKind::Device);
        offset = address;
    }
    let event = &seen.event;
    let got = (
        event.access,
        event.guest_pc,
        event.phys_addr,
        event.virt_addr,
        event.size,
        event.value,
        seen.device.as_deref(),
        seen.kind,
        event.offset,
    );
    let want = (
        access,
        firmware.pc(label),
        Some(address),
        address,
        size,
        value,
        device,
        kind,
        offset,
    );
    assert_eq!(got, want, "event {index} ({label})");
}

/// Checks the whole trace against the firmware and returns the number of SysTick polls.
fn check_trace(firmware: &Firmware, trace: &[Seen], fields: Fields) -> usize {
    let before = expected_before_polling();
    let after = expected_after_polling();
    assert!(
        trace.len() > before.len() + after.len(),
        "{} events",
        trace.len()
    );
    for (index, (seen, expected)) in trace.iter().zip(&before).enumerate() {
        check_event(firmware, seen, expected, index, fields);
    }
    let polls = trace.len() - before.len() - after.len();
    let poll_pc = firmware.pc("systick_ctrl_read");
    for (index, seen) in trace[before.len()..before.len() + polls].iter().enumerate() {
        let last = index == polls - 1;
        // CTRL reads ENABLE | CLKSOURCE, plus COUNTFLAG (bit 16) on the read that ends the loop.
        let value = if last { 0x1_0005 } else { 0x5 };
        check_event(
            firmware,
            seen,
            &(
                Access::Read,
                "systick_ctrl_read",
                SYSTICK,
                4,
                value,
                Some("v7m_systick"),
                DeviceKind::Device,
                0,
            ),
            before.len() + index,
            fields,
        );
        assert_eq!(seen.event.guest_pc, poll_pc);
    }
    for (index, (seen, expected)) in trace[before.len() + polls..].iter().zip(&after).enumerate() {
        check_event(
            firmware,
            seen,
            expected,
            before.len() + polls + index,
            fields,
        );
    }
    for (seq, seen) in trace.iter().enumerate() {
        assert_eq!(seen.event.seq, seq as u64);
        assert_eq!(seen.event.cpu, 0);
    }
    polls
}

fn run_plugin(firmware: &Firmware, out: &Path, extra: &str) -> std::process::Output {
    run_ok(
        Command::new("qemu-system-arm")
            .args(lm3s6965evb_args(firmware))
            .arg("-plugin")
            .arg(plugin_arg(
                out,
                "lm3s6965evb",
                &format!(",machine=lm3s6965evb{extra}"),
            )),
        "qemu-system-arm with the plugin (bookworm-backports qemu-system-arm 10.0)",
    )
}

#[test]
fn every_format_holds_the_exact_event_list() {
    let firmware = Firmware::lm3s6965evb(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut traces = Vec::new();
    for name in ["t.parquet", "t.jsonl", "t.ndjson", "t.json"] {
        let out = dir.path().join(name);
        run_plugin(&firmware, &out, "");
        assert!(!dir.path().join(format!("{name}.partial")).exists());
        let trace = read_trace(&out);
        let fields = if name.ends_with(".json") {
            Fields::Panda
        } else {
            Fields::All
        };
        let polls = check_trace(&firmware, &trace, fields);
        traces.push((name, trace, polls));
    }
    // -icount makes the runs identical; the formats hold the same events (the PANDA
    // JSON format has no offsets, CPU or instruction counts to compare).
    let (_, reference, polls) = &traces[0];
    for (name, trace, other_polls) in &traces[1..] {
        assert_eq!(other_polls, polls, "{name}");
        for (a, b) in reference.iter().zip(trace) {
            assert_eq!(
                (
                    a.event.access,
                    a.event.guest_pc,
                    a.event.phys_addr,
                    a.event.size,
                    a.event.value,
                    &a.device
                ),
                (
                    b.event.access,
                    b.event.guest_pc,
                    b.event.phys_addr,
                    b.event.size,
                    b.event.value,
                    &b.device
                ),
                "{name}"
            );
        }
    }
    let counts = [
        (Some("v7m_systick"), 3 + *polls as u64),
        (Some("pl011"), 16),
        (Some("flash-control"), 2),
        (Some("hibernation"), 1),
        (None, 2),
    ];
    python_check(&dir.path().join("t.parquet"), &counts, 0x1_0005);
    python_check(&dir.path().join("t.jsonl"), &counts, 0x1_0005);
}

/// Issue #12's tripwire: QEMU (>= 8.2) lets only the last instruction of a
/// translation block reach a device, which `instrument=last` (the default) rests on.
/// One run traced by the plugin as it ships and by a copy instrumenting every load and
/// store gives the same events, instruction counts included; a QEMU that broke the
/// invariant would make the first trace lose events. Both are QEMU's own trace of the
/// run, access for access (Cortex-M: SysTick and the NVIC share a page QEMU names
/// `anon…`, named from the map).
#[test]
fn instrumenting_only_the_last_instruction_loses_nothing() {
    let firmware = Firmware::lm3s6965evb(&[]);
    let dir = tempfile::tempdir().unwrap();
    let run = integration_tests::run_traced(
        "qemu-system-arm",
        &lm3s6965evb_args(&firmware),
        &[",icount=on", ",icount=on,instrument=all,skip_sp_pc=off"],
        0,
        dir.path(),
    );
    let traces = &run.traces;
    check_trace(&firmware, &traces[0], Fields::All);
    assert!(traces[0].iter().all(|s| s.event.instr_count.is_some()));
    assert_eq!(traces[0], traces[1]);
    integration_tests::assert_matches_qemu_trace(&traces[0], &run.qemu);
}

/// Issue #15: a panic in the plugin's callback (injected at the fifth event by the
/// test-only `fault-injection` build) does not take QEMU down: the guest runs to its
/// semihosting exit, the trace is finished with the four events before the panic, and
/// the panic is reported once.
#[test]
fn a_panic_in_the_plugin_leaves_a_finished_trace_and_a_running_guest() {
    let firmware = Firmware::lm3s6965evb(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.parquet");
    let output = run_ok(
        Command::new("qemu-system-arm")
            .env("MMIO_TRACE_PANIC_AT", "4")
            .args(lm3s6965evb_args(&firmware))
            .arg("-plugin")
            .arg(plugin_arg(&out, "lm3s6965evb", "")),
        "qemu-system-arm with a panicking plugin",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("mmio_trace: internal error").count(),
        1,
        "{stderr}"
    );
    assert!(!dir.path().join("t.parquet.partial").exists());
    let trace = read_trace(&out);
    let pcs: Vec<u64> = trace.iter().map(|s| s.event.guest_pc).collect();
    let expected: Vec<u64> = expected_before_polling()[..4]
        .iter()
        .map(|e| firmware.pc(e.1))
        .collect();
    assert_eq!(pcs, expected);
}

#[test]
fn instruction_counts_follow_the_firmware() {
    let firmware = Firmware::lm3s6965evb(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    run_plugin(&firmware, &out, ",icount=on");
    let trace = read_trace(&out);
    check_trace(&firmware, &trace, Fields::All);
    let counts: Vec<u64> = trace
        .iter()
        .map(|s| s.event.instr_count.expect("icount=on"))
        .collect();
    // reset: `movw r3, #0x301; ldr r2, [pc, #…]` then the labelled store: 2 before it.
    assert_eq!(counts[0], 2);
    // The three UART data writes are one 4-instruction loop apart.
    assert_eq!(&counts[1..4], &[counts[1], counts[1] + 4, counts[1] + 8]);
    assert!(
        counts.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing"
    );
}

#[test]
fn filters_keep_only_what_was_asked() {
    let firmware = Firmware::lm3s6965evb(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    run_plugin(&firmware, &out, ",devices=pl011,access=w");
    let trace = read_trace(&out);
    let got: Vec<(u64, u64)> = trace
        .iter()
        .map(|s| (s.event.guest_pc, s.event.value))
        .collect();
    let want = vec![
        (firmware.pc("uart_ctl_write"), 0x301),
        (firmware.pc("uart_data_write"), u64::from(b'H')),
        (firmware.pc("uart_data_write"), u64::from(b'i')),
        (firmware.pc("uart_data_write"), u64::from(b'\n')),
        (firmware.pc("uart_ibrd_write"), 0x68),
    ];
    assert_eq!(got, want);

    let out = dir.path().join("stubs.jsonl");
    run_plugin(&firmware, &out, ",kinds=unimplemented+unassigned");
    let missing: Vec<(u64, Option<DeviceKind>)> = read_trace(&out)
        .into_iter()
        .map(|s| (s.event.guest_pc, s.kind))
        .collect();
    let stub = Some(DeviceKind::Unimplemented);
    let hole = Some(DeviceKind::Unassigned);
    assert_eq!(
        missing,
        [
            (firmware.pc("flash_control_write"), stub),
            (firmware.pc("flash_control_read"), stub),
            (firmware.pc("hibernation_read"), stub),
            (firmware.pc("hole_write"), hole),
            (firmware.pc("hole_read"), hole),
        ]
    );
    let out = dir.path().join("only-stubs.jsonl");
    run_plugin(&firmware, &out, ",kinds=unimplemented");
    let devices: Vec<Option<String>> = read_trace(&out).into_iter().map(|s| s.device).collect();
    assert_eq!(
        devices,
        [
            Some("flash-control".into()),
            Some("flash-control".into()),
            Some("hibernation".into())
        ]
    );
}

#[test]
fn bad_plugin_arguments_fail_at_load_with_a_message() {
    let firmware = Firmware::lm3s6965evb(&[]);
    let cases = [
        (
            "out_log=/nonexistent-dir/t.parquet",
            "/nonexistent-dir/t.parquet.partial: cannot create the trace file",
        ),
        (
            "out_log=t.csv",
            "t.csv: unsupported trace file extension (use .parquet, .jsonl, .ndjson, .json)",
        ),
        ("out_log=t.jsonl,colour=red", "unknown argument \"colour\""),
        (
            "out_log=t.jsonl,ranges=0x10-0x1",
            "ranges=0x10-0x1: range ends before it starts",
        ),
        (
            "out_log=t.jsonl,mtree=/nonexistent.mtree",
            "mtree=/nonexistent.mtree: cannot read: No such file or directory (os error 2)",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (args, message) in cases {
        let output = Command::new("qemu-system-arm")
            .current_dir(dir.path())
            .args(lm3s6965evb_args(&firmware))
            .arg("-plugin")
            .arg(format!("{},{args}", tools().plugin.display()))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args}: {stderr}");
        assert!(stderr.contains(message), "{args}: {stderr}");
        // Issue #15: stderr is a pipe here, so no colour codes.
        assert!(!stderr.contains('\x1b'), "{args}: {stderr:?}");
    }
}

#[test]
fn the_cli_dumps_the_map_runs_qemu_and_prints_the_summary() {
    let firmware = Firmware::lm3s6965evb(&[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo.parquet");
    let mtree = dir.path().join("map.txt");
    let output = run_ok(
        Command::new(&tools().cli)
            .arg("qemu")
            .arg("--out")
            .arg(&out)
            .arg("--save-mtree")
            .arg(&mtree)
            .arg("--")
            .arg("qemu-system-arm")
            .args(lm3s6965evb_args(&firmware)),
        "mmio-trace qemu",
    );
    let trace = read_trace(&out);
    let polls = check_trace(&firmware, &trace, Fields::All);
    // The map QEMU reported is the one the fixture was taken from (QEMU lists the
    // flat views in no fixed order, so compare the parsed maps).
    assert_eq!(
        parsed_map(&std::fs::read_to_string(&mtree).unwrap()),
        parsed_map(include_str!(
            "../../mmio-frontend/tests/fixtures/lm3s6965evb.mtree"
        ))
    );
    let table = String::from_utf8(output.stdout).unwrap();
    let pc = |label| format!("{:#x}", firmware.pc(label));
    let want = format!(
        "trace: {out}
device         base        kind           reads  writes  registers  pcs  first_pc  last_pc
v7m_systick    0xe000e010  device         {polls:>5}       3          3    4  {load:>8}  {poll:>7}
pl011          0x4000c000  device            11       5         12    7  {uart:>8}  {pair:>7}
flash-control  0x400fd000  unimplemented      1       1          2    2  {fcw:>8}  {fcr:>7}
(none)         -           unassigned         1       1          2    2  {hw:>8}  {hr:>7}
hibernation    0x400fc000  unimplemented      1       0          1    1  {hib:>8}  {hib:>7}
{events} events, 5 devices

missing peripherals (what the board does not model):
range                  kind           device         reads  writes  pcs  first_pc
0x40001000-0x40001fff  unassigned     -                  1       1    2  {hw:>8}
0x400fc000-0x400fcfff  unimplemented  hibernation        1       0    1  {hib:>8}
0x400fd000-0x400fdfff  unimplemented  flash-control      1       1    2  {fcw:>8}
",
        out = out.display(),
        load = pc("systick_load_write"),
        poll = pc("systick_ctrl_read"),
        uart = pc("uart_ctl_write"),
        pair = pc("uart_id_pair_read"),
        fcw = pc("flash_control_write"),
        fcr = pc("flash_control_read"),
        hw = pc("hole_write"),
        hr = pc("hole_read"),
        hib = pc("hibernation_read"),
        events = trace.len(),
    );
    assert_eq!(table, want);
}

/// The CPU's flat view: (first, last, name, base, kind) per range.
fn parsed_map(text: &str) -> Vec<(u64, u64, String, u64, DeviceKind)> {
    let devices = std::sync::Arc::new(mmio_core::DeviceTable::new());
    let space =
        mmio_frontend::address_space::AddressSpace::from_mtree(text, devices.clone()).unwrap();
    space
        .map()
        .ranges()
        .map(|(first, last, found)| {
            let device = devices.get(found.device).unwrap();
            (
                first,
                last,
                device.name.to_string(),
                found.base,
                device.kind,
            )
        })
        .collect()
}
