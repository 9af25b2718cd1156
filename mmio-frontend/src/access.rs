//! The decision both front ends make for each guest access: is it a device access, and
//! if so which device, at what offset. Tested here without an emulator.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

use mmio_core::{Access, DeviceId, DeviceKind, MmioEvent, Space};

use crate::address_space::{AddressSpace, Lookup};
use crate::byte_order::{region_byte_order, swap, ByteOrder};
use crate::map_refresh::MapRefresh;
use crate::region::{changes_memory_map, is_anonymous};

/// One guest memory access as a front end saw it.
#[derive(Clone, Copy, Debug)]
pub struct GuestAccess<'a> {
    /// The vCPU's index.
    pub cpu: u32,
    /// Read or write.
    pub access: Access,
    /// The accessing instruction's address.
    pub pc: u64,
    /// The address the guest used.
    pub vaddr: u64,
    /// Bytes accessed (1 to 8).
    pub size: u8,
    /// The value read or written as the CPU's register holds it (masked to `size`
    /// here, and put in the device's byte order where that differs).
    pub value: u64,
    /// The byte order of the CPU's access (a big-endian target's, or a bi-endian CPU's
    /// current one).
    pub byte_order: ByteOrder,
    /// Instructions the vCPU retired before this one, when counted.
    pub instr_count: Option<u64>,
    /// Where the emulator says the access went.
    pub landing: Landing<'a>,
}

/// QEMU's name for the I/O region an access reached (`anon…` when the region has no
/// name of its own, e.g. devices sharing a page).
#[derive(Clone, Copy)]
pub enum RegionName<'a> {
    /// Already known; `None` when QEMU gave none.
    Known(Option<&'a str>),
    /// Asked of the emulator only when the decision needs it: QEMU formats and interns
    /// a name on every `qemu_plugin_hwaddr_device_name` call, and the busiest devices
    /// (SysTick) are unnamed, so a device the map knows is taken from the map.
    Ask(&'a dyn Fn() -> Option<&'a str>),
}

impl std::fmt::Debug for RegionName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegionName::Known(name) => f.debug_tuple("Known").field(name).finish(),
            RegionName::Ask(_) => f.write_str("Ask(..)"),
        }
    }
}

/// What the emulator said of where an access went.
#[derive(Clone, Copy, Debug)]
pub enum Landing<'a> {
    /// Stock QEMU's plugin API: an I/O region at `phys_addr`, named `name`.
    Io {
        /// Absolute guest-physical address.
        phys_addr: u64,
        /// `qemu_plugin_hwaddr_device_name`, known or to ask for.
        name: RegionName<'a>,
    },
    /// Stock QEMU's plugin API: RAM or ROM.
    Memory,
    /// Stock QEMU could not look the access up (it flushed the TLB, e.g. a write to
    /// the MPU's control register): the map decides, from the virtual address while
    /// every I/O access so far had the same physical one.
    NotLookedUp,
    /// Stock QEMU: an instruction fetched from an I/O region (the code's page is
    /// neither RAM nor ROM), at the physical address the front end knows, if it does
    /// (else the map decides from the virtual one while every I/O access so far had
    /// the same physical one).
    Fetch {
        /// Absolute guest-physical address, where known.
        phys_addr: Option<u64>,
    },
    /// x86 port I/O (`in`, `out`, `ins`, `outs`): the I/O address space's map decides.
    Port {
        /// The port.
        port: u64,
    },
    /// PANDA's MMIO callbacks, which fire for device accesses and for writes to ROM or
    /// to RAM holding translated code alike: the map decides.
    Unclassified {
        /// The absolute physical address, translated from the virtual one; `None` if
        /// that failed.
        phys_addr: Option<u64>,
        /// PANDA's `physaddr`: despite its name an offset inside the memory region,
        /// kept only as the offset of last resort.
        region_offset: u64,
    },
}

/// What the decision knows of a device.
#[derive(Clone, Copy)]
struct DeviceFacts {
    byte_order: ByteOrder,
    changes_map: bool,
}

/// [`DeviceFacts`] in a byte: worked out, big-endian, changes the map.
const FACTS_KNOWN: u8 = 1;
const FACTS_BIG_ENDIAN: u8 = 2;
const FACTS_CHANGES_MAP: u8 = 4;

