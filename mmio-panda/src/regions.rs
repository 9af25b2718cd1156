//! The CPU's address space as PANDA's `MemoryListener` reports it, kept as an
//! mmio-core `MemoryMap` that vCPU threads read at access time.

use std::sync::{Arc, RwLock};

use mmio_core::{DeviceId, DeviceKind, DeviceTable, MemoryMap, Resolution};

/// `create_unimplemented_device` maps its stub at this priority.
const UNIMPLEMENTED_DEVICE_PRIORITY: i32 = -1000;

/// What a `MemoryRegionSection` says, read from QEMU's structs by the FFI glue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    /// `MemoryRegion.name`; `None` for an unnamed region.
    pub name: Option<String>,
    /// First address of the section in the address space.
    pub first: u64,
    /// Bytes in the section.
    pub size: u64,
    /// Offset of the section inside its region (so the region's base is `first - it`).
    pub offset_within_region: u64,
    pub ram: bool,
    pub rom_device: bool,
    pub readonly: bool,
    pub priority: i32,
}

impl RegionInfo {
    pub fn kind(&self) -> DeviceKind {
        if self.ram {
            DeviceKind::Ram
        } else if self.rom_device || self.readonly {
            DeviceKind::Rom
        } else if self.priority == UNIMPLEMENTED_DEVICE_PRIORITY {
            DeviceKind::Unimplemented
        } else {
            DeviceKind::Device
        }
    }

    fn last(&self) -> Option<u64> {
        self.size
            .checked_sub(1)
            .and_then(|len| self.first.checked_add(len))
    }
}

/// What the map says of an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A named region.
    Region(Resolution, DeviceKind),
    /// A region QEMU gave no name; its base.
    Unnamed(u64),
    /// Nothing is mapped there: QEMU's "unassigned" I/O.
    Hole,
    /// The listener has reported nothing yet.
    NoMap,
}

/// The map, shared between the listener (main thread) and the vCPU threads.
#[derive(Debug)]
pub struct SharedMap {
    map: RwLock<MemoryMap>,
    devices: Arc<DeviceTable>,
}

impl SharedMap {
    pub fn new(devices: Arc<DeviceTable>) -> SharedMap {
        SharedMap {
            map: RwLock::new(MemoryMap::new()),
            devices,
        }
    }

    /// `region_add`: a section appeared (registering the listener replays them all).
    pub fn add(&self, region: &RegionInfo) {
        let Some(last) = region.last() else { return };
        let base = region.first.wrapping_sub(region.offset_within_region);
        let kind = region.kind();
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        match &region.name {
            Some(name) => {
                let device = self.devices.intern(name, base, region.size, kind);
                map.insert(region.first, last, device, base);
            }
            // Mapped, but with no name to record: not a hole either.
            None => map.insert(region.first, last, DeviceId::UNKNOWN, base),
        }
    }

    /// `region_del`: a section went away (the guest remapped a device).
    pub fn remove(&self, region: &RegionInfo) {
        if let Some(last) = region.last() {
            self.map
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(region.first, last);
        }
    }

    pub fn lookup(&self, addr: u64) -> Lookup {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        match map.lookup(addr) {
            Some(found) => match self.devices.kind(found.device) {
                Some(kind) => Lookup::Region(found, kind),
                None => Lookup::Unnamed(found.base),
            },
            None if map.is_empty() => Lookup::NoMap,
            None => Lookup::Hole,
        }
    }

    pub fn devices(&self) -> &Arc<DeviceTable> {
        &self.devices
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(name: &str, first: u64, size: u64) -> RegionInfo {
        RegionInfo {
            name: Some(name.into()),
            first,
            size,
            offset_within_region: 0,
            ram: false,
            rom_device: false,
            readonly: false,
            priority: 0,
        }
    }

    #[test]
    fn kinds_come_from_the_region_flags() {
        assert_eq!(region("pl011", 0, 1).kind(), DeviceKind::Device);
        assert_eq!(
            RegionInfo {
                ram: true,
                ..region("sram", 0, 1)
            }
            .kind(),
            DeviceKind::Ram
        );
        assert_eq!(
            RegionInfo {
                rom_device: true,
                ..region("flash", 0, 1)
            }
            .kind(),
            DeviceKind::Rom
        );
        assert_eq!(
            RegionInfo {
                readonly: true,
                ..region("rom", 0, 1)
            }
            .kind(),
            DeviceKind::Rom
        );
        assert_eq!(
            RegionInfo {
                priority: -1000,
                ..region("flash-control", 0, 1)
            }
            .kind(),
            DeviceKind::Unimplemented
        );
    }

    #[test]
    fn listener_updates_keep_the_map_current() {
        let map = SharedMap::new(Arc::new(DeviceTable::new()));
        assert_eq!(map.lookup(0xe000_e018), Lookup::NoMap);
        // The replay on registration: NVIC registers split around SysTick.
        map.add(&region("nvic_sysregs", 0xe000_e000, 0x10));
        map.add(&region("v7m_systick", 0xe000_e010, 0xe0));
        map.add(&RegionInfo {
            offset_within_region: 0xf0,
            ..region("nvic_sysregs", 0xe000_e0f0, 0xf10)
        });
        let name = |addr| match map.lookup(addr) {
            Lookup::Region(r, _) => Some((
                map.devices().get(r.device).unwrap().name.to_string(),
                r.base,
            )),
            _ => None,
        };
        assert_eq!(name(0xe000_e018), Some(("v7m_systick".into(), 0xe000_e010)));
        assert_eq!(
            name(0xe000_ed00),
            Some(("nvic_sysregs".into(), 0xe000_e000))
        );
        // The guest moves a device: region_del then region_add.
        map.add(&region("pl011", 0x4000_c000, 0x1000));
        map.remove(&region("pl011", 0x4000_c000, 0x1000));
        map.add(&region("pl011", 0x5000_0000, 0x1000));
        assert_eq!(map.lookup(0x4000_c000), Lookup::Hole);
        assert_eq!(name(0x5000_0004), Some(("pl011".into(), 0x5000_0000)));
        // Unnamed sections are mapped but nameless; empty sections change nothing.
        map.add(&RegionInfo {
            name: None,
            ..region("", 0x5000_0000, 0x100)
        });
        assert_eq!(map.lookup(0x5000_0004), Lookup::Unnamed(0x5000_0000));
        assert_eq!(name(0x5000_0104), Some(("pl011".into(), 0x5000_0000)));
        map.add(&region("empty", 0x6000_0000, 0));
        assert_eq!(map.lookup(0x6000_0000), Lookup::Hole);
    }
}
