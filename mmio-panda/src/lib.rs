//! mmio-trace as a PANDA plugin (`panda_mmio_trace.so`):
//!
//! ```text
//! panda-system-arm -M lm3s6965evb -kernel fw.elf -panda mmio_trace:out_log=trace.parquet
//! ```
//!
//! Unlike the upstream plugin it records absolute physical addresses, names the device
//! at access time from a map of the CPU's address space kept by a `MemoryListener`,
//! skips the RAM and ROM writes PANDA's MMIO callback also reports, streams to any
//! mmio-export format, and exports an unmangled, `malloc`-based C API
//! (`include/mmio_trace.h`) plus a PPP callback.
//!
//! Everything PANDA-independent (arguments, address and device decisions, the C API's
//! retention) is in modules tested without PANDA; `plugin` is the thin FFI glue.

mod access;
mod args;
mod c_api;
#[cfg(not(test))]
mod plugin;
mod regions;

pub use access::{AccessDecision, PandaAccess, Tracer};
pub use args::{ArgsError, PandaArgs};
pub use c_api::{free_mmio_events, get_mmio_events, mmio_event_t, Retention};
pub use regions::{Lookup, RegionInfo, SharedMap};