impl DeviceFacts {
    fn bits(self) -> u8 {
        FACTS_KNOWN
            | if self.byte_order == ByteOrder::Big {
                FACTS_BIG_ENDIAN
            } else {
                0
            }
            | if self.changes_map {
                FACTS_CHANGES_MAP
            } else {
                0
            }
    }

    fn from_bits(bits: u8) -> DeviceFacts {
        DeviceFacts {
            byte_order: if bits & FACTS_BIG_ENDIAN != 0 {
                ByteOrder::Big
            } else {
                ByteOrder::Little
            },
            changes_map: bits & FACTS_CHANGES_MAP != 0,
        }
    }
}

/// The decision, with the little state it keeps between accesses.
#[derive(Debug)]
pub struct Decider {
    space: AddressSpace,
    /// QEMU's I/O port space (x86), in the same device table.
    io: AddressSpace,
    /// QEMU's target (`arm`, `mips`...) and its byte order, what regions that declare
    /// none take.
    target: String,
    native: ByteOrder,
    /// Per device id: its [`DeviceFacts`] once worked out (0: not yet).
    facts: RwLock<Vec<u8>>,
    /// The name QEMU's plugin API gives its unassigned region (`anon` and a pointer,
    /// the same for every hole of a run; a page shared by devices has a name of its
    /// own), once an access to a hole of a freshly fetched map showed it.
    unassigned_name: RwLock<Option<Box<str>>>,
    /// Every I/O access so far had `phys == virt` (M-profile, or no MMU yet), so an
    /// access QEMU could not look up can take its virtual address as physical.
    identity_mapping: AtomicBool,
    /// Device accesses no name could be found for.
    unresolved: AtomicU64,
    /// How a stale map is made current, when the front end can fetch one.
    refresh: Option<MapRefresh>,
}

impl Decider {
    /// Decides with the map of `space` (and no I/O port space) for a little-endian
    /// target.
    pub fn new(space: AddressSpace) -> Decider {
        let io = AddressSpace::new(space.devices().clone());
        Decider {
            space,
            io,
            target: String::new(),
            native: ByteOrder::Little,
            facts: RwLock::new(Vec::new()),
            unassigned_name: RwLock::new(None),
            identity_mapping: AtomicBool::new(true),
            unresolved: AtomicU64::new(0),
            refresh: None,
        }
    }

    /// With `io` as QEMU's I/O port space (made in the same device table as the
    /// memory map).
    pub fn with_io(self, io: AddressSpace) -> Decider {
        Decider { io, ..self }
    }

    /// For QEMU's target `target_name` (`arm`, `mips`, `ppc`...): regions that declare
    /// no byte order take its.
    pub fn for_target(self, target_name: &str) -> Decider {
        Decider {
            native: ByteOrder::of_target(target_name),
            target: target_name.to_string(),
            ..self
        }
    }

    /// Decides with the map of `space`, fetching a fresh one through `refresh` where
    /// QEMU's region for an access disagrees with it.
    pub fn with_refresh(space: AddressSpace, refresh: MapRefresh) -> Decider {
        Decider {
            refresh: Some(refresh),
            ..Decider::new(space)
        }
    }

    /// How the map is kept current, if it is.
    pub fn refresh(&self) -> Option<&MapRefresh> {
        self.refresh.as_ref()
    }

    /// The address space accesses are looked up in.
    pub fn space(&self) -> &AddressSpace {
        &self.space
    }

    /// The physical address of a store to `vaddr` that must not be looked up in QEMU:
    /// one into a region whose writes can change the map (PCI configuration space),
    /// while every I/O access so far had its virtual address as physical (firmware,
    /// a BIOS, a kernel before its MMU). QEMU's lookup after such a write can find a
    /// section of the map the write made (see `mmio-qemu`'s `map_change`).
    #[inline]
    pub fn map_changing_store(&self, vaddr: u64) -> Option<u64> {
        self.identity_guess(vaddr)
            .filter(|&addr| self.space.changes_map_at(addr))
    }

    /// The I/O port space port accesses are looked up in.
    pub fn io_space(&self) -> &AddressSpace {
        &self.io
    }

