//! The ARMv7-A test firmware under real qemu-system-arm (-M virt, Cortex-A15): the MMU
//! maps the UART at a virtual address other than its physical one, and with -smp 2
//! both vCPUs' events are recorded.

use std::path::Path;
use std::process::Command;

use integration_tests::{
    mtree_fixture, plugin_arg, python_check, read_trace, run_ok, trace_variants_in_one_run,
    Firmware, Seen,
};
use mmio_core::{Access, DeviceKind, MmioEvent};

const UART_PHYS: u64 = 0x0900_0000;
const UART_VIRT: u64 = 0xf000_0000;

/// qemu-system-arm running the firmware, without a plugin yet.
fn qemu(firmware: &Firmware, smp: &str, icount: bool) -> Command {
    let mut command = Command::new("qemu-system-arm");
    command
        .args(["-M", "virt", "-cpu", "cortex-a15", "-smp", smp, "-kernel"])
        .arg(&firmware.elf)
        .args(["-display", "none", "-serial", "null"])
        .args(["-semihosting-config", "enable=on,target=native"]);
    if icount {
        command.args(["-icount", "shift=0"]);
    }
    command
}

fn run(firmware: &Firmware, out: &Path, smp: &str, icount: bool) {
    run_ok(
        qemu(firmware, smp, icount)
            .arg("-plugin")
            .arg(plugin_arg(out, "virt", ",machine=virt")),
        "qemu-system-arm -M virt with the plugin",
    );
}

