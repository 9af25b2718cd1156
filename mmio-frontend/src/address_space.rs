//! The CPU's address space as a map from address to device, shared between whoever
//! keeps it current (PANDA's `MemoryListener` on the main thread, or an `info mtree -f`
//! dump loaded at start) and the vCPU threads that look accesses up in it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use mmio_core::{DeviceId, DeviceKind, DeviceTable, MemoryMap, Resolution};

use crate::byte_order::ByteOrder;
use crate::mtree::{cpu_sections, MtreeError};
use crate::region::{changes_memory_map, Section};

/// What the map says of an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A named region, and its kind.
    Region(Resolution, DeviceKind),
    /// A region QEMU gave no name; its base.
    Unnamed(u64),
    /// Nothing is mapped there: QEMU dispatches the access to its "unassigned" I/O.
    Hole,
    /// Nothing is known of the address space (no listener report, no `mtree=` dump).
    NoMap,
}

/// Where the regions whose writes can change the map lie
/// ([`crate::region::changes_memory_map`]): a few ranges, read without a lock on every
/// store a vCPU makes (a torn read while the map is replaced costs one QEMU lookup
/// more or less).
#[derive(Debug, Default)]
struct MapChangingRanges {
    /// `(first, last)`; empty slots are `(1, 0)`.
    ranges: [(AtomicU64, AtomicU64); 8],
}

impl MapChangingRanges {
    fn new() -> MapChangingRanges {
        let ranges = MapChangingRanges::default();
        ranges.clear();
        ranges
    }

    fn clear(&self) {
        for (first, last) in &self.ranges {
            first.store(1, Ordering::Relaxed);
            last.store(0, Ordering::Relaxed);
        }
    }

    fn insert(&self, first_address: u64, last_address: u64) {
        if let Some((first, last)) = self
            .ranges
            .iter()
            .find(|(first, last)| first.load(Ordering::Relaxed) > last.load(Ordering::Relaxed))
        {
            last.store(last_address, Ordering::Relaxed);
            first.store(first_address, Ordering::Relaxed);
        }
    }

    #[inline]
    fn contains(&self, addr: u64) -> bool {
        self.ranges.iter().any(|(first, last)| {
            (first.load(Ordering::Relaxed)..=last.load(Ordering::Relaxed)).contains(&addr)
        })
    }
}

/// The map and the device table its regions are interned in.
#[derive(Debug)]
pub struct AddressSpace {
    map: RwLock<MemoryMap>,
    map_changing: MapChangingRanges,
    devices: Arc<DeviceTable>,
    /// The byte order of devices whose sections said it (PANDA's listener).
    byte_orders: RwLock<HashMap<DeviceId, ByteOrder>>,
}

impl AddressSpace {
    /// An address space nothing is known of yet.
    pub fn new(devices: Arc<DeviceTable>) -> AddressSpace {
        AddressSpace {
            map: RwLock::new(MemoryMap::new()),
            map_changing: MapChangingRanges::new(),
            devices,
            byte_orders: RwLock::new(HashMap::new()),
        }
    }

    /// The CPU's address space as an `info mtree -f` dump shows it.
    pub fn from_mtree(text: &str, devices: Arc<DeviceTable>) -> Result<AddressSpace, MtreeError> {
        Ok(AddressSpace::from_sections(&cpu_sections(text)?, devices))
    }

    /// An address space of `sections` (e.g. [`crate::mtree::io_sections`]).
    pub fn from_sections(sections: &[Section], devices: Arc<DeviceTable>) -> AddressSpace {
        let space = AddressSpace::new(devices);
        for section in sections {
            space.add(section);
        }
        space
    }

    /// Replaces the whole map with `sections` (of a newer dump: the guest changed its
    /// map); devices already interned keep their ids.
    pub fn replace(&self, sections: &[Section]) {
        let fresh = AddressSpace::from_sections(sections, self.devices.clone());
        let map = fresh.map.into_inner().unwrap_or_else(|p| p.into_inner());
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = map;
        self.map_changing.clear();
        for section in sections {
            if section.name.as_deref().is_some_and(changes_memory_map) {
                self.map_changing.insert(section.first, section.last);
            }
        }
    }