    /// Device accesses recorded without a device because nothing named them.
    pub fn unresolved(&self) -> u64 {
        self.unresolved.load(Ordering::Relaxed)
    }

    /// The event to record for `access`, or `None` when it is no device access (RAM,
    /// ROM). Its `seq` is 0 until the recorder numbers it. Allocates nothing unless a
    /// device name is seen for the first time.
    pub fn decide(&self, access: &GuestAccess<'_>) -> Option<MmioEvent> {
        let mut space = Space::Memory;
        let (phys_addr, device, offset) = match access.landing {
            Landing::Memory => return None,
            Landing::Io { phys_addr, name } => {
                if phys_addr != access.vaddr {
                    self.identity_mapping.store(false, Ordering::Relaxed);
                }
                // QEMU may have named the region from the map a write to PCI
                // configuration space itself made: the map knows better.
                let name = if access.access == Access::Write && self.space.changes_map_at(phys_addr)
                {
                    RegionName::Known(None)
                } else {
                    name
                };
                let (device, base) = self.named(name, phys_addr);
                (Some(phys_addr), device, phys_addr.wrapping_sub(base))
            }
            Landing::NotLookedUp => {
                let phys = self.identity_guess(access.vaddr);
                let looked_up = match phys {
                    Some(addr) => self.space.lookup(addr),
                    None if self.space.is_empty() => Lookup::NoMap,
                    // No physical address to look up in the map that exists.
                    None => return None,
                };
                let addr = phys.unwrap_or(access.vaddr);
                match looked_up {
                    Lookup::Region(found, DeviceKind::Device | DeviceKind::Unimplemented) => {
                        (phys, found.device, addr.wrapping_sub(found.base))
                    }
                    Lookup::Region(..) | Lookup::Unnamed(_) | Lookup::Hole => return None,
                    // Nothing to tell RAM from I/O with: keep it, unnamed.
                    Lookup::NoMap => {
                        self.unresolved.fetch_add(1, Ordering::Relaxed);
                        (phys, DeviceId::UNKNOWN, addr)
                    }
                }
            }
            Landing::Fetch { phys_addr } => {
                // QEMU found no RAM or ROM there: I/O whatever the map says.
                match phys_addr.or_else(|| self.identity_guess(access.vaddr)) {
                    Some(addr) => match self.space.lookup(addr) {
                        Lookup::Region(found, _) => {
                            (Some(addr), found.device, addr.wrapping_sub(found.base))
                        }
                        Lookup::Unnamed(base) => {
                            (Some(addr), DeviceId::UNKNOWN, addr.wrapping_sub(base))
                        }
                        Lookup::Hole => (Some(addr), DeviceId::UNASSIGNED, addr),
                        Lookup::NoMap => (Some(addr), DeviceId::UNKNOWN, addr),
                    },
                    None => {
                        self.unresolved.fetch_add(1, Ordering::Relaxed);
                        (None, DeviceId::UNKNOWN, access.vaddr)
                    }
                }
            }
            Landing::Port { port } => {
                space = Space::Io;
                let (device, base) = self.port(port);
                (Some(port), device, port.wrapping_sub(base))
            }
            Landing::Unclassified {
                phys_addr,
                region_offset,
            } => match phys_addr.map(|addr| (addr, self.space.lookup(addr))) {
                Some((_, Lookup::Region(_, DeviceKind::Ram | DeviceKind::Rom))) => return None,
                Some((addr, Lookup::Region(found, _))) => {
                    (Some(addr), found.device, addr.wrapping_sub(found.base))
                }
                Some((addr, Lookup::Unnamed(base))) => {
                    (Some(addr), DeviceId::UNKNOWN, addr.wrapping_sub(base))
                }
                Some((addr, Lookup::Hole)) => (Some(addr), DeviceId::UNASSIGNED, addr),
                // Untranslated, or no map yet: PANDA's offset is all there is.
                None | Some((_, Lookup::NoMap)) => {
                    self.unresolved.fetch_add(1, Ordering::Relaxed);
                    (phys_addr, DeviceId::UNKNOWN, region_offset)
                }
            },
        };
        let facts = self.facts(device);
        let value = MmioEvent::mask_value(access.value, access.size);
        let value = if access.size > 1 && facts.byte_order != access.byte_order {
            swap(value, access.size)
        } else {
            value
        };
        if let (Some(refresh), Access::Write, true) =
            (&self.refresh, access.access, facts.changes_map)
        {
            // A BAR or a command register may have moved or unmapped a device: pages
            // are checked against QEMU again.
            refresh.invalidate();
        }
        Some(MmioEvent {
            seq: 0,
            cpu: access.cpu,
            access: access.access,
            space,
            guest_pc: access.pc,
            phys_addr,
            virt_addr: access.vaddr,
            offset,
            size: access.size,
            value,
            device,
            instr_count: access.instr_count,
        })
    }

