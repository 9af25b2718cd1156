//! Sample events shared by the export tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use mmio_core::{Access, DeviceId, DeviceKind, DeviceTable, MmioEvent};
use mmio_export::{create_writer, open_trace, TraceInfo};

pub fn info() -> TraceInfo {
    TraceInfo {
        emulator: "qemu 10.0.2".into(),
        target_arch: "arm".into(),
        machine: "lm3s6965evb".into(),
        start_time: "2026-11-26T00:00:00Z".into(),
        word_size: 4,
        run: "run-1".into(),
    }
}

/// A UART write, a SysTick read, a stub read, an untranslatable access, a hole, an
/// 8-byte access with all bits set to a device whose name needs escaping, an x86 port
/// write and an instruction fetched from an unassigned address.
pub fn sample() -> (Arc<DeviceTable>, Vec<MmioEvent>) {
    let devices = Arc::new(DeviceTable::new());
    let uart = devices
        .intern("pl011", 0x4000_c000, 0x1000, DeviceKind::Device)
        .unwrap();
    let systick = devices
        .intern("v7m_systick", 0xe000_e010, 0xe0, DeviceKind::Device)
        .unwrap();
    let stub = devices
        .intern(
            "flash-control",
            0x400f_d000,
            0x1000,
            DeviceKind::Unimplemented,
        )
        .unwrap();
    let odd = devices
        .intern(
            "odd \"name\" \\ here",
            0x5000_0000,
            0x100,
            DeviceKind::Device,
        )
        .unwrap();
    let com1 = devices
        .intern("serial", 0x3f8, 8, DeviceKind::Device)
        .unwrap();
    let base = MmioEvent {
        seq: 0,
        cpu: 0,
        access: Access::Write,
        space: mmio_core::Space::Memory,
        guest_pc: 0x1f4,
        phys_addr: Some(0x4000_c000),
        virt_addr: 0x4000_c000,
        offset: 0,
        size: 4,
        value: 0x41,
        device: uart,
        instr_count: Some(100),
    };
    let events = vec![
        base,
        MmioEvent {
            seq: 1,
            access: Access::Read,
            guest_pc: 0x200,
            phys_addr: Some(0xe000_e018),
            virt_addr: 0xe000_e018,
            offset: 8,
            value: 0x00ff_fff0,
            device: systick,
            instr_count: Some(130),
            ..base
        },
        MmioEvent {
            seq: 2,
            access: Access::Read,
            guest_pc: 0x208,
            phys_addr: Some(0x400f_d004),
            virt_addr: 0x400f_d004,
            offset: 4,
            size: 2,
            value: 0,
            device: stub,
            instr_count: None,
            ..base
        },
        MmioEvent {
            seq: 3,
            cpu: 1,
            guest_pc: 0x20c,
            phys_addr: None,
            virt_addr: 0xe000_ed94,
            offset: 0xe000_ed94,
            size: 1,
            value: 0x7,
            device: DeviceId::UNKNOWN,
            instr_count: None,
            ..base
        },
        MmioEvent {
            seq: 4,
            access: Access::Read,
            guest_pc: 0x210,
            phys_addr: Some(0x6000_0000),
            virt_addr: 0x6000_0000,
            offset: 0x6000_0000,
            value: 0,
            device: DeviceId::UNASSIGNED,
            ..base
        },
        MmioEvent {
            seq: 5,
            guest_pc: 0x214,
            phys_addr: Some(0x5000_0008),
            virt_addr: 0x5000_0008,
            offset: 8,
            size: 8,
            value: u64::MAX,
            device: odd,
            instr_count: Some(u64::MAX - 1),
            ..base
        },
        MmioEvent {
            seq: 6,
            space: mmio_core::Space::Io,
            guest_pc: 0x218,
            phys_addr: Some(0x3f8),
            virt_addr: 0x3f8,
            offset: 0,
            size: 1,
            value: 0x48,
            device: com1,
            ..base
        },
        MmioEvent {
            seq: 7,
            access: Access::Fetch,
            guest_pc: 0x1c00_6490,
            phys_addr: Some(0x1c00_6490),
            virt_addr: 0x1c00_6490,
            offset: 0x1c00_6490,
            value: 0,
            device: DeviceId::UNASSIGNED,
            ..base
        },
    ];
    (devices, events)
}

pub fn write(path: &Path, devices: &DeviceTable, events: &[MmioEvent]) {
    let mut writer = create_writer(path, info()).expect("writer opens");
    writer.write(events, devices).expect("write");
    writer.finish(devices).expect("finish");
}

/// Reads a trace back as events plus each event's device name and kind.
pub fn read(path: &Path) -> Vec<(MmioEvent, Option<String>, Option<DeviceKind>)> {
    let mut reader = open_trace(path).expect("reader opens");
    let mut events = Vec::new();
    for event in reader.by_ref() {
        events.push(event.expect("event decodes"));
    }
    let devices = reader.devices();
    events
        .into_iter()
        .map(|e| {
            let device = devices.get(e.device);
            (
                e,
                device.as_ref().map(|d| d.name.to_string()),
                devices.kind(e.device),
            )
        })
        .collect()
}

/// The name and kind each sample event was written with.
pub fn expected_names(
    devices: &DeviceTable,
    events: &[MmioEvent],
) -> Vec<(Option<String>, Option<DeviceKind>)> {
    events
        .iter()
        .map(|e| {
            (
                devices.get(e.device).map(|d| d.name.to_string()),
                devices.kind(e.device),
            )
        })
        .collect()
}