    /// A section appeared (`region_add`; registering a listener replays them all). It
    /// covers whatever was mapped there before.
    pub fn add(&self, section: &Section) {
        let device = match &section.name {
            // A table this full is no real board: map the rest unnamed.
            Some(name) => self
                .devices
                .intern(
                    name,
                    section.base,
                    section.region_size,
                    section.flags.kind(),
                )
                .unwrap_or(DeviceId::UNKNOWN),
            // Mapped, but with no name to record: not a hole either.
            None => DeviceId::UNKNOWN,
        };
        if section.name.as_deref().is_some_and(changes_memory_map) {
            self.map_changing.insert(section.first, section.last);
        }
        if let (Some(order), false) = (section.byte_order, device == DeviceId::UNKNOWN) {
            self.byte_orders
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(device, order);
        }
        self.map.write().unwrap_or_else(|p| p.into_inner()).insert(
            section.first,
            section.last,
            device,
            section.base,
        );
    }

    /// A section went away (`region_del`: the guest remapped a device).
    pub fn remove(&self, section: &Section) {
        self.map
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(section.first, section.last);
    }

    /// What is at `addr`. Takes a read lock and allocates nothing.
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

    /// Whether `addr` lies in a region whose writes can change the map (a PCI
    /// configuration space): QEMU's lookup of such a write may find a section of the
    /// map the write itself made (see `mmio-qemu`'s `map_change`).
    #[inline]
    pub fn changes_map_at(&self, addr: u64) -> bool {
        self.map_changing.contains(addr)
    }

    /// The byte order a section of `device` declared, if one did.
    pub fn declared_byte_order(&self, device: DeviceId) -> Option<ByteOrder> {
        self.byte_orders
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&device)
            .copied()
    }

    /// Whether one section fills the whole 4 KiB page of `addr`: QEMU then names the
    /// region an access there reaches, and says `anon…` only for a page several
    /// regions share (a subpage) or for a hole.
    pub fn fills_page(&self, addr: u64) -> bool {
        let page = addr & !0xfff;
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .section_at(addr)
            .is_some_and(|(first, last, _)| first <= page && last >= page | 0xfff)
    }

    /// Whether nothing is known of the address space yet.
    pub fn is_empty(&self) -> bool {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// A copy of the map (for tests and tools).
    pub fn map(&self) -> MemoryMap {
        self.map.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The table the regions are interned in.
    pub fn devices(&self) -> &Arc<DeviceTable> {
        &self.devices
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::RegionFlags;

    fn section(name: &str, first: u64, size: u64) -> Section {
        Section::from_listener(Some(name.into()), first, size, 0, RegionFlags::default())
            .expect("not empty")
    }

    #[test]
    fn listener_updates_keep_the_map_current() {
        let space = AddressSpace::new(Arc::new(DeviceTable::new()));
        assert_eq!(space.lookup(0xe000_e018), Lookup::NoMap);
        // The replay on registration: NVIC registers split around SysTick.
        space.add(&section("nvic_sysregs", 0xe000_e000, 0x10));
        space.add(&section("v7m_systick", 0xe000_e010, 0xe0));
        let upper_half = Section::from_listener(
            Some("nvic_sysregs".into()),
            0xe000_e0f0,
            0xf10,
            0xf0,
            RegionFlags::default(),
        )
        .unwrap();
        space.add(&upper_half);
        let name = |addr| match space.lookup(addr) {
            Lookup::Region(r, _) => Some((
                space.devices().get(r.device).unwrap().name.to_string(),
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
        space.add(&section("pl011", 0x4000_c000, 0x1000));
        space.remove(&section("pl011", 0x4000_c000, 0x1000));
        space.add(&section("pl011", 0x5000_0000, 0x1000));
        assert_eq!(space.lookup(0x4000_c000), Lookup::Hole);
        assert_eq!(name(0x5000_0004), Some(("pl011".into(), 0x5000_0000)));
        // Unnamed sections are mapped but nameless; empty sections are none.
        space.add(&Section {
            name: None,
            ..section("", 0x5000_0000, 0x100)
        });
        assert_eq!(space.lookup(0x5000_0004), Lookup::Unnamed(0x5000_0000));
        assert_eq!(name(0x5000_0104), Some(("pl011".into(), 0x5000_0000)));
        assert_eq!(
            Section::from_listener(
                Some("empty".into()),
                0x6000_0000,
                0,
                0,
                RegionFlags::default()
            ),
            None
        );
    }
}
