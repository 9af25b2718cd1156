//! MIPS under real qemu-system-mips (big-endian) and -mipsel `-M malta`: the
//! project's firmware (`firmware/malta`, one source for both), which reaches the
//! board's devices through kseg1 (virtual 0xa0000000 + physical) and PCI
//! configuration space, little-endian, through the GT-64120; and Debian's U-Boot for
//! little-endian Malta, once as QEMU wants a BIOS image in little-endian mode (its
//! 32-bit words swapped: QEMU's malta.c swaps them back) and once as Debian ships it,
//! which QEMU executes as garbage until it runs off into the board's empty slots,
//! fetching its instructions from there: the run issue #20 saw "record nothing".
//! Each is checked against QEMU's own trace of the run.

use std::path::Path;
use std::time::Duration;

use integration_tests::{
    assert_matches_qemu_trace, match_qemu_trace, run_ok, run_traced, run_traced_with_console,
    Firmware, Seen,
};
use mmio_core::{Access, DeviceKind};

const UBOOT: &str = "/usr/lib/u-boot/maltael/u-boot.bin";

/// (label, access, physical address, size, value as the device saw it, device)
type Expected = (&'static str, Access, u64, u8, u64, &'static str);

/// The firmware's accesses; `letter` is what it prints (B on big-endian, L on little),
/// `status` and `gt_multi` the FPGA's and GT-64120's readings, which differ between
/// the two QEMU builds.
fn expected(letter: u8, status: u64, gt_multi: u64) -> Vec<Expected> {
    use Access::{Read as R, Write as W};
    vec![
        (
            "uart_thr_write",
            W,
            0x1800_03f8,
            1,
            u64::from(letter),
            "serial",
        ),
        (
            "uart_thr_write_newline",
            W,
            0x1800_03f8,
            1,
            u64::from(b'\n'),
            "serial",
        ),
        ("uart_lsr_read", R, 0x1800_03fd, 1, 0x60, "serial"),
        ("fpga_ledbar_write", W, 0x1f00_0408, 4, 0x5a, "malta-fpga"),
        (
            "fpga_ascii_write",
            W,
            0x1f00_0418,
            4,
            u64::from(letter),
            "malta-fpga",
        ),
        ("fpga_status_read", R, 0x1f00_0208, 4, status, "malta-fpga"),
        ("gt_multi_read", R, 0x1be0_0120, 4, gt_multi, "gt64120-isd"),
        // PCI is little-endian: the device's view on either CPU.
        (
            "pci_conf_addr_write",
            W,
            0x1be0_0cf8,
            4,
            0x8000_0000,
            "pci-conf-idx",
        ),
        (
            "pci_conf_data_read",
            R,
            0x1be0_0cfc,
            4,
            0x4620_11ab,
            "pci-conf-data",
        ),
        ("empty_slot_read", R, 0x17f0_0000, 4, 0, "empty-slot"),
    ]
}

