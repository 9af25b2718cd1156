//! PowerPC (big-endian, e500) under real qemu-system-ppc `-M ppce500`: the project's
//! firmware (`firmware/ppce500`: it maps the CCSR at 36-bit 0xfe0000000 through a TLB
//! entry of its own, so virtual and physical addresses differ, and reads PCI
//! configuration space, whose data register QEMU models little-endian) and Debian's
//! U-Boot for the board. Each is checked against QEMU's own trace of the run.

use integration_tests::{
    assert_matches_qemu_trace, run_traced, run_traced_with_console, Firmware, Seen,
};
use mmio_core::{Access, DeviceKind};

/// The CCSR: physical, and where the firmware maps it.
const CCSR: u64 = 0xf_e000_0000;
const CCSR_VIRT: u64 = 0xe000_0000;

/// (label, access, offset in the CCSR, size, value as the device saw it, device)
type Expected = (&'static str, Access, u64, u8, u64, &'static str);

fn expected() -> Vec<Expected> {
    use Access::{Read as R, Write as W};
    vec![
        ("uart_thr_write", W, 0x4500, 1, u64::from(b'E'), "serial"),
        (
            "uart_thr_write_newline",
            W,
            0x4500,
            1,
            u64::from(b'\n'),
            "serial",
        ),
        ("uart_lsr_read", R, 0x4505, 1, 0x60, "serial"),
        (
            "pci_conf_addr_write",
            W,
            0x8000,
            4,
            0x8000_0000,
            "pci-conf-idx",
        ),
        // The host bridge's ids as the little-endian register holds them (the CPU's
        // big-endian load saw 0x57193000).
        (
            "pci_conf_data_read",
            R,
            0x8004,
            4,
            0x0030_1957,
            "pci-conf-data",
        ),
        (
            "guts_porpllsr_read",
            R,
            0xe_0000,
            4,
            0x0606_180c,
            "mpc8544.guts",
        ),
        (
            "gpio_dir_write",
            W,
            0xf_f000,
            4,
            0x8000_0000,
            "mpc8xxx_gpio",
        ),
        (
            "gpio_power_off_write",
            W,
            0xf_f008,
            4,
            0x8000_0000,
            "mpc8xxx_gpio",
        ),
    ]
}

fn check_firmware(firmware: &Firmware, trace: &[Seen]) {
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
                e.value,
                s.device.clone(),
                s.kind,
            )
        })
        .collect();
    let want: Vec<_> = expected()
        .into_iter()
        .map(|(label, access, offset, size, value, device)| {
            (
                firmware.pc(label),
                access,
                Some(CCSR + offset),
                CCSR_VIRT + offset,
                size,
                value,
                Some(device.to_string()),
                Some(DeviceKind::Device),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn firmware_matches_qemus_own_trace() {
    let firmware = Firmware::build_with("ppce500", &[], "powerpc-linux-gnu-nm");
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "-M",
        "ppce500",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "null",
        "-kernel",
        firmware.elf.to_str().expect("utf-8 path"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = run_traced(
        "qemu-system-ppc",
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
    check_firmware(&firmware, &run.traces[0]);
}

/// Debian's U-Boot for `ppce500` (its ELF: QEMU loads it at its link address) probes
/// PCI through the e500 host bridge and waits at its prompt; `reset` ends the run
/// (`-no-reboot`).
#[test]
fn debian_u_boot_matches_qemus_own_trace() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "-M",
        "ppce500",
        "-no-reboot",
        "-nic",
        "none",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-bios",
        "/usr/lib/u-boot/qemu-ppce500/uboot.elf",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (run, console) = run_traced_with_console(
        "qemu-system-ppc",
        &args,
        &["", ",instrument=all"],
        0,
        dir.path(),
        &[("Hit any key to stop autoboot", "\n"), ("=> ", "reset\n")],
        None,
    );
    assert!(console.contains("U-Boot 2023.01"), "{console}");
    let trace = &run.traces[0];
    assert_matches_qemu_trace(trace, &run.qemu);
    assert_eq!(trace, &run.traces[1], "instrument=last lost an access");
    // Configuration reads of the host bridge's vendor id: the register's own value.
    assert!(trace.iter().any(|s| {
        s.device.as_deref() == Some("pci-conf-data")
            && s.event.size == 4
            && s.event.value == 0x0030_1957
    }));
}
