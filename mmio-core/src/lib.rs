//! The event model of mmio-trace and the path events take from an emulator callback
//! to the sinks that store them.
//!
//! - [`MmioEvent`]: one guest access to an I/O region.
//! - [`DeviceTable`] / [`Device`]: interned device names with their regions.
//! - [`DeviceResolver`], [`MemoryMap`], [`EmulatorNameResolver`]: which device owns an address.
//! - [`Filter`]: which events to keep, parsed from plugin arguments.
//! - [`Recorder`] / [`EventSink`]: a cheap, thread-safe callback side feeding sinks on a
//!   writer thread with bounded memory.
//!
//! Nothing here knows an emulator or a file format: front ends (mmio-qemu, mmio-panda)
//! produce events, mmio-export stores them.

mod device;
mod event;
mod filter;
mod memory_map;
mod mtree;
mod recorder;

pub use device::{Device, DeviceId, DeviceKind, DeviceTable};
pub use event::{Access, MmioEvent};
pub use filter::{Filter, FilterError};
pub use memory_map::{DeviceResolver, EmulatorNameResolver, MemoryMap, Resolution};
pub use mtree::MtreeError;
pub use recorder::{
    EventSink, Recorder, RecorderConfig, RecorderError, RecorderSummary, SinkError,
};
