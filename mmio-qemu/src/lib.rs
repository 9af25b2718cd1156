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
mod qemu;

/// Bytes in a guest word, from QEMU's target name.
pub fn word_size(target_name: &str) -> u8 {
    match target_name {
        "aarch64" | "x86_64" | "mips64" | "mips64el" | "ppc64" | "riscv64" | "s390x"
        | "sparc64" | "loongarch64" | "alpha" => 8,
        _ => 4,
    }
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
    fn word_sizes_follow_the_target() {
        assert_eq!(word_size("arm"), 4);
        assert_eq!(word_size("aarch64"), 8);
        assert_eq!(word_size("x86_64"), 8);
        assert_eq!(word_size("i386"), 4);
    }
}
