//! A front end's tracer: the decision, the recorder and its sinks, started from the
//! plugin's arguments and finished once, however the emulator ends; a panic in a
//! callback stops the recording and finishes the trace instead of taking the emulator
//! down.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
#[cfg(feature = "fault-injection")]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mmio_core::{
    DeviceTable, EventSink, Filter, MmioEvent, Recorder, RecorderConfig, RecorderError,
    RecorderSummary,
};
use mmio_export::{create_output, ExportError, OutputOptions, TraceInfo};
use thiserror::Error;

use crate::access::{Decider, GuestAccess};
use crate::address_space::AddressSpace;
use crate::map_refresh::{MapFetch, MapRefresh};
use crate::mtree::{io_sections, MtreeError};

/// Why a tracer could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The trace file cannot be created.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The `mtree=` file cannot be read.
    #[error("mtree={}: cannot read", path.display())]
    ReadMtree {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The `mtree=` file is no `info mtree -f` dump.
    #[error("mtree={}", path.display())]
    ParseMtree {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong in it.
        source: MtreeError,
    },
    /// The recorder's writer thread cannot start.
    #[error(transparent)]
    Recorder(#[from] RecorderError),
}

/// Where a tracer learns the guest's memory map from.
#[derive(Clone, Copy, Debug)]
pub enum MapSource<'a> {
    /// An `info mtree -f` dump (stock QEMU's `mtree=`).
    Mtree(&'a Path),
    /// Nothing yet: the front end adds sections as the emulator reports them (PANDA's
    /// `MemoryListener`), or knows no map at all.
    Empty,
}

/// What a tracer is started with.
pub struct TracerSetup<'a> {
    /// The trace file (its extension picks the format) or directory of parts, if any.
    pub out_log: Option<&'a Path>,
    /// The output's format and rotation.
    pub output: OutputOptions,
    /// Which events to keep.
    pub filter: Filter,
    /// The run's facts, stored in the file.
    pub info: TraceInfo,
    /// The memory map's source.
    pub map: MapSource<'a>,
    /// More sinks besides the file (PANDA's in-memory copy for its C API).
    pub extra_sinks: Vec<Box<dyn EventSink>>,
    /// Where a fresh map comes from when the guest changes its own (stock QEMU's QMP
    /// socket; PANDA's listener keeps its map current by itself).
    pub map_fetch: Option<Box<dyn MapFetch>>,
}

/// One front end's recording.
pub struct Tracer {
    decider: Decider,
    recorder: Recorder,
    /// Set by a panic in a callback or by the first finish: no more events.
    stopped: AtomicBool,
    outcome: Mutex<Option<Result<RecorderSummary, RecorderError>>>,
    /// Test builds only: panic when this many events have been recorded
    /// (`u64::MAX`: never).
    #[cfg(feature = "fault-injection")]
    panic_at: AtomicU64,
}

