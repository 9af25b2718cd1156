//! `info mtree -f` dumps of QEMU 10.0.2 (`tests/fixtures`, taken with
//! `-S -qmp stdio` and `human-monitor-command`) resolve to the right devices.

use std::sync::Arc;

use mmio_core::{DeviceKind, DeviceTable, MemoryMap};
use mmio_frontend::address_space::AddressSpace;

fn load(text: &str) -> (MemoryMap, Arc<DeviceTable>) {
    let devices = Arc::new(DeviceTable::new());
    let space = AddressSpace::from_mtree(text, devices.clone()).unwrap();
    (space.map(), devices)
}

fn resolve(map: &MemoryMap, devices: &DeviceTable, addr: u64) -> (String, u64, DeviceKind) {
    let found = map.lookup(addr).expect("address is mapped");
    let device = devices.get(found.device).expect("device is interned");
    (device.name.to_string(), found.base, device.kind)
}

#[test]
fn lm3s6965evb_uses_the_cpu_view_with_nvic_and_systick() {
    let (map, devices) = load(include_str!("fixtures/lm3s6965evb.mtree"));
    assert_eq!(
        resolve(&map, &devices, 0xe000_e010),
        ("v7m_systick".into(), 0xe000_e010, DeviceKind::Device)
    );
    assert_eq!(
        resolve(&map, &devices, 0xe000_e018),
        ("v7m_systick".into(), 0xe000_e010, DeviceKind::Device)
    );
    assert_eq!(
        resolve(&map, &devices, 0x4000_c000),
        ("pl011".into(), 0x4000_c000, DeviceKind::Device)
    );
    assert_eq!(
        resolve(&map, &devices, 0x4000_cfe0),
        ("pl011".into(), 0x4000_c000, DeviceKind::Device)
    );
    assert_eq!(
        resolve(&map, &devices, 0x400f_d000),
        (
            "flash-control".into(),
            0x400f_d000,
            DeviceKind::Unimplemented
        )
    );
    assert_eq!(
        resolve(&map, &devices, 0x400f_c004),
        ("hibernation".into(), 0x400f_c000, DeviceKind::Unimplemented)
    );
    // The second half of nvic_sysregs (after SysTick) has the same region base.
    assert_eq!(
        resolve(&map, &devices, 0xe000_ed00),
        ("nvic_sysregs".into(), 0xe000_e000, DeviceKind::Device)
    );
    assert_eq!(
        resolve(&map, &devices, 0x0000_0100),
        ("stellaris.flash".into(), 0, DeviceKind::Rom)
    );
    assert_eq!(
        resolve(&map, &devices, 0x2000_0000),
        ("stellaris.sram".into(), 0x2000_0000, DeviceKind::Ram)
    );
    assert_eq!(
        map.lookup(0x4000_1000),
        None,
        "hole between watchdog and GPIO"
    );
    let nvic = devices.find("nvic_sysregs", 0xe000_e000).unwrap();
    assert_eq!(devices.get(nvic).unwrap().size, 0x1000);
    assert_eq!(map.len(), 36);
}

#[test]
fn virt_names_each_virtio_slot_and_the_uart() {
    let (map, devices) = load(include_str!("fixtures/virt.mtree"));
    assert_eq!(
        resolve(&map, &devices, 0x0900_0018),
        ("pl011".into(), 0x0900_0000, DeviceKind::Device)
    );
    assert_eq!(
        resolve(&map, &devices, 0x0a00_0204),
        ("virtio-mmio".into(), 0x0a00_0200, DeviceKind::Device)
    );
    assert_eq!(
        resolve(&map, &devices, 0x0900_0008),
        ("pl011".into(), 0x0900_0000, DeviceKind::Device)
    );
    assert_eq!(
        resolve(&map, &devices, 0x4000_0000),
        ("mach-virt.ram".into(), 0x4000_0000, DeviceKind::Ram)
    );
    // The CFI flash is a ROM device: what reaches it through the I/O path is handled
    // by its model (flash commands), so it is recorded as a device.
    assert_eq!(
        resolve(&map, &devices, 0x0400_0000),
        ("virt.flash1".into(), 0x0400_0000, DeviceKind::Device)
    );
    // A window whose sections sit at offsets of one region.
    assert_eq!(
        resolve(&map, &devices, 0x80_0000_0000),
        ("gpex_mmio_window".into(), 0, DeviceKind::Device)
    );
    let virtio_slots = devices
        .snapshot()
        .iter()
        .filter(|d| &*d.name == "virtio-mmio")
        .count();
    assert_eq!(virtio_slots, 32);
}