    /// The virtual address as the physical one, while every I/O access so far had
    /// them equal (M-profile, no MMU yet).
    #[inline]
    fn identity_guess(&self, vaddr: u64) -> Option<u64> {
        self.identity_mapping
            .load(Ordering::Relaxed)
            .then_some(vaddr)
    }

    /// The device of x86 port `port` and its region's first port. A port the map has
    /// no device at is fetched a fresh map for once a page (a PCI I/O BAR the
    /// firmware assigned), then counted as unassigned, as QEMU dispatches it to its
    /// I/O space's root region.
    fn port(&self, port: u64) -> (DeviceId, u64) {
        let mut looked_up = self.io.lookup(port);
        if let (Lookup::Hole | Lookup::NoMap, Some(refresh)) = (looked_up, &self.refresh) {
            if !refresh.is_checked(Space::Io, port) {
                if refresh.refresh(&self.space, &self.io, Space::Io, port) {
                    looked_up = self.io.lookup(port);
                }
                refresh.mark_checked(Space::Io, port);
            }
        }
        match looked_up {
            Lookup::Region(found, _) => (found.device, found.base),
            Lookup::Unnamed(base) => (DeviceId::UNKNOWN, base),
            Lookup::Hole => (DeviceId::UNASSIGNED, 0),
            Lookup::NoMap => {
                self.unresolved.fetch_add(1, Ordering::Relaxed);
                (DeviceId::UNKNOWN, 0)
            }
        }
    }

    /// What `device` is known for, worked out once per device: the byte order it
    /// takes values in (what its section declared, PANDA; else the table of QEMU's
    /// region names; the target's for no device), and whether writes to it can change
    /// the memory map.
    fn facts(&self, device: DeviceId) -> DeviceFacts {
        let index = device.0 as usize;
        let known = self
            .facts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(index)
            .copied()
            .unwrap_or(0);
        if known & FACTS_KNOWN != 0 {
            return DeviceFacts::from_bits(known);
        }
        if device == DeviceId::UNKNOWN || device == DeviceId::UNASSIGNED {
            return DeviceFacts {
                byte_order: self.native,
                changes_map: false,
            };
        }
        let declared = self
            .space
            .declared_byte_order(device)
            .or_else(|| self.io.declared_byte_order(device));
        let facts = self.space.devices().with(device, |found| DeviceFacts {
            byte_order: declared.unwrap_or_else(|| match found {
                Some(found) => region_byte_order(&found.name, &self.target, self.native),
                None => self.native,
            }),
            changes_map: found.is_some_and(|found| changes_memory_map(&found.name)),
        });
        let mut all = self.facts.write().unwrap_or_else(|p| p.into_inner());
        if all.len() <= index {
            all.resize(index + 1, 0);
        }
        all[index] = facts.bits();
        facts
    }

