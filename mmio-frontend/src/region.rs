//! QEMU's memory regions: what kind of memory each is, where it sits, and which names
//! QEMU makes up for unnamed ones. The same for every QEMU the front ends meet
//! (PANDA's 2.9 and stock QEMU 9.2 and later).

use mmio_core::DeviceKind;

/// `create_unimplemented_device` maps its stub at this priority, so that any real
/// device mapped over it wins; nothing else in QEMU uses it.
pub const UNIMPLEMENTED_DEVICE_PRIORITY: i64 = -1000;

/// `empty_slot_init` (hw/misc/empty_slot.c, QEMU 10.0.2) maps its `empty-slot` stub,
/// which stands for hardware a bus decodes but QEMU does not model (Malta's GT-64120
/// windows, sun4m), at this priority.
pub const EMPTY_SLOT_PRIORITY: i64 = -10000;

/// What QEMU says of a memory region: the flags of its `MemoryRegion` (PANDA's
/// `MemoryListener`) or the attribute of its `info mtree -f` line (stock QEMU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegionFlags {
    /// Backed by host memory (`ram`, `rom`, `ramd`, `nv-ram` in `info mtree`).
    pub ram: bool,
    /// A ROM device (`romd`): reads come from its memory while it is in ROM mode;
    /// writes, and reads once it leaves that mode, go to the device model.
    pub rom_device: bool,
    /// Read-only memory (`rom`).
    pub readonly: bool,
    /// The region's priority in its container.
    pub priority: i64,
}

impl RegionFlags {
    /// The flags `info mtree -f` shows as a line's attribute (`ram`, `rom`, `romd`,
    /// `i/o`, ...) and priority.
    pub fn from_mtree_attribute(attribute: &str, priority: i64) -> RegionFlags {
        RegionFlags {
            ram: matches!(attribute, "ram" | "ramd" | "nv-ram" | "rom"),
            rom_device: attribute == "romd",
            readonly: attribute == "rom",
            priority,
        }
    }

    /// The kind recorded for accesses to the region. A ROM device (the CFI flash of
    /// `virt` or `vexpress-a9`) is a device: every access that reaches it through the
    /// I/O path (flash commands, reads of its status or query data) is handled by its
    /// model, as stock QEMU's plugin API reports.
    pub fn kind(&self) -> DeviceKind {
        if self.rom_device {
            DeviceKind::Device
        } else if self.readonly {
            DeviceKind::Rom
        } else if self.ram {
            DeviceKind::Ram
        } else if matches!(
            self.priority,
            UNIMPLEMENTED_DEVICE_PRIORITY | EMPTY_SLOT_PRIORITY
        ) {
            DeviceKind::Unimplemented
        } else {
            DeviceKind::Device
        }
    }
}

/// A section of an address space's flat view: a range and the region QEMU dispatches
/// it to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    /// The region's name; `None` for an unnamed region.
    pub name: Option<String>,
    /// First address of the section.
    pub first: u64,
    /// Last address of the section (inclusive).
    pub last: u64,
    /// Address of the region's first byte (the section may start inside it).
    pub base: u64,
    /// Bytes in the region, as far as the caller knows (at least the section's).
    pub region_size: u64,
    /// What QEMU says of the region.
    pub flags: RegionFlags,
    /// The byte order the region's ops declare, where known (PANDA's listener reads
    /// it; `info mtree -f` does not show it: see [`crate::byte_order`]).
    pub byte_order: Option<crate::byte_order::ByteOrder>,
}

impl Section {
    /// The section a `MemoryListener` reports (`MemoryRegionSection`): `size` bytes from
    /// `first`, `offset_within_region` bytes into its region. `None` when empty.
    pub fn from_listener(
        name: Option<String>,
        first: u64,
        size: u64,
        offset_within_region: u64,
        flags: RegionFlags,
    ) -> Option<Section> {
        let last = first.checked_add(size.checked_sub(1)?)?;
        Some(Section {
            name,
            first,
            last,
            base: first.wrapping_sub(offset_within_region),
            region_size: size,
            flags,
            byte_order: None,
        })
    }
}

/// Whether `name` is one of the names QEMU's plugin API makes up for an unnamed region
/// (`anon` and a pointer in hex, different every run), which names nothing.
pub fn is_anonymous(name: &str) -> bool {
    name.is_empty()
        || name
            .strip_prefix("anon")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether a write to the region named `name` can change the memory map while the
/// write is under way: the configuration space of QEMU's PCI hosts, where a BAR or
/// the command register maps, moves or unmaps a device (`pci_update_mappings`), and
/// the host bridges' own registers that move their PCI windows. Names as QEMU 10.0.2
/// gives them: `pcie-mmcfg-mmio` (ECAM of `gpex` on `virt`, of q35),
/// `pci-conf-idx` / `pci-conf-data` (the 0xcf8/0xcfc pair, memory-mapped on
/// `ppce500` and Malta), `pci.reg` (e500's outbound windows), `gt64120-isd` (Malta's
/// GT-64120, which moves its own registers too).
pub fn changes_memory_map(name: &str) -> bool {
    matches!(
        name,
        "pcie-mmcfg-mmio" | "pci-conf-idx" | "pci-conf-data" | "pci.reg" | "gt64120-isd"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_mtree_attributes() {
        let kind =
            |attribute, priority| RegionFlags::from_mtree_attribute(attribute, priority).kind();
        assert_eq!(kind("ram", 0), DeviceKind::Ram);
        assert_eq!(kind("rom", 0), DeviceKind::Rom);
        assert_eq!(kind("romd", 0), DeviceKind::Device);
        assert_eq!(kind("i/o", 0), DeviceKind::Device);
        assert_eq!(kind("i/o", -1000), DeviceKind::Unimplemented);
    }

    #[test]
    fn kinds_from_memory_region_flags() {
        let flags = |ram, rom_device, readonly, priority| RegionFlags {
            ram,
            rom_device,
            readonly,
            priority,
        };
        assert_eq!(flags(true, false, false, 0).kind(), DeviceKind::Ram);
        assert_eq!(flags(true, false, true, 0).kind(), DeviceKind::Rom);
        assert_eq!(flags(false, true, false, 0).kind(), DeviceKind::Device);
        assert_eq!(
            flags(false, false, false, -1000).kind(),
            DeviceKind::Unimplemented
        );
    }

    #[test]
    fn anonymous_names() {
        assert!(is_anonymous("anon7f3a2c004e10"));
        assert!(is_anonymous(""));
        assert!(!is_anonymous("anon"));
        assert!(!is_anonymous("anonymous-device"));
        assert!(!is_anonymous("pl011"));
    }

    #[test]
    fn pci_configuration_regions_change_the_map() {
        for name in ["pcie-mmcfg-mmio", "pci-conf-data", "pci.reg", "gt64120-isd"] {
            assert!(changes_memory_map(name), "{name}");
        }
        assert!(!changes_memory_map("pl011"));
        assert!(!changes_memory_map("e1000e-mmio"));
    }
}