impl Tracer {
    /// Loads the map, creates the trace file and starts the recorder.
    pub fn start(setup: TracerSetup<'_>) -> Result<Tracer, SetupError> {
        let devices = Arc::new(DeviceTable::new());
        let (space, io, dump) = match setup.map {
            MapSource::Mtree(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| SetupError::ReadMtree {
                        path: path.to_path_buf(),
                        source,
                    })?;
                let parse_error = |source| SetupError::ParseMtree {
                    path: path.to_path_buf(),
                    source,
                };
                let space =
                    AddressSpace::from_mtree(&text, devices.clone()).map_err(parse_error)?;
                let io = AddressSpace::from_sections(
                    &io_sections(&text).map_err(parse_error)?,
                    devices.clone(),
                );
                (space, io, text)
            }
            MapSource::Empty => (
                AddressSpace::new(devices.clone()),
                AddressSpace::new(devices.clone()),
                String::new(),
            ),
        };
        let decider = match setup.map_fetch {
            Some(fetch) => Decider::with_refresh(space, MapRefresh::new(fetch, dump)),
            None => Decider::new(space),
        }
        .with_io(io)
        .for_target(&setup.info.target_arch);
        let mut sinks = Vec::new();
        if let Some(path) = setup.out_log {
            sinks.push(create_output(path, &setup.output, setup.info)?);
        }
        sinks.extend(setup.extra_sinks);
        let config = RecorderConfig {
            filter: setup.filter,
            ..RecorderConfig::default()
        };
        Ok(Tracer {
            decider,
            recorder: Recorder::start(config, devices, sinks)?,
            stopped: AtomicBool::new(false),
            outcome: Mutex::new(None),
            #[cfg(feature = "fault-injection")]
            panic_at: AtomicU64::new(
                std::env::var("MMIO_TRACE_PANIC_AT")
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(u64::MAX),
            ),
        })
    }

    /// Test builds only: the next access after `events` events are recorded panics,
    /// as a bug would (also set by the environment variable `MMIO_TRACE_PANIC_AT`).
    #[cfg(feature = "fault-injection")]
    pub fn inject_panic_at(&self, events: u64) {
        self.panic_at.store(events, Ordering::SeqCst);
    }

    /// The address space accesses are looked up in (PANDA's listener updates it).
    pub fn space(&self) -> &AddressSpace {
        self.decider.space()
    }

    /// The recorder.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The device table events refer to.
    pub fn devices(&self) -> &DeviceTable {
        self.decider.space().devices()
    }

    /// See [`Decider::map_changing_store`].
    #[inline]
    pub fn map_changing_store(&self, vaddr: u64) -> Option<u64> {
        self.decider.map_changing_store(vaddr)
    }

    /// Whether writes to `device` can change the memory map while they are under way
    /// ([`crate::region::changes_memory_map`]).
    pub fn changes_memory_map(&self, device: mmio_core::DeviceId) -> bool {
        self.devices().with(device, |device| {
            device.is_some_and(|d| crate::region::changes_memory_map(&d.name))
        })
    }

    /// Decides and records one access; returns the event recorded, if any. A panic
    /// on the way is contained: see [`Tracer::guard`].
    pub fn on_access(&self, access: &GuestAccess<'_>) -> Option<MmioEvent> {
        self.decide_and_record(access)
            .and_then(|(event, kept)| kept.then_some(event))
    }

    /// [`Tracer::on_access`], returning the device access decided whether or not the
    /// filter kept it (`true`: recorded).
    pub fn decide_and_record(&self, access: &GuestAccess<'_>) -> Option<(MmioEvent, bool)> {
        self.guard(|| {
            let event = self.decider.decide(access)?;
            #[cfg(feature = "fault-injection")]
            if self.panic_at.load(Ordering::Relaxed) == self.recorder.events_recorded() {
                panic!(
                    "fault injection after {} events",
                    self.recorder.events_recorded()
                );
            }
            Some((event, self.recorder.record(event)))
        })
        .flatten()
    }

    /// Runs `callback` (the body of an emulator callback) unless recording stopped.
    /// If it panics, the panic is logged once, recording stops, the trace is finished
    /// with what was recorded, and the emulator runs on: a panic must never unwind
    /// into the emulator's C code.
    pub fn guard<R>(&self, callback: impl FnOnce() -> R) -> Option<R> {
        if self.stopped.load(Ordering::Relaxed) {
            return None;
        }
        match catch_unwind(AssertUnwindSafe(callback)) {
            Ok(result) => Some(result),
            Err(panic) => {
                if !self.stopped.swap(true, Ordering::SeqCst) {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    tracing::error!(
                        "mmio_trace: internal error ({message}); recording stops, the trace keeps what was recorded and the guest runs on"
                    );
                    self.finish_and_log();
                }
                None
            }
        }
    }

    /// Finishes the trace (once: later calls return the first outcome).
    pub fn finish(&self) -> Result<RecorderSummary, RecorderError> {
        let mut outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(done) = outcome.as_ref() {
            return done.clone();
        }
        self.stopped.store(true, Ordering::SeqCst);
        let result = catch_unwind(AssertUnwindSafe(|| self.recorder.finish()))
            .unwrap_or(Err(RecorderError::WriterPanicked));
        *outcome = Some(result.clone());
        result
    }

    /// Finishes the trace and logs the outcome, the first time only.
    pub fn finish_and_log(&self) {
        let first = self
            .outcome
            .lock()
            .map(|outcome| outcome.is_none())
            .unwrap_or(true);
        let result = self.finish();
        if !first {
            return;
        }
        match result {
            Ok(summary) => tracing::info!(
                "mmio_trace: {} events recorded ({} filtered out, writer waits: {}, dropped after the end: {})",
                summary.events,
                summary.filtered_out,
                summary.waits,
                summary.after_finish
            ),
            Err(error) => tracing::error!("mmio_trace: {}", crate::ErrorChain(&error)),
        }
        if let Some(refresh) = self.decider.refresh() {
            tracing::info!(
                "mmio_trace: the memory map was fetched {} times while the guest ran",
                refresh.fetches()
            );
        }
        let unresolved = self.decider.unresolved();
        if unresolved > 0 {
            tracing::warn!(
                "mmio_trace: {unresolved} events have no device name: the memory map did not cover them (stock QEMU: pass mtree=FILE, an `info mtree -f` dump, or use `mmio-trace qemu`, which does)"
            );
        }
    }
}