/// (cpu, access, PC label, virtual address, physical address, size, value, offset)
type Expected = (u32, Access, &'static str, u64, u64, u8, u64, u64);

fn check(firmware: &Firmware, seen: &[&Seen], expected: &[Expected]) {
    let got: Vec<_> = seen
        .iter()
        .map(|s| {
            (
                s.event.cpu,
                s.event.access,
                s.event.guest_pc,
                s.event.virt_addr,
                s.event.phys_addr,
                s.event.size,
                s.event.value,
                s.event.offset,
                s.device.as_deref(),
                s.kind,
            )
        })
        .collect();
    let want: Vec<_> = expected
        .iter()
        .map(|&(cpu, access, label, virt, phys, size, value, offset)| {
            (
                cpu,
                access,
                firmware.pc(label),
                virt,
                Some(phys),
                size,
                value,
                offset,
                Some("pl011"),
                Some(DeviceKind::Device),
            )
        })
        .collect();
    assert_eq!(got, want);
}

fn cpu0_events() -> Vec<Expected> {
    vec![
        // MMU off: the guest's address is the physical one.
        (
            0,
            Access::Write,
            "uart_phys_write",
            UART_PHYS,
            UART_PHYS,
            1,
            u64::from(b'P'),
            0,
        ),
        // MMU on: the UART through its second mapping.
        (
            0,
            Access::Write,
            "uart_virt_write",
            UART_VIRT,
            UART_PHYS,
            1,
            u64::from(b'V'),
            0,
        ),
        // TXFE | RXFE.
        (
            0,
            Access::Read,
            "uart_virt_flags_read",
            UART_VIRT + 0x18,
            UART_PHYS + 0x18,
            4,
            0x90,
            0x18,
        ),
    ]
}

#[test]
fn the_mmu_gives_virtual_and_physical_addresses() {
    let firmware = Firmware::build("virt", &[]);
    let dir = tempfile::tempdir().unwrap();
    for name in ["t.parquet", "t.jsonl"] {
        let out = dir.path().join(name);
        run(&firmware, &out, "1", true);
        let trace = read_trace(&out);
        check(&firmware, &trace.iter().collect::<Vec<_>>(), &cpu0_events());
    }
}

#[test]
fn two_vcpus_record_into_one_valid_file() {
    let firmware = Firmware::build("virt", &[]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("smp.parquet");
    // No -icount: both vCPUs run on their own threads (MTTCG).
    run(&firmware, &out, "2", false);
    let trace = read_trace(&out);
    assert_eq!(trace.len(), 4);
    for (seq, seen) in trace.iter().enumerate() {
        assert_eq!(seen.event.seq, seq as u64);
    }
    let on = |cpu| {
        trace
            .iter()
            .filter(|s| s.event.cpu == cpu)
            .collect::<Vec<_>>()
    };
    check(&firmware, &on(0), &cpu0_events());
    check(
        &firmware,
        &on(1),
        &[(
            1,
            Access::Write,
            "cpu1_uart_virt_write",
            UART_VIRT,
            UART_PHYS,
            1,
            u64::from(b'1'),
            0,
        )],
    );
    python_check(&out, &[(Some("pl011"), 4)], 0x90);
}

/// Issue #12's tripwire with two vCPUs on their own threads: the plugin as it ships
/// (`instrument=last`) and a copy instrumenting every load and store, in one run, see
/// the same accesses on each vCPU (the two copies may number the vCPUs' interleaving
/// differently, so each vCPU's events are compared).
#[test]
fn instrumenting_only_the_last_instruction_loses_nothing_on_two_vcpus() {
    let firmware = Firmware::build("virt", &[]);
    let dir = tempfile::tempdir().unwrap();
    let traces = trace_variants_in_one_run(
        &mut qemu(&firmware, "2", false),
        &mtree_fixture("virt"),
        &["", ",instrument=all,skip_sp_pc=off"],
        dir.path(),
    );
    let on = |trace: &[Seen], cpu| {
        trace
            .iter()
            .filter(|s| s.event.cpu == cpu)
            .map(|s| Seen {
                event: MmioEvent { seq: 0, ..s.event },
                ..s.clone()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(traces[0].len(), 4);
    for cpu in [0, 1] {
        assert_eq!(on(&traces[0], cpu), on(&traces[1], cpu), "vCPU {cpu}");
    }
    check(
        &firmware,
        &traces[0]
            .iter()
            .filter(|s| s.event.cpu == 0)
            .collect::<Vec<_>>(),
        &cpu0_events(),
    );
}

/// Issue #13: writes to a ROM device are commands to its device model, and both front
/// ends record them. The firmware queries virt's CFI flash (`virt.flash0`, `romd` in
/// the map): the query command, the three "QRY" words (both x16 chips of the 32-bit
/// bank answer, hence `0x00510051`), the read-array command; the last read, in
/// read-array mode, is plain memory and recorded by neither. PANDA's half, the same
/// accesses through its callbacks' decision over the same map, is
/// `mmio-panda`'s `recording::tests::a_cfi_flash_query_is_recorded_as_qemu_records_it`
/// (a test binary cannot link the PANDA plugin outside PANDA).
#[test]
fn a_cfi_flash_query_is_recorded_by_both_front_ends() {
    let firmware = Firmware::build("virt", &["CFI_QUERY"]);
    let dir = tempfile::tempdir().unwrap();
    let traces = trace_variants_in_one_run(
        &mut qemu(&firmware, "1", false),
        &mtree_fixture("virt"),
        &["", ",instrument=all,skip_sp_pc=off"],
        dir.path(),
    );
    let flash = |access, label, addr: u64, value| {
        (
            access,
            firmware.pc(label),
            addr,
            value,
            Some("virt.flash0".to_string()),
        )
    };
    let want = vec![
        flash(Access::Write, "cfi_query_command", 0x154, 0x0098_0098),
        flash(Access::Read, "cfi_read_q", 0x40, 0x0051_0051),
        flash(Access::Read, "cfi_read_r", 0x44, 0x0052_0052),
        flash(Access::Read, "cfi_read_y", 0x48, 0x0059_0059),
        flash(Access::Write, "cfi_read_array_command", 0x0, 0x00ff_00ff),
    ];
    let qemu_flash: Vec<_> = traces[0]
        .iter()
        .filter(|s| s.event.phys_addr < Some(UART_PHYS))
        .map(|s| {
            assert_eq!((s.event.size, s.kind), (4, Some(DeviceKind::Device)));
            assert_eq!(s.event.offset, s.event.phys_addr.unwrap());
            (
                s.event.access,
                s.event.guest_pc,
                s.event.phys_addr.unwrap(),
                s.event.value,
                s.device.clone(),
            )
        })
        .collect();
    assert_eq!(qemu_flash, want);
    assert_eq!(traces[0].len(), 5 + cpu0_events().len());
    assert_eq!(traces[0], traces[1], "instrument=last lost an access");
}

/// Issue #20: a real 32-bit Arm guest, Debian's U-Boot for `qemu_arm` (it probes the
/// CFI flash, virtio-mmio and PCI, counts down its autoboot), powered off
/// through PSCI from its console, against QEMU's own trace of the run.
#[test]
fn debian_u_boot_matches_qemus_own_trace() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "-M",
        "virt",
        "-m",
        "512",
        "-bios",
        "/usr/lib/u-boot/qemu_arm/u-boot.bin",
        "-nic",
        "none",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "stdio",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (run, console) = integration_tests::run_traced_with_console(
        "qemu-system-arm",
        &args,
        &["", ",instrument=all,skip_sp_pc=off"],
        0,
        dir.path(),
        &[
            ("Hit any key to stop autoboot", "\n"),
            ("=> ", "poweroff\n"),
        ],
        None,
    );
    assert!(console.contains("poweroff ..."), "{console}");
    let trace = &run.traces[0];
    integration_tests::assert_matches_qemu_trace(trace, &run.qemu);
    assert_eq!(trace, &run.traces[1], "a shortcut lost an access");
    let devices: std::collections::BTreeSet<&str> =
        trace.iter().filter_map(|s| s.device.as_deref()).collect();
    for device in ["pl011", "virt.flash0", "pcie-mmcfg-mmio", "virtio-mmio"] {
        assert!(devices.contains(device), "{device} in {devices:?}");
    }
}