    /// "QEMU's own name unless it is anonymous, then the map": the device of an I/O
    /// access stock QEMU named `name`, and its region's base. A name still to be asked
    /// for is asked only where the map has no device (no map, a hole, memory, a region
    /// mapped after the dump); one map lookup either way.
    fn named(&self, name: RegionName<'_>, phys_addr: u64) -> (DeviceId, u64) {
        let mut looked_up = self.space.lookup(phys_addr);
        let unchecked = self
            .refresh
            .as_ref()
            .filter(|refresh| !refresh.is_checked(Space::Memory, phys_addr));
        let name = match name {
            RegionName::Known(name) => name,
            RegionName::Ask(ask) => match looked_up {
                Lookup::Region(found, DeviceKind::Device | DeviceKind::Unimplemented)
                    if unchecked.is_none() =>
                {
                    return (found.device, found.base)
                }
                _ => ask(),
            },
        };
        if let Some(refresh) = unchecked {
            if !self.agrees(name, looked_up, phys_addr)
                && refresh.refresh(&self.space, &self.io, Space::Memory, phys_addr)
            {
                looked_up = self.space.lookup(phys_addr);
            }
            // An anonymous region where even a fresh map has nothing: QEMU's
            // unassigned region.
            if let (Some(name), Lookup::Hole) = (name, looked_up) {
                let mut unassigned = self
                    .unassigned_name
                    .write()
                    .unwrap_or_else(|p| p.into_inner());
                if unassigned.is_none() && is_anonymous(name) && !name.is_empty() {
                    *unassigned = Some(name.into());
                }
            }
            refresh.mark_checked(Space::Memory, phys_addr);
        }
        if name.is_some_and(|name| self.is_unassigned_name(name)) {
            return (DeviceId::UNASSIGNED, 0);
        }
        let name = match name {
            Some(name) if !is_anonymous(name) => name,
            _ => {
                return match looked_up {
                    Lookup::Region(found, _) => (found.device, found.base),
                    Lookup::Unnamed(base) => (DeviceId::UNKNOWN, base),
                    // QEMU dispatches a hole of the map to its "unassigned" region.
                    Lookup::Hole => (DeviceId::UNASSIGNED, 0),
                    Lookup::NoMap => {
                        self.unresolved.fetch_add(1, Ordering::Relaxed);
                        (DeviceId::UNKNOWN, 0)
                    }
                };
            }
        };
        let devices = self.space.devices();
        if let Lookup::Region(found, _) = looked_up {
            if devices.with(found.device, |device| {
                device.is_some_and(|d| &*d.name == name)
            }) {
                return (found.device, found.base);
            }
        }
        // A named region the map does not know (no map given, or it is stale): keep
        // the name; its base is unknown.
        let device = devices
            .intern(name, 0, 0, DeviceKind::Device)
            .unwrap_or(DeviceId::UNKNOWN);
        (device, 0)
    }
}

impl Decider {
    /// Whether the map can be what QEMU dispatched the access at `phys_addr` to: the
    /// region QEMU named, or, for a region QEMU leaves anonymous (a page shared by
    /// devices, an unnamed device, its unassigned region), an unnamed region or a
    /// device sharing its page (one filling the page would have been named: it has
    /// gone). A stub QEMU names anonymous is checked: stubs are what devices are
    /// mapped over.
    ///
    /// QEMU's unassigned region, once its name is known, agrees only with a hole; an
    /// anonymous region at a hole is fetched for once, which tells a device mapped
    /// since (a page the fresh map fills) from the unassigned region.
    fn agrees(&self, name: Option<&str>, looked_up: Lookup, phys_addr: u64) -> bool {
        let Some(name) = name else {
            // QEMU was not asked: nothing to disagree with.
            return true;
        };
        if !is_anonymous(name) {
            return match looked_up {
                Lookup::Region(found, _) => self.space.devices().with(found.device, |device| {
                    device.is_some_and(|d| &*d.name == name)
                }),
                _ => false,
            };
        }
        let unassigned = self.is_unassigned_name(name);
        match looked_up {
            Lookup::Hole => unassigned,
            Lookup::Region(_, DeviceKind::Device) => {
                !unassigned && !self.space.fills_page(phys_addr)
            }
            Lookup::Unnamed(_) => !unassigned,
            // Memory, a stub (what devices are mapped over), or no map at all.
            _ => false,
        }
    }

