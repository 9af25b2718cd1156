use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{DeviceId, DeviceKind, DeviceTable};

/// Which device owns an address, and where its region starts.
///
/// Resolvers return the region's base with the device so that the emulator callback can
/// compute the access's offset without a second look-up in the device table.
pub trait DeviceResolver {
    /// The device whose region holds `phys_addr` (an access of `size` bytes), with the
    /// absolute base of that region.
    fn resolve(&self, phys_addr: u64, size: u8) -> Option<Resolution>;
}

/// A resolved access: the device and the absolute base address of its region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub device: DeviceId,
    pub base: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Section {
    /// Last address of the range (inclusive, so a range may end at `u64::MAX`).
    last: u64,
    target: Resolution,
}

/// The flat view of an address space: non-overlapping ranges, each owned by the leaf
/// region QEMU dispatches an access in that range to.
///
/// Kept current with [`MemoryMap::insert`] / [`MemoryMap::remove`] (what a QEMU
/// `MemoryListener` reports as `region_add` / `region_del`), or built from the text of
/// QEMU's `info mtree -f` with [`MemoryMap::from_mtree`]. Look-ups are O(log n).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryMap {
    /// Sections keyed by their first address.
    sections: BTreeMap<u64, Section>,
}

impl MemoryMap {
    pub fn new() -> MemoryMap {
        MemoryMap::default()
    }

    /// Maps `first..=last` to `device`, whose region starts at `base`. Whatever was
    /// mapped there before is cut away, as a higher-priority region covers a lower one
    /// in QEMU's flat view.
    pub fn insert(&mut self, first: u64, last: u64, device: DeviceId, base: u64) {
        if first > last {
            return;
        }
        self.remove(first, last);
        self.sections.insert(
            first,
            Section {
                last,
                target: Resolution { device, base },
            },
        );
    }

    /// Unmaps `first..=last`, splitting sections that straddle its ends.
    pub fn remove(&mut self, first: u64, last: u64) {
        if first > last {
            return;
        }
        // A section that starts before `first` and reaches into the range.
        if let Some((&start, &section)) = self.sections.range(..first).next_back() {
            if section.last >= first {
                self.sections.insert(
                    start,
                    Section {
                        last: first - 1,
                        ..section
                    },
                );
                if section.last > last {
                    self.sections.insert(
                        last + 1,
                        Section {
                            last: section.last,
                            ..section
                        },
                    );
                }
            }
        }
        let inside: Vec<u64> = self
            .sections
            .range(first..=last)
            .map(|(&start, _)| start)
            .collect();
        for start in inside {
            if let Some(section) = self.sections.remove(&start) {
                if section.last > last {
                    self.sections.insert(last + 1, section);
                }
            }
        }
    }

    /// The device at `addr`, if any.
    pub fn lookup(&self, addr: u64) -> Option<Resolution> {
        let (_, section) = self.sections.range(..=addr).next_back()?;
        (section.last >= addr).then_some(section.target)
    }

    /// The mapped ranges in address order: `(first, last, resolution)`.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64, Resolution)> + '_ {
        self.sections
            .iter()
            .map(|(&first, section)| (first, section.last, section.target))
    }

    pub fn len(&self) -> usize {
        self.sections.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }
}

impl DeviceResolver for MemoryMap {
    fn resolve(&self, phys_addr: u64, _size: u8) -> Option<Resolution> {
        // QEMU dispatches an access by its first byte; so do we.
        self.lookup(phys_addr)
    }
}

/// "The emulator's own name unless it is anonymous, then the map."
///
/// QEMU's plugin API names the region of an I/O access, but regions without a name
/// (devices sharing a page, such as SysTick) come out as `anon<pointer>`, which changes
/// every run; those are resolved through a [`DeviceResolver`] instead.
#[derive(Debug)]
pub struct EmulatorNameResolver<R> {
    fallback: R,
    devices: Arc<DeviceTable>,
}

impl<R: DeviceResolver> EmulatorNameResolver<R> {
    pub fn new(fallback: R, devices: Arc<DeviceTable>) -> Self {
        EmulatorNameResolver { fallback, devices }
    }

