//! The byte order in which QEMU hands a device the value of an access, so that events
//! record what the device saw.
//!
//! QEMU 10.0.2 (`system/memory.c`, `adjust_endianness`) swaps an access's value when
//! the byte order of the CPU's access differs from the one the region's
//! `MemoryRegionOps` declare (`DEVICE_NATIVE_ENDIAN` meaning the target's): a 4-byte
//! read of a little-endian PCI register by a big-endian CPU leaves the bytes swapped in
//! the CPU's register, and QEMU's own trace shows the device's value. The PANDA
//! front end reads the declared order from each region's ops; the QEMU front end, whose
//! plugin API and memory-map dump do not show it, looks the region's name up in
//! `byte_order_table` (made by `scripts/qemu-device-byte-order.py` from QEMU
//! 10.0.2's sources).

use crate::byte_order_table::{BIG_ENDIAN, LITTLE_ENDIAN};

/// Little- or big-endian.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

impl ByteOrder {
    /// The byte order of QEMU's target `target_name` (`arm`, `mips`, `ppc64`...):
    /// what `DEVICE_NATIVE_ENDIAN` means there.
    pub fn of_target(target_name: &str) -> ByteOrder {
        match target_name {
            "mips" | "mips64" | "ppc" | "ppc64" | "sparc" | "sparc64" | "m68k" | "s390x"
            | "hppa" | "or1k" | "microblaze" | "sh4eb" | "xtensaeb" => ByteOrder::Big,
            _ => ByteOrder::Little,
        }
    }
}

/// The byte order of QEMU's region `name` on the target `target_name`, whose own order
/// is `native`: the order its ops declare, as QEMU 10.0.2's sources show, or `native`
/// for a region not in the table (QEMU's default, `DEVICE_NATIVE_ENDIAN`).
pub fn region_byte_order(name: &str, target_name: &str, native: ByteOrder) -> ByteOrder {
    // Names whose regions declare different orders on different boards, decided by
    // the boards of each target (the generated table lists them).
    match name {
        // PowerPC host bridges (e500, Grackle, UniNorth) take the address register
        // big-endian; every other board's (Malta's GT-64120, PReP's Raven...) takes it
        // little-endian.
        "pci-conf-idx" | "pci.reg" => {
            return if target_name.starts_with("ppc") {
                ByteOrder::Big
            } else {
                ByteOrder::Little
            }
        }
        // m68k's virt machine sets the goldfish RTC big-endian; the others leave it
        // little-endian.
        "goldfish_rtc" => {
            return if target_name == "m68k" {
                ByteOrder::Big
            } else {
                ByteOrder::Little
            }
        }
        _ => {}
    }
    // virtio's PCI regions are named at run time ("virtio-pci-common-virtio-net"); all
    // of virtio_pci.c's ops are little-endian.
    if name.starts_with("virtio-pci-") || LITTLE_ENDIAN.binary_search(&name).is_ok() {
        ByteOrder::Little
    } else if BIG_ENDIAN.binary_search(&name).is_ok() {
        ByteOrder::Big
    } else {
        native
    }
}

/// `value` of `size` bytes as seen in the other byte order.
pub fn swap(value: u64, size: u8) -> u64 {
    match size {
        2 => u64::from((value as u16).swap_bytes()),
        4 => u64::from((value as u32).swap_bytes()),
        8 => value.swap_bytes(),
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        for table in [LITTLE_ENDIAN, BIG_ENDIAN] {
            assert!(table.windows(2).all(|pair| pair[0] < pair[1]));
        }
    }

    /// The regions the tests' guests reach whose order is not the target's (QEMU
    /// 10.0.2: hw/nvram/fw_cfg.c, hw/pci/pci_host.c, hw/pci/pcie_host.c,
    /// hw/display/edid-region.c, hw/pci-host/ppce500.c).
    #[test]
    fn regions_of_the_test_boards() {
        let order = |name, target| region_byte_order(name, target, ByteOrder::of_target(target));
        assert_eq!(order("fwcfg.data", "aarch64"), ByteOrder::Big);
        assert_eq!(order("fwcfg.dma", "x86_64"), ByteOrder::Big);
        assert_eq!(order("fwcfg", "x86_64"), ByteOrder::Little);
        assert_eq!(order("pci-conf-data", "ppc"), ByteOrder::Little);
        assert_eq!(order("pci-conf-idx", "ppc"), ByteOrder::Big);
        assert_eq!(order("pci-conf-idx", "mips"), ByteOrder::Little);
        assert_eq!(order("pcie-mmcfg-mmio", "aarch64"), ByteOrder::Little);
        assert_eq!(order("edid", "x86_64"), ByteOrder::Little);
        assert_eq!(
            order("virtio-pci-common-virtio-net", "mips"),
            ByteOrder::Little
        );
        // Native: the target's.
        assert_eq!(order("malta-fpga", "mips"), ByteOrder::Big);
        assert_eq!(order("malta-fpga", "mipsel"), ByteOrder::Little);
        assert_eq!(order("pl011", "arm"), ByteOrder::Little);
    }

    #[test]
    fn swaps_the_access_width() {
        assert_eq!(swap(0x0000_ab11_2046, 4), 0x4620_11ab);
        assert_eq!(swap(0x0100, 2), 0x0001);
        assert_eq!(swap(0x5a, 1), 0x5a);
        assert_eq!(swap(0x0000_0000_554d_4551, 8), 0x5145_4d55_0000_0000);
    }
}
