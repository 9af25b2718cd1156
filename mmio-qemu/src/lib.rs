//! mmio-trace as a TCG plugin of stock QEMU (>= 9.2, plugin API v4):
//!
//! ```text
//! qemu-system-arm -M lm3s6965evb -kernel fw.elf \
//!     -plugin libmmio_trace_qemu.so,out_log=trace.parquet,mtree=map.txt
//! ```
//!
//! The last instruction of each translation block, the only one QEMU lets reach a
//! device, gets a memory callback (its PC is the userdata, so nothing is allocated per
//! instruction); the callback returns at once unless QEMU says the access reached an
//! I/O region, and [`mmio_frontend`] decides and records the rest. On Arm guests,
//! stack and literal-pool accesses get no callback ([`addressing`]). Arguments: see
//! [`args`].

pub mod addressing;
pub mod args;
pub mod map_change;
#[cfg(not(test))]
mod port_callbacks;
pub mod port_io;
#[cfg(not(test))]
mod qemu;

/// Bytes in a guest word, from QEMU's target name.
pub fn word_size(target_name: &str) -> u8 {
    match target_name {
        "aarch64" | "x86_64" | "mips64" | "mips64el" | "ppc64" | "riscv64" | "s390x"
        | "sparc64" | "loongarch64" | "alpha" => 8,
        _ => 4,
    }
}

/// The physical address a target's fixed translation gives `vaddr`, without its MMU:
/// MIPS's unmapped segments kseg0 and kseg1 (0x80000000-0xbfffffff, and their
/// sign-extended form on 64-bit MIPS) are the first 512 MiB of physical memory. What
/// an instruction fetched from I/O is looked up at, as no plugin API translates a
/// fetch's address.
pub fn fixed_physical(target_name: &str, vaddr: u64) -> Option<u64> {
    let high = match target_name {
        "mips" | "mipsel" => 0,
        "mips64" | "mips64el" => 0xffff_ffff,
        _ => return None,
    };
    let low = vaddr & 0xffff_ffff;
    (vaddr >> 32 == high && (0x8000_0000..0xc000_0000).contains(&low)).then_some(low & 0x1fff_ffff)
}

/// The unit tests run outside QEMU, but the `qemu-plugin` crate's exported entry point
/// still refers to these QEMU functions; give the test executable definitions that say
/// so if ever reached.
#[cfg(test)]
mod outside_qemu {
    mmio_frontend::emulator_functions_unavailable!(
        "QEMU",
        qemu_plugin_register_flush_cb,
        qemu_plugin_register_vcpu_exit_cb,
        qemu_plugin_register_vcpu_idle_cb,
        qemu_plugin_register_vcpu_init_cb,
        qemu_plugin_register_vcpu_resume_cb,
        qemu_plugin_register_vcpu_syscall_cb,
        qemu_plugin_register_vcpu_syscall_ret_cb,
        qemu_plugin_register_vcpu_tb_trans_cb,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mips_unmapped_segments_are_translated_without_the_mmu() {
        assert_eq!(fixed_physical("mipsel", 0xbc00_6490), Some(0x1c00_6490));
        assert_eq!(fixed_physical("mips", 0x8010_001c), Some(0x0010_001c));
        assert_eq!(
            fixed_physical("mips64el", 0xffff_ffff_bfc0_0000),
            Some(0x1fc0_0000)
        );
        // kuseg and kseg2 go through the TLB; other targets have no such segments.
        assert_eq!(fixed_physical("mips", 0x0040_0000), None);
        assert_eq!(fixed_physical("mips", 0xc000_0000), None);
        assert_eq!(fixed_physical("mips64el", 0xbfc0_0000), None);
        assert_eq!(fixed_physical("arm", 0xbc00_6490), None);
    }

    #[test]
    fn word_sizes_follow_the_target() {
        assert_eq!(word_size("arm"), 4);
        assert_eq!(word_size("aarch64"), 8);
        assert_eq!(word_size("x86_64"), 8);
        assert_eq!(word_size("i386"), 4);
    }
}