    /// Whether `name` is one of QEMU's generated names for an unnamed region.
    pub fn is_anonymous(name: &str) -> bool {
        name.is_empty()
            || name
                .strip_prefix("anon")
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// Resolves an access the emulator named `emulator_name` (`None` if it gave none).
    pub fn resolve_named(
        &self,
        emulator_name: Option<&str>,
        phys_addr: u64,
        size: u8,
    ) -> Option<Resolution> {
        let mapped = self.fallback.resolve(phys_addr, size);
        let name = match emulator_name {
            Some(name) if !Self::is_anonymous(name) => name,
            _ => return mapped,
        };
        if let Some(found) = mapped {
            if self
                .devices
                .get(found.device)
                .is_some_and(|device| &*device.name == name)
            {
                return Some(found);
            }
        }
        // A named region the map does not know (no map given, or it is stale): keep
        // the name; its base is unknown.
        let device = self.devices.intern(name, 0, 0, DeviceKind::Device);
        Some(Resolution { device, base: 0 })
    }

    pub fn fallback(&self) -> &R {
        &self.fallback
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> DeviceId {
        DeviceId(n)
    }

    #[test]
    fn lookups_at_range_ends() {
        let mut map = MemoryMap::new();
        map.insert(0x4000_c000, 0x4000_cfff, id(1), 0x4000_c000);
        assert_eq!(map.lookup(0x4000_bfff), None);
        assert_eq!(map.lookup(0x4000_c000).unwrap().device, id(1));
        assert_eq!(map.lookup(0x4000_cfff).unwrap().device, id(1));
        assert_eq!(map.lookup(0x4000_d000), None);
    }

    #[test]
    fn adjacent_ranges_stay_apart() {
        let mut map = MemoryMap::new();
        map.insert(0x1000, 0x1fff, id(1), 0x1000);
        map.insert(0x2000, 0x2fff, id(2), 0x2000);
        assert_eq!(map.lookup(0x1fff).unwrap().device, id(1));
        assert_eq!(map.lookup(0x2000).unwrap().device, id(2));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn nested_range_splits_the_outer_one() {
        // nvic_sysregs 0xe000e000-0xe000efff with v7m_systick laid over 0xe000e010-0xe000e0ef.
        let mut map = MemoryMap::new();
        map.insert(0xe000_e000, 0xe000_efff, id(1), 0xe000_e000);
        map.insert(0xe000_e010, 0xe000_e0ef, id(2), 0xe000_e010);
        let ranges: Vec<(u64, u64, u32)> =
            map.ranges().map(|(a, b, r)| (a, b, r.device.0)).collect();
        assert_eq!(
            ranges,
            [
                (0xe000_e000, 0xe000_e00f, 1),
                (0xe000_e010, 0xe000_e0ef, 2),
                (0xe000_e0f0, 0xe000_efff, 1),
            ]
        );
        // Both halves of the outer region keep its base.
        assert_eq!(map.lookup(0xe000_e0f0).unwrap().base, 0xe000_e000);
    }

    #[test]
    fn a_later_region_covers_what_it_overlaps() {
        let mut map = MemoryMap::new();
        map.insert(0x0, 0xfff, id(1), 0x0);
        map.insert(0x800, 0x17ff, id(2), 0x800);
        assert_eq!(map.lookup(0x7ff).unwrap().device, id(1));
        assert_eq!(map.lookup(0x800).unwrap().device, id(2));
        assert_eq!(map.lookup(0x17ff).unwrap().device, id(2));
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn removed_and_readded_range() {
        let mut map = MemoryMap::new();
        map.insert(0x1000, 0x1fff, id(1), 0x1000);
        map.remove(0x1000, 0x1fff);
        assert_eq!(map.lookup(0x1000), None);
        assert!(map.is_empty());
        // The guest remaps the device elsewhere.
        map.insert(0x8000, 0x8fff, id(1), 0x8000);
        assert_eq!(
            map.lookup(0x8004).unwrap(),
            Resolution {
                device: id(1),
                base: 0x8000
            }
        );
        assert_eq!(map.lookup(0x1004), None);
    }

    #[test]
    fn removing_the_middle_leaves_both_ends() {
        let mut map = MemoryMap::new();
        map.insert(0x0, 0x2fff, id(1), 0x0);
        map.remove(0x1000, 0x1fff);
        assert_eq!(map.lookup(0xfff).unwrap().device, id(1));
        assert_eq!(map.lookup(0x1000), None);
        assert_eq!(map.lookup(0x2000).unwrap().device, id(1));
    }

    #[test]
    fn range_may_end_at_the_top_of_the_address_space() {
        let mut map = MemoryMap::new();
        map.insert(u64::MAX - 0xfff, u64::MAX, id(3), u64::MAX - 0xfff);
        assert_eq!(map.lookup(u64::MAX).unwrap().device, id(3));
        map.remove(u64::MAX, u64::MAX);
        assert_eq!(map.lookup(u64::MAX), None);
        assert_eq!(map.lookup(u64::MAX - 1).unwrap().device, id(3));
    }

    #[test]
    fn anonymous_names_are_recognised() {
        type R = EmulatorNameResolver<MemoryMap>;
        assert!(R::is_anonymous("anon5a3c1e80"));
        assert!(R::is_anonymous(""));
        assert!(!R::is_anonymous("anon"));
        assert!(!R::is_anonymous("anonymous-device"));
        assert!(!R::is_anonymous("pl011"));
    }

    #[test]
    fn emulator_name_wins_unless_anonymous() {
        let devices = Arc::new(DeviceTable::new());
        let systick = devices.intern("v7m_systick", 0xe000_e010, 0xe0, DeviceKind::Device);
        let uart = devices.intern("pl011", 0x4000_c000, 0x1000, DeviceKind::Device);
        let mut map = MemoryMap::new();
        map.insert(0xe000_e010, 0xe000_e0ef, systick, 0xe000_e010);
        map.insert(0x4000_c000, 0x4000_cfff, uart, 0x4000_c000);
        let resolver = EmulatorNameResolver::new(map, devices.clone());

        let anon = resolver
            .resolve_named(Some("anon0a1b2c3d"), 0xe000_e018, 4)
            .unwrap();
        assert_eq!(
            anon,
            Resolution {
                device: systick,
                base: 0xe000_e010
            }
        );
        let named = resolver
            .resolve_named(Some("pl011"), 0x4000_c018, 4)
            .unwrap();
        assert_eq!(
            named,
            Resolution {
                device: uart,
                base: 0x4000_c000
            }
        );
        // A name the map disagrees with is kept, with an unknown base.
        let other = resolver
            .resolve_named(Some("gptm"), 0x4000_c018, 4)
            .unwrap();
        assert_eq!(&*devices.get(other.device).unwrap().name, "gptm");
        assert_eq!(other.base, 0);
        assert_eq!(resolver.resolve_named(None, 0x5000_0000, 4), None);
    }
}