    /// Whether `name` is the one QEMU gives its unassigned region.
    fn is_unassigned_name(&self, name: &str) -> bool {
        self.unassigned_name
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
            == Some(name)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mmio_core::DeviceTable;

    use super::*;

    const LM3S_MTREE: &str = include_str!("../tests/fixtures/lm3s6965evb.mtree");

    fn lm3s() -> Decider {
        Decider::new(AddressSpace::from_mtree(LM3S_MTREE, Arc::new(DeviceTable::new())).unwrap())
    }

    fn no_map() -> Decider {
        Decider::new(AddressSpace::new(Arc::new(DeviceTable::new())))
    }

    fn access(vaddr: u64, landing: Landing<'_>) -> GuestAccess<'_> {
        GuestAccess {
            cpu: 0,
            access: Access::Read,
            pc: 0x100,
            vaddr,
            size: 4,
            value: 0x90,
            byte_order: crate::byte_order::ByteOrder::Little,
            instr_count: Some(7),
            landing,
        }
    }

    fn io(phys_addr: u64, name: &str) -> Landing<'_> {
        Landing::Io {
            phys_addr,
            name: RegionName::Known(Some(name)),
        }
    }

    /// (virt, phys, offset, device name, kind)
    fn seen(
        decider: &Decider,
        event: MmioEvent,
    ) -> (u64, Option<u64>, u64, Option<String>, Option<DeviceKind>) {
        let devices = decider.space().devices();
        (
            event.virt_addr,
            event.phys_addr,
            event.offset,
            devices.get(event.device).map(|d| d.name.to_string()),
            devices.kind(event.device),
        )
    }

    #[test]
    fn qemu_ram_is_skipped_and_anonymous_regions_are_named_from_the_map() {
        let decider = lm3s();
        assert_eq!(decider.decide(&access(0x2000_0000, Landing::Memory)), None);
        let decide =
            |vaddr, landing| seen(&decider, decider.decide(&access(vaddr, landing)).unwrap());
        assert_eq!(
            decide(0xe000_e018, io(0xe000_e018, "anon5a3c1e80")),
            (
                0xe000_e018,
                Some(0xe000_e018),
                8,
                Some("v7m_systick".into()),
                Some(DeviceKind::Device)
            )
        );
        assert_eq!(
            decide(0x4000_c018, io(0x4000_c018, "pl011")),
            (
                0x4000_c018,
                Some(0x4000_c018),
                0x18,
                Some("pl011".into()),
                Some(DeviceKind::Device)
            )
        );
        // MPU_CTRL: QEMU could not describe the access; the map says it is the NVIC.
        assert_eq!(
            decide(0xe000_ed94, Landing::NotLookedUp),
            (
                0xe000_ed94,
                Some(0xe000_ed94),
                0xd94,
                Some("nvic_sysregs".into()),
                Some(DeviceKind::Device)
            )
        );
        // A TLB-flushing access to RAM is no device access.
        assert_eq!(
            decider.decide(&access(0x2000_0004, Landing::NotLookedUp)),
            None
        );
        // A hole in the map: QEMU's anonymous "unassigned" region.
        assert_eq!(
            decide(0x4000_1000, io(0x4000_1000, "anon7f3a0000")),
            (
                0x4000_1000,
                Some(0x4000_1000),
                0x4000_1000,
                None,
                Some(DeviceKind::Unassigned)
            )
        );
        // A name the map disagrees with is kept, with an unknown base.
        assert_eq!(
            decide(0x4000_c018, io(0x4000_c018, "gptm")),
            (
                0x4000_c018,
                Some(0x4000_c018),
                0x4000_c018,
                Some("gptm".into()),
                Some(DeviceKind::Device)
            )
        );
        assert_eq!(decider.unresolved(), 0);
        // Names are asked for only where the map has no device.
        let asked = std::cell::Cell::new(0);
        let ask = || {
            asked.set(asked.get() + 1);
            Some("anon7f3a2c00")
        };
        let asking = |phys_addr| Landing::Io {
            phys_addr,
            name: RegionName::Ask(&ask),
        };
        for (decider, addr, asks) in [
            (&decider, 0xe000_e018, 0),
            (&decider, 0x400f_d000, 0),
            (&decider, 0x4000_1000, 1),
            (&decider, 0x2000_0000, 1),
            (&no_map(), 0x4000_c000, 1),
        ] {
            asked.set(0);
            decider.decide(&access(addr, asking(addr)));
            assert_eq!(asked.get(), asks, "{addr:#x}");
        }
        // Without the name, the map's device is the one recorded.
        let unnamed = Landing::Io {
            phys_addr: 0x4000_c018,
            name: RegionName::Known(None),
        };
        assert_eq!(
            seen(
                &decider,
                decider.decide(&access(0x4000_c018, unnamed)).unwrap()
            ),
            (
                0x4000_c018,
                Some(0x4000_c018),
                0x18,
                Some("pl011".into()),
                Some(DeviceKind::Device)
            )
        );
    }

    #[test]
    fn qemu_without_a_map_keeps_names_and_counts_anonymous_ones() {
        let decider = no_map();
        let event = decider
            .decide(&access(0x4000_c018, io(0x4000_c018, "pl011")))
            .unwrap();
        assert_eq!(
            seen(&decider, event),
            (
                0x4000_c018,
                Some(0x4000_c018),
                0x4000_c018,
                Some("pl011".into()),
                Some(DeviceKind::Device)
            )
        );
        let event = decider
            .decide(&access(0xe000_e018, io(0xe000_e018, "anon5a3c1e80")))
            .unwrap();
        assert_eq!(
            seen(&decider, event),
            (0xe000_e018, Some(0xe000_e018), 0xe000_e018, None, None)
        );
        assert_eq!(decider.unresolved(), 1);
    }

    #[test]
    fn qemu_translated_access_keeps_both_addresses_and_stops_the_identity_guess() {
        let decider = lm3s();
        let event = decider
            .decide(&access(0xf000_c000, io(0x4000_c000, "pl011")))
            .unwrap();
        assert_eq!(
            seen(&decider, event),
            (
                0xf000_c000,
                Some(0x4000_c000),
                0,
                Some("pl011".into()),
                Some(DeviceKind::Device)
            )
        );
        // Now an access QEMU could not look up has no physical address to go by.
        assert_eq!(
            decider.decide(&access(0xf000_c004, Landing::NotLookedUp)),
            None
        );
    }

    #[test]
    fn values_are_masked_to_the_access_size() {
        let decider = lm3s();
        let byte = GuestAccess {
            size: 1,
            value: 0xffff_ff48,
            byte_order: crate::byte_order::ByteOrder::Little,
            ..access(0x4000_c000, io(0x4000_c000, "pl011"))
        };
        let event = decider.decide(&byte).unwrap();
        assert_eq!(
            (event.size, event.value, event.instr_count),
            (1, 0x48, Some(7))
        );
    }

    fn panda(addr: u64, region_offset: u64) -> Landing<'static> {
        Landing::Unclassified {
            phys_addr: Some(addr),
            region_offset,
        }
    }

