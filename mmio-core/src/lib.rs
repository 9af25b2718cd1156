//! The event model of mmio-trace and the path events take from an emulator callback
//! to the sinks that store them.
//!
//! - [`MmioEvent`]: one guest access to an I/O region.
//! - [`DeviceTable`] / [`Device`]: interned device names with their regions.
//! - [`MemoryMap`]: which device owns an address (an interval map; `mmio-frontend`
//!   fills it from QEMU's memory model).
//! - [`Filter`]: which events to keep, parsed from plugin arguments.
//! - [`Recorder`] / [`EventSink`]: a cheap, thread-safe callback side feeding sinks on a
//!   writer thread with bounded memory.
//!
//! Nothing here knows an emulator or a file format: front ends (mmio-qemu, mmio-panda)
//! produce events, mmio-export stores them.

#![warn(missing_docs)]

mod device;
mod event;
mod filter;
mod memory_map;
mod recorder;

pub use device::{Device, DeviceId, DeviceKind, DeviceTable, TableFull, UnknownKind};
pub use event::{Access, MmioEvent, Space, UnknownAccess, UnknownSpace};
pub use filter::{Filter, FilterError};
pub use memory_map::{MemoryMap, Resolution};
pub use recorder::{
    EventSink, Recorder, RecorderConfig, RecorderError, RecorderSummary, SinkError,
};

/// Displays an error with its sources, each once: `outer: inner: root cause`.
///
/// ```
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// let error = mmio_core::SinkError::new(io);
/// assert_eq!(mmio_core::ErrorChain(&error).to_string(), "no such file");
/// ```
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}