fn check_firmware(endianness: &str, qemu: &str, expected: &[Expected]) {
    let firmware = Firmware::build_with(
        "malta",
        &[endianness.to_string()],
        &format!("{}-linux-gnu-nm", qemu.trim_start_matches("qemu-system-")),
    );
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "-M",
        "malta",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "null",
        "-semihosting-config",
        "enable=on,target=native",
        "-kernel",
        firmware.elf.to_str().expect("utf-8 path"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = run_traced(qemu, &args, &["", ",instrument=all"], 0, dir.path());
    let trace = &run.traces[0];
    assert_matches_qemu_trace(trace, &run.qemu);
    assert_eq!(trace, &run.traces[1], "instrument=last lost an access");
    // QEMU's boot stub (in the flash, kseg1) sets the GT-64120 up first: it moves the
    // chip's own registers from 0x14000000 to 0x1be00000, a write that changes the map.
    let (stub, own): (Vec<&Seen>, Vec<&Seen>) =
        trace.iter().partition(|s| s.event.guest_pc >= 0xbfc0_0000);
    assert_eq!(stub.len(), 9);
    assert_eq!(
        (stub[0].event.phys_addr, stub[0].device.as_deref()),
        (Some(0x1400_0068), Some("gt64120-isd"))
    );
    assert!(stub[1..7]
        .iter()
        .all(|s| s.device.as_deref() == Some("gt64120-isd") && s.event.offset < 0x1000));
    let got: Vec<_> = own
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
    let want: Vec<_> = expected
        .iter()
        .map(|&(label, access, address, size, value, device)| {
            (
                firmware.pc(label),
                access,
                Some(address),
                // Through kseg1.
                address | 0xa000_0000,
                size,
                value,
                Some(device.to_string()),
                Some(if device == "empty-slot" {
                    DeviceKind::Unimplemented
                } else {
                    DeviceKind::Device
                }),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn big_endian_firmware_matches_qemus_own_trace() {
    check_firmware("be", "qemu-system-mips", &expected(b'B', 0x12, 0x0300_0000));
}

#[test]
fn little_endian_firmware_matches_qemus_own_trace() {
    check_firmware("el", "qemu-system-mipsel", &expected(b'L', 0x10, 0x3));
}

fn uboot_args(image: &Path) -> Vec<String> {
    [
        "-M",
        "malta",
        "-m",
        "256",
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
        image.to_str().expect("utf-8 path"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Debian's U-Boot for little-endian Malta, its words swapped for QEMU, up to its
/// prompt; `reset` ends the run (`-no-reboot`).
#[test]
fn debian_u_boot_matches_qemus_own_trace() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("u-boot-swapped.bin");
    run_ok(
        std::process::Command::new("objcopy")
            .args(["-I", "binary", "-O", "binary", "--reverse-bytes=4", UBOOT])
            .arg(&image),
        "objcopy",
    );
    let (run, console) = run_traced_with_console(
        "qemu-system-mipsel",
        &uboot_args(&image),
        &["", ",instrument=all"],
        0,
        dir.path(),
        &[("maltael # ", "reset\n")],
        None,
    );
    assert!(console.contains("Board: MIPS Malta"), "{console}");
    let trace = &run.traces[0];
    assert_matches_qemu_trace(trace, &run.qemu);
    assert_eq!(trace, &run.traces[1], "instrument=last lost an access");
    let devices: std::collections::BTreeSet<&str> =
        trace.iter().filter_map(|s| s.device.as_deref()).collect();
    for device in [
        "serial",
        "gt64120-isd",
        "pci-conf-idx",
        "pci-conf-data",
        "malta-fpga",
    ] {
        assert!(devices.contains(device), "{device} in {devices:?}");
    }
    assert!(trace.iter().all(|s| s.event.access != Access::Fetch));
}

/// The image as Debian ships it: QEMU runs its swapped words as other instructions,
/// which make no data access and end up running off into the GT-64120's empty slots.
/// The trace is those instruction fetches, as QEMU's own trace counts them.
#[test]
fn debian_u_boot_unswapped_runs_into_the_empty_slots_and_its_fetches_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = run_traced_with_console(
        "qemu-system-mipsel",
        &uboot_args(Path::new(UBOOT)),
        &[""],
        0,
        dir.path(),
        &[],
        Some(Duration::from_millis(1500)),
    );
    let trace = &run.traces[0];
    assert!(trace.len() > 1000, "{} events", trace.len());
    assert!(trace.iter().all(|s| {
        s.event.access == Access::Fetch
            && s.device.as_deref() == Some("empty-slot")
            && s.kind == Some(DeviceKind::Unimplemented)
            && s.event.phys_addr == Some(s.event.guest_pc & 0x1fff_ffff)
            && s.event.size == 4
            && s.event.value == 0
    }));
    // QEMU logged the fetch of a block the stop kept from running, at most.
    let covered = match_qemu_trace(trace, &run.qemu);
    assert!(
        run.qemu.len() - covered <= 1,
        "{} lines left",
        run.qemu.len() - covered
    );
}
