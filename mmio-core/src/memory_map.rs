use std::collections::BTreeMap;

use crate::DeviceId;

/// Where an address resolved to: the device and the absolute base address of its
/// region (returned together so that the emulator callback computes the access's
/// offset without a second look-up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The device whose region holds the address.
    pub device: DeviceId,
    /// The region's first address.
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
/// `MemoryListener` reports as `region_add` / `region_del`). Look-ups are O(log n).
/// Nothing here is specific to an emulator: `mmio-frontend` builds it from QEMU's
/// memory model.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryMap {
    /// Sections keyed by their first address.
    sections: BTreeMap<u64, Section>,
}

impl MemoryMap {
    /// An empty map.
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

    /// The section holding `addr`, if any: `(first, last, resolution)`.
    pub fn section_at(&self, addr: u64) -> Option<(u64, u64, Resolution)> {
        let (&first, section) = self.sections.range(..=addr).next_back()?;
        (section.last >= addr).then_some((first, section.last, section.target))
    }

    /// The mapped ranges in address order: `(first, last, resolution)`.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64, Resolution)> + '_ {
        self.sections
            .iter()
            .map(|(&first, section)| (first, section.last, section.target))
    }

    /// Number of sections.
    pub fn len(&self) -> usize {
        self.sections.len()
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
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
        assert_eq!(
            map.section_at(0xe000_e100),
            Some((0xe000_e0f0, 0xe000_efff, map.lookup(0xe000_e100).unwrap()))
        );
        assert_eq!(map.section_at(0xe000_f000), None);
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
}
