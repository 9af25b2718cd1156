//! What the two emulator front ends of mmio-trace (the stock-QEMU TCG plugin
//! `mmio-qemu` and the PANDA plugin `mmio-panda`) share, so that a fix lands once:
//!
//! - QEMU's memory model: [`region`] (region kinds, the stub priority, QEMU's names
//!   for unnamed regions), [`mtree`] (`info mtree -f` dumps), [`address_space`] (the
//!   map vCPU threads look accesses up in);
//! - [`access`]: the decision, for each guest access, whether it reached a device and
//!   which;
//! - [`args`]: the plugin arguments both take;
//! - [`tracer`]: starting a recording from them and finishing it once, however the
//!   emulator ends, with panics kept out of the emulator.
//!
//! The front ends keep only their FFI glue and what is theirs alone (QEMU's
//! translation-time skipping, PANDA's C API).

#![warn(missing_docs)]

pub mod access;
pub mod address_space;
pub mod args;
pub mod byte_order;
mod byte_order_table;
pub mod map_refresh;
pub mod mtree;
pub mod qmp;
pub mod region;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod tracer;

pub use mmio_core::ErrorChain;

use std::io::IsTerminal;

/// Sends `tracing` output to stderr, coloured only when stderr is a terminal (a log
/// file or a CI log gets plain text). Does nothing if the process already has a
/// subscriber.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .try_init();
}
