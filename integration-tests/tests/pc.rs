//! x86 under real qemu-system-x86_64, `-M pc` and `-M q35`: Debian's SeaBIOS runs
//! first (a real firmware nobody here wrote: port I/O to a dozen devices, PCI
//! enumeration, BARs assigned at run time), then QEMU's multiboot loader starts the
//! project's firmware (`firmware/pc`), which makes every kind of port I/O and moves
//! the VGA's MMIO BAR. Every access of the run is checked against QEMU's own
//! `memory_region_ops_*` trace, the firmware's exactly against its labels.

use integration_tests::{assert_matches_qemu_trace, run_traced, Firmware, Seen};
use mmio_core::{Access, DeviceKind, MmioEvent, Space};

/// The firmware's link address: events from there on are its own.
const FIRMWARE_BASE: u64 = 0x10_0000;

fn args(firmware: &Firmware, machine: &str) -> Vec<String> {
    [
        "-M",
        machine,
        "-display",
        "none",
        "-serial",
        "null",
        "-nic",
        "none",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-kernel",
        firmware.elf.to_str().expect("utf-8 path"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// (label, access, space, address, size, value, device; `None`: unassigned)
type Expected = (
    &'static str,
    Access,
    Space,
    u64,
    u8,
    u64,
    Option<&'static str>,
);

/// The firmware's accesses, in order (`firmware/pc/fw.c`); `host_id`, `vga_address`
/// are what differs between the machines: the host bridge's ids, and the VGA's
/// configuration address (00:02.0 on pc, 00:01.0 on q35).
fn expected(host_id: u32, vga_address: u32) -> Vec<Expected> {
    use Access::{Read as R, Write as W};
    use Space::{Io, Memory};
    let vga = u64::from(vga_address);
    vec![
        (
            "serial_rep_outsb",
            W,
            Io,
            0x3f8,
            1,
            u64::from(b'p'),
            Some("serial"),
        ),
        (
            "serial_rep_outsb",
            W,
            Io,
            0x3f8,
            1,
            u64::from(b'c'),
            Some("serial"),
        ),
        (
            "serial_rep_outsb",
            W,
            Io,
            0x3f8,
            1,
            u64::from(b'\n'),
            Some("serial"),
        ),
        (
            "serial_scratch_outb_dx",
            W,
            Io,
            0x3ff,
            1,
            0x5a,
            Some("serial"),
        ),
        (
            "serial_scratch_inb_dx",
            R,
            Io,
            0x3ff,
            1,
            0x5a,
            Some("serial"),
        ),
        (
            "cmos_index_outb_imm",
            W,
            Io,
            0x70,
            1,
            0xb,
            Some("rtc-index"),
        ),
        ("cmos_data_inb_imm", R, Io, 0x71, 1, 0x2, Some("rtc")),
        ("fwcfg_select_outw", W, Io, 0x510, 2, 0, Some("fwcfg")),
        (
            "fwcfg_data_rep_insb",
            R,
            Io,
            0x511,
            1,
            u64::from(b'Q'),
            Some("fwcfg"),
        ),
        (
            "fwcfg_data_rep_insb",
            R,
            Io,
            0x511,
            1,
            u64::from(b'E'),
            Some("fwcfg"),
        ),
        (
            "fwcfg_data_rep_insb",
            R,
            Io,
            0x511,
            1,
            u64::from(b'M'),
            Some("fwcfg"),
        ),
        (
            "fwcfg_data_rep_insb",
            R,
            Io,
            0x511,
            1,
            u64::from(b'U'),
            Some("fwcfg"),
        ),
        ("unassigned_inb_imm", R, Io, 0xe0, 1, 0xff, None),
        (
            "pci_host_addr_outl",
            W,
            Io,
            0xcf8,
            4,
            0x8000_0000,
            Some("pci-conf-idx"),
        ),
        (
            "pci_host_id_inl",
            R,
            Io,
            0xcfc,
            4,
            u64::from(host_id),
            Some("pci-conf-data"),
        ),
        (
            "pci_host_device_inw",
            R,
            Io,
            0xcfe,
            2,
            u64::from(host_id >> 16),
            Some("pci-conf-data"),
        ),
        (
            "pci_vga_addr_outl",
            W,
            Io,
            0xcf8,
            4,
            vga,
            Some("pci-conf-idx"),
        ),
        (
            "pci_vga_id_inl",
            R,
            Io,
            0xcfc,
            4,
            0x1111_1234,
            Some("pci-conf-data"),
        ),
        (
            "pci_bar2_addr_outl",
            W,
            Io,
            0xcf8,
            4,
            vga | 0x18,
            Some("pci-conf-idx"),
        ),
        (
            "pci_bar2_inl",
            R,
            Io,
            0xcfc,
            4,
            0xfebf_0000,
            Some("pci-conf-data"),
        ),
        // Issue #20: SeaBIOS mapped BAR2 after the map was dumped: named all the same.
        (
            "vga_edid_readl",
            R,
            Memory,
            0xfebf_0000,
            4,
            0xffff_ff00,
            Some("edid"),
        ),
        (
            "vga_dispi_id_readw",
            R,
            Memory,
            0xfebf_0500,
            2,
            0xb0c5,
            Some("bochs dispi interface"),
        ),
        (
            "pci_bar2_move_outl",
            W,
            Io,
            0xcfc,
            4,
            0xfe00_0000,
            Some("pci-conf-data"),
        ),
        (
            "pci_bar2_readback_inl",
            R,
            Io,
            0xcfc,
            4,
            0xfe00_0000,
            Some("pci-conf-data"),
        ),
        (
            "vga_moved_dispi_id_readw",
            R,
            Memory,
            0xfe00_0500,
            2,
            0xb0c5,
            Some("bochs dispi interface"),
        ),
        // Moved away: nothing is mapped there now.
        ("vga_old_dispi_id_readw", R, Memory, 0xfebf_0500, 2, 0, None),
        (
            "pci_cmd_addr_outl",
            W,
            Io,
            0xcf8,
            4,
            vga | 0x4,
            Some("pci-conf-idx"),
        ),
        ("pci_cmd_inw", R, Io, 0xcfc, 2, 0x103, Some("pci-conf-data")),
        (
            "pci_cmd_mem_off_outw",
            W,
            Io,
            0xcfc,
            2,
            0x101,
            Some("pci-conf-data"),
        ),
        // Memory decoding off: unmapped.
        ("vga_off_dispi_id_readw", R, Memory, 0xfe00_0500, 2, 0, None),
        (
            "pci_cmd_mem_on_outw",
            W,
            Io,
            0xcfc,
            2,
            0x103,
            Some("pci-conf-data"),
        ),
        (
            "vga_on_dispi_id_readw",
            R,
            Memory,
            0xfe00_0500,
            2,
            0xb0c5,
            Some("bochs dispi interface"),
        ),
        (
            "hpet_caps_readl",
            R,
            Memory,
            0xfed0_0000,
            4,
            0x8086_a201,
            Some("hpet"),
        ),
        (
            "hpet_caps_readq_mmx",
            R,
            Memory,
            0xfed0_0000,
            8,
            0x0098_9680_8086_a201,
            Some("hpet"),
        ),
        (
            "ioapic_regsel_writel",
            W,
            Memory,
            0xfec0_0000,
            4,
            0x1,
            Some("ioapic"),
        ),
        (
            "ioapic_version_readl",
            R,
            Memory,
            0xfec0_0010,
            4,
            0x0017_0020,
            Some("ioapic"),
        ),
        (
            "debug_exit_outb_imm",
            W,
            Io,
            0xf4,
            1,
            0,
            Some("isa-debug-exit"),
        ),
    ]
}

/// The firmware's own events against `expected`, field by field.
fn check_firmware(firmware: &Firmware, trace: &[Seen], expected: &[Expected]) {
    let got: Vec<_> = trace
        .iter()
        .filter(|seen| (FIRMWARE_BASE..FIRMWARE_BASE + 0x1_0000).contains(&seen.event.guest_pc))
        .map(|seen| {
            let e = &seen.event;
            (
                e.guest_pc,
                e.access,
                e.space,
                e.phys_addr,
                e.virt_addr,
                e.size,
                e.value,
                seen.device.clone(),
                seen.kind,
            )
        })
        .collect();
    let want: Vec<_> = expected
        .iter()
        .map(|&(label, access, space, address, size, value, device)| {
            (
                firmware.pc(label),
                access,
                space,
                Some(address),
                address,
                size,
                value,
                device.map(str::to_string),
                Some(if device.is_some() {
                    DeviceKind::Device
                } else {
                    DeviceKind::Unassigned
                }),
            )
        })
        .collect();
    assert_eq!(got, want);
}

/// The whole run against QEMU's own log, the firmware's accesses exactly, and the
/// plugin as it ships (`instrument=last`, calls and returns not instrumented) against
/// one instrumenting every load and store.
fn check_machine(machine: &str, host_id: u32, vga_address: u32) {
    let firmware = Firmware::build_with("pc", &[], "nm");
    let dir = tempfile::tempdir().unwrap();
    let run = run_traced(
        "qemu-system-x86_64",
        &args(&firmware, machine),
        &["", ",instrument=all,skip_sp_pc=off"],
        1,
        dir.path(),
    );
    let trace = &run.traces[0];
    assert_matches_qemu_trace(trace, &run.qemu);
    assert_eq!(
        trace, &run.traces[1],
        "instrument=last or skip_sp_pc lost an access"
    );
    check_firmware(&firmware, trace, &expected(host_id, vga_address));
    check_seabios(trace);
}

/// What SeaBIOS does before: port I/O to the devices a PC BIOS drives, named from the
/// map's I/O space, and PCI configuration through 0xcf8/0xcfc.
fn check_seabios(trace: &[Seen]) {
    let seabios: Vec<&Seen> = trace
        .iter()
        .filter(|seen| !(FIRMWARE_BASE..FIRMWARE_BASE + 0x1_0000).contains(&seen.event.guest_pc))
        .collect();
    let ports = |name: &str| {
        seabios
            .iter()
            .filter(|seen| seen.event.space == Space::Io && seen.device.as_deref() == Some(name))
            .count()
    };
    for device in [
        "rtc-index",
        "rtc",
        "pci-conf-idx",
        "pci-conf-data",
        "fwcfg",
        "pic",
        "port92",
    ] {
        assert!(ports(device) > 0, "SeaBIOS's port I/O to {device}");
    }
    // The one 4-byte access of port I/O QEMU models big-endian: the fw_cfg DMA address,
    // which SeaBIOS writes with outl(cpu_to_be32(address)).
    let dma: Vec<&MmioEvent> = seabios
        .iter()
        .filter(|seen| seen.device.as_deref() == Some("fwcfg.dma") && seen.event.size == 4)
        .map(|seen| &seen.event)
        .collect();
    assert!(!dma.is_empty());
    assert!(dma
        .iter()
        .all(|e| e.phys_addr == Some(0x518) || e.phys_addr == Some(0x514)));
}

#[test]
fn pc_port_io_moved_bars_and_seabios_match_qemus_own_trace() {
    check_machine("pc", 0x1237_8086, 0x8000_1000);
}

#[test]
fn q35_port_io_moved_bars_and_seabios_match_qemus_own_trace() {
    check_machine("q35", 0x29c0_8086, 0x8000_0800);
}

/// Issue #20: Debian's amd64 kernel booting on `-M pc` to an initramfs that powers
/// the machine off (`firmware/linux-pc`): every access of SeaBIOS and the kernel,
/// port I/O and MMIO, against QEMU's own trace (SeaBIOS's run above is the tripwire
/// for `instrument=last` on x86).
#[test]
fn debian_kernel_boot_matches_qemus_own_trace() {
    let guest = integration_tests::workspace_root().join("target/linux-pc");
    integration_tests::run_ok(
        std::process::Command::new("bash")
            .arg(integration_tests::workspace_root().join("firmware/linux-pc/build.sh"))
            .arg(&guest),
        "firmware/linux-pc/build.sh",
    );
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = [
        "-M",
        "pc",
        "-m",
        "512",
        "-kernel",
        guest.join("vmlinuz").to_str().expect("utf-8 path"),
        "-initrd",
        guest.join("initrd.gz").to_str().expect("utf-8 path"),
        "-append",
        "console=ttyS0",
        "-display",
        "none",
        "-nic",
        "none",
        "-serial",
        "null",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let run = run_traced("qemu-system-x86_64", &args, &[""], 0, dir.path());
    let trace = &run.traces[0];
    assert_matches_qemu_trace(trace, &run.qemu);
    // The kernel's own accesses (its text is mapped at 0xffffffff8...): port I/O and
    // MMIO both, the power-off through ACPI's PM registers among them.
    let kernel: Vec<&Seen> = trace
        .iter()
        .filter(|s| s.event.guest_pc >= 0xffff_ffff_8000_0000)
        .collect();
    assert!(kernel.iter().any(|s| s.event.space == Space::Io));
    assert!(kernel.iter().any(|s| s.device.as_deref() == Some("ioapic")));
    assert!(kernel
        .iter()
        .any(|s| s.device.as_deref() == Some("acpi-cnt") && s.event.access == Access::Write));
}
