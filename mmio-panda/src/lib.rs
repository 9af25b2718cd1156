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
//! The decisions are [`mmio_frontend`]'s, shared with the QEMU plugin; this crate
//! adds PANDA's own arguments, the C API and the FFI glue (`plugin`).

pub mod args;
mod c_api;
#[cfg(not(test))]
mod plugin;
mod recording;

pub use c_api::{
    free_mmio_events, get_mmio_events, mmio_event_t, notify_subscribers, ppp_add_cb_on_mmio_event,
    ppp_add_cb_on_mmio_event_with_context, ppp_remove_cb_on_mmio_event,
    ppp_remove_cb_on_mmio_event_with_context, OnMmioEvent, OnMmioEventWithContext, Retention,
    RetentionSink,
};
pub use recording::{PandaAccess, PandaTracer};
