//! The CPU's address space as a map from address to device, shared between whoever
//! keeps it current (PANDA's `MemoryListener` on the main thread, or an `info mtree -f`
//! dump loaded at start) and the vCPU threads that look accesses up in it.

use std::sync::{Arc, RwLock};

use mmio_core::{DeviceId, DeviceKind, DeviceTable, MemoryMap, Resolution};

use crate::mtree::{cpu_sections, MtreeError};
use crate::region::Section;

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

/// The map and the device table its regions are interned in.
#[derive(Debug)]
pub struct AddressSpace {
    map: RwLock<MemoryMap>,
    devices: Arc<DeviceTable>,
}

impl AddressSpace {
    /// An address space nothing is known of yet.
    pub fn new(devices: Arc<DeviceTable>) -> AddressSpace {
        AddressSpace {
            map: RwLock::new(MemoryMap::new()),
            devices,
        }
    }

    /// The CPU's address space as an `info mtree -f` dump shows it.
    pub fn from_mtree(text: &str, devices: Arc<DeviceTable>) -> Result<AddressSpace, MtreeError> {
        let space = AddressSpace::new(devices);
        for section in cpu_sections(text)? {
            space.add(&section);
        }
        Ok(space)
    }

    /// Replaces the whole map with the CPU's address space of a newer `info mtree -f`
    /// dump (the guest changed its map); devices already interned keep their ids.
    pub fn replace_from_mtree(&self, text: &str) -> Result<(), MtreeError> {
        let fresh = AddressSpace::from_mtree(text, self.devices.clone())?;
        let map = fresh.map.into_inner().unwrap_or_else(|p| p.into_inner());
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
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
