//! Writes that change the memory map are not looked up.
//!
//! QEMU's `qemu_plugin_get_hwaddr` finds an I/O access's region from the index its TLB
//! entry stores into the address space's dispatch (`tlb_plugin_lookup` ->
//! `iotlb_to_section`). Since "system/physmem: fix use-after-free with dispatch"
//! (upstream 10.1 and 10.0.4; Debian's 10.0.2+ds-2 in bookworm-backports carries it)
//! that dispatch is the address space's *current* one, while the TLB entry is flushed
//! only when the vCPU next leaves its loop (`tcg_commit` defers `tcg_commit_cpu`). A
//! write that maps, moves or unmaps a device (a PCI BAR, the command register) swaps
//! the dispatch during the access, so the memory callback after it looks an old index
//! up in the new map: QEMU aborts (`iotlb_to_section: Assertion 'section_index <
//! d->map.sections_nb' failed`, U-Boot bringing up an e1000e on AArch64 `virt`) or
//! names another region.
//!
//! So a write to a block of virtual addresses that this vCPU last saw land in a region
//! whose writes change the map ([`mmio_frontend::region::changes_memory_map`]: PCI
//! configuration space and host-bridge windows) takes its physical address from that
//! earlier lookup and its device from the map, without asking QEMU. Firmware and
//! kernels read such a block (a vendor ID, a BAR) before writing it.

use std::sync::atomic::{AtomicU64, Ordering};

/// The block the translation is remembered for: 1 KiB, the smallest page of any QEMU
/// target a plugin traces (32-bit Arm's), so the block is never split across pages.
const BLOCK_BITS: u32 = 10;
const NONE: u64 = u64::MAX;

/// vCPUs with a slot of their own; any beyond are looked up as before.
const MAX_VCPUS: usize = 1024;

/// Per vCPU: the virtual block last seen to land in a map-changing region, and its
/// physical block. Each slot is written only by its own vCPU's thread.
pub struct MapChangingBlocks {
    slots: Box<[Slot]>,
}

struct Slot {
    virt_block: AtomicU64,
    phys_block: AtomicU64,
}

impl Default for MapChangingBlocks {
    fn default() -> MapChangingBlocks {
        MapChangingBlocks {
            slots: (0..MAX_VCPUS)
                .map(|_| Slot {
                    virt_block: AtomicU64::new(NONE),
                    phys_block: AtomicU64::new(NONE),
                })
                .collect(),
        }
    }
}

impl MapChangingBlocks {
    /// The physical address of an access by `cpu` to `vaddr` if it is in the block
    /// remembered for that vCPU.
    #[inline]
    pub fn physical(&self, cpu: u32, vaddr: u64) -> Option<u64> {
        let slot = self.slots.get(cpu as usize)?;
        if slot.virt_block.load(Ordering::Relaxed) != vaddr >> BLOCK_BITS {
            return None;
        }
        let phys_block = slot.phys_block.load(Ordering::Relaxed);
        Some((phys_block << BLOCK_BITS) | (vaddr & ((1 << BLOCK_BITS) - 1)))
    }

    /// Records what a lookup of an I/O access by `cpu` found: `vaddr` landed at
    /// `phys`, in a map-changing region or not.
    pub fn looked_up(&self, cpu: u32, vaddr: u64, phys: u64, changes_map: bool) {
        let Some(slot) = self.slots.get(cpu as usize) else {
            return;
        };
        let virt_block = vaddr >> BLOCK_BITS;
        if changes_map {
            slot.phys_block.store(phys >> BLOCK_BITS, Ordering::Relaxed);
            slot.virt_block.store(virt_block, Ordering::Relaxed);
        } else if slot.virt_block.load(Ordering::Relaxed) == virt_block {
            slot.virt_block.store(NONE, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_after_a_read_of_pci_configuration_space_is_not_looked_up() {
        let blocks = MapChangingBlocks::default();
        // U-Boot on AArch64 virt: ECAM at 0x4010000000, mapped 1:1.
        assert_eq!(blocks.physical(0, 0x40_1000_8004), None);
        blocks.looked_up(0, 0x40_1000_8010, 0x40_1000_8010, true);
        assert_eq!(blocks.physical(0, 0x40_1000_8004), Some(0x40_1000_8004));
        // Another vCPU has its own slot; another block is not covered.
        assert_eq!(blocks.physical(1, 0x40_1000_8004), None);
        assert_eq!(blocks.physical(0, 0x40_1000_9004), None);
        // A kernel's mapping: virtual and physical blocks differ.
        blocks.looked_up(1, 0xffff_0000_0040_0010, 0x40_1000_8010, true);
        assert_eq!(
            blocks.physical(1, 0xffff_0000_0040_03fc),
            Some(0x40_1000_83fc)
        );
        // The block now lands elsewhere (remapped): forgotten.
        blocks.looked_up(1, 0xffff_0000_0040_0010, 0x0900_0010, false);
        assert_eq!(blocks.physical(1, 0xffff_0000_0040_0010), None);
        // A vCPU beyond the slots is always looked up.
        blocks.looked_up(5000, 0x1000, 0x1000, true);
        assert_eq!(blocks.physical(5000, 0x1000), None);
    }
}
