//! AArch64 under real qemu-system-aarch64 `-M virt`: the project's firmware
//! (`firmware/virt64`: the UART, QEMU's big-endian fw_cfg, and an e1000e whose BAR it
//! maps, moves and unmaps through the ECAM), and Debian's U-Boot (`u-boot-qemu`),
//! which enumerates PCI and brings up an e1000e: the run that aborted QEMU under the
//! plugin before (issue #20). Each is checked against QEMU's own trace of the run.

use integration_tests::{assert_matches_qemu_trace, run_traced, Firmware, Seen};
use mmio_core::{Access, DeviceKind};

const UBOOT: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";

fn firmware_args(firmware: &Firmware) -> Vec<String> {
    [
        "-M",
        "virt",
        "-cpu",
        "cortex-a57",
        "-kernel",
        firmware.elf.to_str().expect("utf-8 path"),
        "-device",
        "e1000e,addr=1",
        "-nic",
        "none",
        "-display",
        "none",
        "-serial",
        "null",
        "-semihosting-config",
        "enable=on,target=native",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// (label, access, physical address, size, value as the device saw it, device)
type Expected = (&'static str, Access, u64, u8, u64, &'static str);

const ECAM_NIC: u64 = 0x40_1000_8000;

fn expected() -> Vec<Expected> {
    use Access::{Read as R, Write as W};
    vec![
        (
            "uart_dr_write_h",
            W,
            0x900_0000,
            1,
            u64::from(b'h'),
            "pl011",
        ),
        (
            "uart_dr_write_i",
            W,
            0x900_0000,
            1,
            u64::from(b'i'),
            "pl011",
        ),
        (
            "uart_dr_write_newline",
            W,
            0x900_0000,
            1,
            u64::from(b'\n'),
            "pl011",
        ),
        ("uart_fr_read32", R, 0x900_0018, 4, 0x90, "pl011"),
        ("uart_cr_read16", R, 0x900_0030, 2, 0x300, "pl011"),
        ("fw_cfg_select_signature", W, 0x902_0008, 2, 0, "fwcfg.ctl"),
        // fw_cfg is big-endian: the device's view of the CPU's 0x554d4551 ("QEMU").
        (
            "fw_cfg_signature_read64",
            R,
            0x902_0000,
            8,
            0x5145_4d55_0000_0000,
            "fwcfg.data",
        ),
        // The CPU stored 0x0100; the device took key 1.
        ("fw_cfg_select_id", W, 0x902_0008, 2, 1, "fwcfg.ctl"),
        (
            "fw_cfg_id_read32",
            R,
            0x902_0000,
            4,
            0x0300_0000,
            "fwcfg.data",
        ),
        (
            "ecam_id_read32",
            R,
            ECAM_NIC,
            4,
            0x10d3_8086,
            "pcie-mmcfg-mmio",
        ),
        (
            "ecam_bar0_write_a",
            W,
            ECAM_NIC + 0x10,
            4,
            0x1000_0000,
            "pcie-mmcfg-mmio",
        ),
        (
            "ecam_bar0_bar1_read64",
            R,
            ECAM_NIC + 0x10,
            8,
            0x1000_0000,
            "pcie-mmcfg-mmio",
        ),
        (
            "ecam_command_enable_a",
            W,
            ECAM_NIC + 0x4,
            2,
            0x2,
            "pcie-mmcfg-mmio",
        ),
        // Mapped by the firmware after the map was dumped: named all the same.
        (
            "e1000e_status_read_a",
            R,
            0x1000_0008,
            4,
            0x8_0283,
            "e1000e-mmio",
        ),
        (
            "ecam_command_disable_a",
            W,
            ECAM_NIC + 0x4,
            2,
            0,
            "pcie-mmcfg-mmio",
        ),
        (
            "ecam_bar0_write_b",
            W,
            ECAM_NIC + 0x10,
            4,
            0x1010_0000,
            "pcie-mmcfg-mmio",
        ),
        (
            "ecam_command_enable_b",
            W,
            ECAM_NIC + 0x4,
            2,
            0x2,
            "pcie-mmcfg-mmio",
        ),
        // Moved.
        (
            "e1000e_status_read_b",
            R,
            0x1010_0008,
            4,
            0x8_0283,
            "e1000e-mmio",
        ),
        (
            "ecam_command_disable_b",
            W,
            ECAM_NIC + 0x4,
            2,
            0,
            "pcie-mmcfg-mmio",
        ),
    ]
}

fn check_firmware(firmware: &Firmware, trace: &[Seen]) {
    let got: Vec<_> = trace
        .iter()
        .map(|s| {
            let e = &s.event;
            let base = match s.device.as_deref() {
                Some("e1000e-mmio") => e.phys_addr.map(|a| a & !0xf_ffff),
                _ => None,
            };
            (
                e.guest_pc,
                e.access,
                e.phys_addr,
                e.virt_addr,
                e.size,
                e.value,
                s.device.clone(),
                s.kind,
                base.map(|base| e.phys_addr.unwrap_or(0) - base),
            )
        })
        .collect();
    let want: Vec<_> = expected()
        .into_iter()
        .map(|(label, access, address, size, value, device)| {
            (
                firmware.pc(label),
                access,
                Some(address),
                address,
                size,
                value,
                Some(device.to_string()),
                Some(DeviceKind::Device),
                (device == "e1000e-mmio").then_some(0x8),
            )
        })
        .collect();
    assert_eq!(got, want);
    // The NIC's register offsets are from wherever its BAR was.
    let status: Vec<u64> = trace
        .iter()
        .filter(|s| s.device.as_deref() == Some("e1000e-mmio"))
        .map(|s| s.event.offset)
        .collect();
    assert_eq!(status, [0x8, 0x8]);
}

#[test]
fn firmware_with_a_moving_pci_bar_matches_qemus_own_trace() {
    let firmware = Firmware::build_with("virt64", &[], "aarch64-linux-gnu-nm");
    let dir = tempfile::tempdir().unwrap();
    let run = run_traced(
        "qemu-system-aarch64",
        &firmware_args(&firmware),
        &["", ",instrument=all,skip_sp_pc=off"],
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

/// Debian's U-Boot brings up an e1000e (PCI enumeration through the ECAM, BARs
/// assigned, memory decoding on), waits for its autoboot and powers off (PSCI) when
/// its serial input says so. Before issue #20's fix, QEMU 10.0.2+ds-2 aborted in
/// `iotlb_to_section` on the BAR write.
#[test]
fn debian_u_boot_bringing_up_an_e1000e_matches_qemus_own_trace() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("serial-in.txt");
    // A key stops the autoboot, then a command line.
    std::fs::write(&input, "\n\npoweroff\n").unwrap();
    let serial = dir.path().join("serial-out.txt");
    let args: Vec<String> = [
        "-M",
        "virt",
        "-cpu",
        "cortex-a57",
        "-m",
        "512",
        "-bios",
        UBOOT,
        "-device",
        "e1000e",
        "-nic",
        "none",
        "-display",
        "none",
        "-monitor",
        "none",
        "-chardev",
        &format!(
            "file,id=serial,path={},input-path={}",
            serial.display(),
            input.display()
        ),
        "-serial",
        "chardev:serial",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = run_traced(
        "qemu-system-aarch64",
        &args,
        &["", ",instrument=all,skip_sp_pc=off"],
        0,
        dir.path(),
    );
    let console = std::fs::read_to_string(&serial).unwrap();
    assert!(console.contains("Net:   e1000: "), "{console}");
    assert!(console.contains("poweroff ..."), "{console}");
    let trace = &run.traces[0];
    assert_matches_qemu_trace(trace, &run.qemu);
    assert_eq!(trace, &run.traces[1], "instrument=last lost an access");
    // U-Boot programs the NIC's BAR0 at the window's start and talks to it there.
    let nic: Vec<&Seen> = trace
        .iter()
        .filter(|s| s.device.as_deref() == Some("e1000e-mmio"))
        .collect();
    assert!(nic.len() > 100, "{} e1000e accesses", nic.len());
    assert!(nic
        .iter()
        .all(|s| s.event.phys_addr.unwrap() - s.event.offset == 0x1000_0000));
    assert!(
        trace
            .iter()
            .any(|s| s.device.as_deref() == Some("pcie-mmcfg-mmio")
                && s.event.access == Access::Write)
    );
}
