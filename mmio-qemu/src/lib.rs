//! mmio-trace as a TCG plugin of stock QEMU (>= 9.2, plugin API v4):
//!
//! ```text
//! qemu-system-arm -M lm3s6965evb -kernel fw.elf \
//!     -plugin libmmio_trace_qemu.so,out_log=trace.parquet,mtree=map.txt
//! ```
//!
//! Every guest load and store that may reach a device gets a memory callback (the
//! instruction's PC is its userdata, so nothing is allocated per instruction); the
//! callback returns at once unless QEMU says the access reached an I/O region. On Arm
//! guests, stack and literal-pool accesses get no callback ([`addressing`]).
//! Arguments: see [`PluginArgs`].

pub mod addressing;
mod args;
#[cfg(not(test))]
mod qemu;
mod tracer;

pub use args::{ArgsError, PluginArgs};
pub use tracer::{word_size, GuestAccess, HwAccess, SetupError, Tracer};

/// The unit tests run outside QEMU, but the `qemu-plugin` crate's exported entry point
/// still refers to these QEMU functions; give the test executable definitions that say
/// so if ever reached.
#[cfg(test)]
mod outside_qemu {
    macro_rules! not_in_qemu {
        ($($name:ident),* $(,)?) => {$(
            #[no_mangle]
            extern "C" fn $name() {
                unreachable!(concat!(stringify!($name), " called outside QEMU"));
            }
        )*};
    }

    not_in_qemu!(
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