    /// The lm3s6965evb sections PANDA's listener reports, as the same map.
    fn panda_lm3s() -> Decider {
        let space = AddressSpace::new(Arc::new(DeviceTable::new()));
        for section in crate::test_support::listener_sections() {
            space.add(&section);
        }
        Decider::new(space)
    }

    #[test]
    fn panda_devices_are_named_from_the_absolute_address_not_the_offset() {
        let decider = panda_lm3s();
        let decide = |addr, offset| {
            seen(
                &decider,
                decider.decide(&access(addr, panda(addr, offset))).unwrap(),
            )
        };
        assert_eq!(
            decide(0x4000_c018, 0x18),
            (
                0x4000_c018,
                Some(0x4000_c018),
                0x18,
                Some("pl011".into()),
                Some(DeviceKind::Device)
            )
        );
        assert_eq!(
            decide(0xe000_e018, 0x8),
            (
                0xe000_e018,
                Some(0xe000_e018),
                8,
                Some("v7m_systick".into()),
                Some(DeviceKind::Device)
            )
        );
        assert_eq!(
            decide(0x400f_d000, 0),
            (
                0x400f_d000,
                Some(0x400f_d000),
                0,
                Some("flash-control".into()),
                Some(DeviceKind::Unimplemented)
            )
        );
        // A ROM device's accesses through the I/O path (flash commands) are recorded,
        // as stock QEMU's plugin API reports them.
        assert_eq!(
            decide(0x154, 0x154),
            (
                0x154,
                Some(0x154),
                0x154,
                Some("virt.flash0".into()),
                Some(DeviceKind::Device)
            )
        );
        // Unassigned: a hole of the map; its offset is the address.
        assert_eq!(
            decide(0x4000_1000, 0x4000_1000),
            (
                0x4000_1000,
                Some(0x4000_1000),
                0x4000_1000,
                None,
                Some(DeviceKind::Unassigned)
            )
        );
    }

