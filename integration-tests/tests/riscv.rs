//! RISC-V under real qemu-system-riscv32 and -riscv64 `-M virt`: the project's
//! firmware (`firmware/riscv-virt`, one source for both) and Debian's U-Boot
//! (`u-boot-qemu`, M-mode), each checked against QEMU's own trace of the run.

use integration_tests::{
    assert_matches_qemu_trace, run_traced, run_traced_with_console, Firmware, Seen,
};
use mmio_core::{Access, DeviceKind};

/// (label, access, address, size, value as the device saw it (`None`: a clock's,
/// which only QEMU's trace can tell), device)
type Expected = (&'static str, Access, u64, u8, Option<u64>, &'static str);

fn expected(mtime_size: u8) -> Vec<Expected> {
    use Access::{Read as R, Write as W};
    vec![
        (
            "uart_thr_write_h",
            W,
            0x1000_0000,
            1,
            Some(u64::from(b'H')),
            "serial",
        ),
        (
            "uart_thr_write_i",
            W,
            0x1000_0000,
            1,
            Some(u64::from(b'i')),
            "serial",
        ),
        (
            "uart_thr_write_newline",
            W,
            0x1000_0000,
            1,
            Some(u64::from(b'\n')),
            "serial",
        ),
        ("uart_lsr_read", R, 0x1000_0005, 1, Some(0x60), "serial"),
        ("rtc_time_low_read", R, 0x10_1000, 4, None, "goldfish_rtc"),
        ("rtc_time_high_read", R, 0x10_1004, 4, None, "goldfish_rtc"),
        (
            "clint_mtimecmp_write",
            W,
            0x200_4000,
            4,
            Some(0x1234_5678),
            "riscv.aclint.mtimer",
        ),
        (
            "clint_mtimecmp_read",
            R,
            0x200_4000,
            4,
            Some(0x1234_5678),
            "riscv.aclint.mtimer",
        ),
        (
            "clint_mtime_read",
            R,
            0x200_bff8,
            mtime_size,
            None,
            "riscv.aclint.mtimer",
        ),
        (
            "plic_priority_write",
            W,
            0xc00_0004,
            4,
            Some(5),
            "riscv.sifive.plic",
        ),
        (
            "plic_priority_read",
            R,
            0xc00_0004,
            4,
            Some(5),
            "riscv.sifive.plic",
        ),
        (
            "fw_cfg_select_write",
            W,
            0x1010_0008,
            2,
            Some(0),
            "fwcfg.ctl",
        ),
        (
            "fw_cfg_data_read_0",
            R,
            0x1010_0000,
            1,
            Some(u64::from(b'Q')),
            "fwcfg.data",
        ),
        (
            "fw_cfg_data_read_1",
            R,
            0x1010_0000,
            1,
            Some(u64::from(b'E')),
            "fwcfg.data",
        ),
        (
            "fw_cfg_data_read_2",
            R,
            0x1010_0000,
            1,
            Some(u64::from(b'M')),
            "fwcfg.data",
        ),
        (
            "fw_cfg_data_read_3",
            R,
            0x1010_0000,
            1,
            Some(u64::from(b'U')),
            "fwcfg.data",
        ),
        (
            "test_finisher_pass_write",
            W,
            0x10_0000,
            4,
            Some(0x5555),
            "riscv.sifive.test",
        ),
    ]
}

fn check_firmware(firmware: &Firmware, trace: &[Seen], expected: &[Expected]) {
    let got: Vec<_> = trace
        .iter()
        .map(|s| {
            let e = &s.event;
            (
                e.guest_pc,
                e.access,
                e.phys_addr,
                e.virt_addr,
                e.size,
                s.device.clone(),
                s.kind,
            )
        })
        .collect();
    let want: Vec<_> = expected
        .iter()
        .map(|&(label, access, address, size, _, device)| {
            (
                firmware.pc(label),
                access,
                Some(address),
                address,
                size,
                Some(device.to_string()),
                Some(DeviceKind::Device),
            )
        })
        .collect();
    assert_eq!(got, want);
    for (seen, &(label, _, _, _, value, _)) in trace.iter().zip(expected) {
        if let Some(value) = value {
            assert_eq!(seen.event.value, value, "{label}");
        }
    }
}

fn check(xlen: &str, mtime_size: u8) {
    let firmware =
        Firmware::build_with("riscv-virt", &[xlen.to_string()], "riscv64-unknown-elf-nm");
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "-M",
        "virt",
        "-bios",
        "none",
        "-kernel",
        firmware.elf.to_str().expect("utf-8 path"),
        "-display",
        "none",
        "-serial",
        "null",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = run_traced(
        &format!("qemu-system-riscv{xlen}"),
        &args,
        &["", ",instrument=all"],
        0,
        dir.path(),
    );
    assert_matches_qemu_trace(&run.traces[0], &run.qemu);
    assert_eq!(
        run.traces[0], run.traces[1],
        "instrument=last lost an access"
    );
    check_firmware(&firmware, &run.traces[0], &expected(mtime_size));
}

#[test]
fn rv32_firmware_matches_qemus_own_trace() {
    check("32", 4);
}

#[test]
fn rv64_firmware_matches_qemus_own_trace() {
    check("64", 8);
}

/// Debian's U-Boot for `qemu-riscv64` in M-mode: it probes virtio, the flash and
/// PCI, counts down its autoboot, and powers off through QEMU's test device when told
/// so on its console.
#[test]
fn debian_u_boot_matches_qemus_own_trace() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "-M",
        "virt",
        "-m",
        "256",
        "-bios",
        "/usr/lib/u-boot/qemu-riscv64/u-boot.bin",
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
    let (run, console) = run_traced_with_console(
        "qemu-system-riscv64",
        &args,
        &["", ",instrument=all"],
        0,
        dir.path(),
        &[
            ("Hit any key to stop autoboot", "\n"),
            ("=> ", "poweroff\n"),
        ],
        None,
    );
    assert!(console.contains("U-Boot 2023.01"), "{console}");
    let trace = &run.traces[0];
    assert_matches_qemu_trace(trace, &run.qemu);
    assert_eq!(trace, &run.traces[1], "instrument=last lost an access");
    let devices: std::collections::BTreeSet<&str> =
        trace.iter().filter_map(|s| s.device.as_deref()).collect();
    for device in [
        "serial",
        "riscv.aclint.mtimer",
        "pcie-mmcfg-mmio",
        "riscv.sifive.test",
    ] {
        assert!(devices.contains(device), "{device} in {devices:?}");
    }
}