/// Runs `work` on a fresh thread and waits for it: exit handlers run after the exiting
/// thread's thread-locals (the log formatter's among them) are destroyed. Falls back
/// to the calling thread if no thread can be started.
pub fn on_fresh_thread(work: impl FnOnce() + Send + 'static) {
    let work = Arc::new(Mutex::new(Some(work)));
    let run = {
        let work = work.clone();
        move || {
            if let Some(work) = work.lock().ok().and_then(|mut w| w.take()) {
                work();
            }
        }
    };
    match std::thread::Builder::new().spawn(run) {
        Ok(thread) => {
            let _ = thread.join();
        }
        Err(_) => {
            if let Some(work) = work.lock().ok().and_then(|mut w| w.take()) {
                work();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use mmio_core::Access;

    use super::*;
    use crate::access::{Landing, RegionName};

    fn tracer(out: &Path) -> Tracer {
        Tracer::start(TracerSetup {
            out_log: Some(out),
            output: OutputOptions::default(),
            filter: Filter::default(),
            info: TraceInfo::default(),
            map: MapSource::Empty,
            extra_sinks: Vec::new(),
            map_fetch: None,
        })
        .unwrap()
    }

    fn uart_write(value: u64) -> GuestAccess<'static> {
        GuestAccess {
            cpu: 0,
            access: Access::Write,
            pc: 0x52,
            vaddr: 0x4000_c000,
            size: 1,
            value,
            byte_order: crate::byte_order::ByteOrder::Little,
            instr_count: None,
            landing: Landing::Io {
                phys_addr: 0x4000_c000,
                name: RegionName::Known(Some("pl011")),
            },
        }
    }

    #[test]
    fn a_panicking_callback_finishes_the_trace_and_stops_recording() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.jsonl");
        let tracer = tracer(&out);
        assert!(tracer.on_access(&uart_write(0x48)).is_some());
        assert_eq!(tracer.guard(|| -> () { panic!("a bug") }), None);
        // The trace is finished with the event recorded before the panic.
        assert!(out.exists());
        let events: Vec<_> = mmio_export::open_trace(&out).unwrap().collect();
        assert_eq!(events.len(), 1);
        // Later callbacks do nothing, and finishing again is harmless.
        assert_eq!(tracer.on_access(&uart_write(0x69)), None);
        assert_eq!(tracer.finish().unwrap().events, 1);
    }

    #[test]
    fn the_fresh_thread_runs_the_work_once() {
        let ran = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = ran.clone();
        on_fresh_thread(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_missing_map_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.mtree");
        let error = Tracer::start(TracerSetup {
            out_log: Some(&dir.path().join("t.jsonl")),
            output: OutputOptions::default(),
            filter: Filter::default(),
            info: TraceInfo::default(),
            map: MapSource::Mtree(&missing),
            extra_sinks: Vec::new(),
            map_fetch: None,
        })
        .err()
        .unwrap();
        assert_eq!(
            crate::ErrorChain(&error).to_string(),
            format!(
                "mtree={}: cannot read: No such file or directory (os error 2)",
                missing.display()
            )
        );
    }
}