    #[test]
    fn panda_writes_to_ram_are_skipped_and_untranslated_accesses_keep_the_offset() {
        let decider = panda_lm3s();
        assert_eq!(
            decider.decide(&access(0x2000_0100, panda(0x2000_0100, 0x100))),
            None
        );
        let untranslated = Landing::Unclassified {
            phys_addr: None,
            region_offset: 0x18,
        };
        let event = decider.decide(&access(0xf000_c018, untranslated)).unwrap();
        assert_eq!(seen(&decider, event), (0xf000_c018, None, 0x18, None, None));
        let early = no_map()
            .decide(&access(0x4000_c018, panda(0x4000_c018, 0x18)))
            .unwrap();
        assert_eq!((early.device, early.offset), (DeviceId::UNKNOWN, 0x18));
    }

    /// Dumps handed out in turn, counting the fetches.
    struct Dumps(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl crate::map_refresh::MapFetch for Dumps {
        fn fetch(&mut self) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
            let mut dumps = self.0.lock().unwrap();
            Ok(if dumps.len() > 1 {
                dumps.remove(0)
            } else {
                dumps[0].clone()
            })
        }
    }

    /// Issue #20: U-Boot maps an e1000e's BAR0 at 0x10000000 on `virt` after the map
    /// was dumped. QEMU names the region; the map still says PCI window: a fresh map is
    /// fetched once, and the access gets the device's base and offset.
    #[test]
    fn a_device_mapped_after_the_dump_is_named_from_a_fresh_map() {
        const VIRT: &str = include_str!("../tests/fixtures/virt.mtree");
        let mapped: String = VIRT
            .lines()
            .map(|line| match line.trim_end() {
                "  0000000010000000-000000003efeffff (prio 0, i/o): gpex_mmio_window @0000000010000000" => {
                    "  0000000010000000-000000001001ffff (prio 1, i/o): e1000e-mmio\n  0000000010020000-000000003efeffff (prio 0, i/o): gpex_mmio_window @0000000010020000\n".to_string()
                }
                line => format!("{line}\n"),
            })
            .collect();
        assert_ne!(mapped, VIRT);
        let dumps = std::sync::Arc::new(std::sync::Mutex::new(vec![mapped]));
        let space = AddressSpace::from_mtree(VIRT, Arc::new(DeviceTable::new())).unwrap();
        let decider = Decider::with_refresh(
            space,
            MapRefresh::new(Box::new(Dumps(dumps.clone())), VIRT.to_string()),
        );
        let decide = |addr, name| {
            seen(
                &decider,
                decider.decide(&access(addr, io(addr, name))).unwrap(),
            )
        };
        for addr in [0x1000_0008, 0x1000_0010] {
            assert_eq!(
                decide(addr, "e1000e-mmio"),
                (
                    addr,
                    Some(addr),
                    addr - 0x1000_0000,
                    Some("e1000e-mmio".into()),
                    Some(DeviceKind::Device)
                )
            );
        }
        let refresh = decider.refresh().unwrap();
        assert_eq!(refresh.fetches(), 1, "one fetch for the page");
        // Where QEMU and the fresh map agree nothing is fetched; a disagreement the
        // fetch cannot resolve (an unchanged map) settles the page.
        decide(0x0900_0018, "pl011");
        assert_eq!(refresh.fetches(), 1);
        assert_eq!(decide(0x0c00_0000, "anon5a3c1e80").3, None);
        assert_eq!(decide(0x0c00_0004, "anon5a3c1e80").3, None);
        assert_eq!(
            refresh.fetches(),
            2,
            "a settled page is not fetched for again"
        );
        // A device gone from a page it filled: QEMU says anonymous, the map a device.
        assert!(decider.space().fills_page(0x0903_0000));
        decide(0x0903_0000, "anon5a3c1e80");
        assert_eq!(refresh.fetches(), 3);
    }
}
