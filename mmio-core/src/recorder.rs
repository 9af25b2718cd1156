//! From the emulator's callback to the sinks.
//!
//! The callback side ([`Recorder::record`]) takes a sequence number from one atomic
//! counter and appends the event to its vCPU's lane: a buffer behind a lock that only
//! that vCPU takes in the common case, so vCPUs do not serialise on one lock. Full
//! buffers are swapped for recycled ones, so the callback allocates only a lane's
//! first buffer and while the pool grows towards its bound (`queue_buffers` + 2 per
//! lane in use, reached when the writer falls behind), never after; nothing is
//! formatted, no system call is made. Full buffers travel over a
//! bounded queue to one writer thread, which merges the lanes back into `seq` order and
//! feeds the sinks, so memory is bounded by about `queue_buffers + 2 * lanes` buffers
//! however long the run. When the writer falls behind, the callback waits instead of
//! dropping events, and [`RecorderSummary::waits`] counts how often it did.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use thiserror::Error;

use crate::{DeviceTable, Filter, MmioEvent};

/// A destination for events: a file writer, the C API's retention buffer, a test.
pub trait EventSink: Send {
    /// What this sink writes to, for messages (e.g. a file path).
    fn target(&self) -> String;
    /// Stores a batch of events, in `seq` order. `devices` holds every device they name.
    fn write(&mut self, events: &[MmioEvent], devices: &DeviceTable) -> Result<(), SinkError>;
    /// Makes what was written so far durable where the format allows (called when the
    /// guest has been idle for a while).
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Completes the output; no more calls follow.
    fn finish(&mut self, devices: &DeviceTable) -> Result<(), SinkError>;
}

/// An error from a sink, whatever its own error type (kept as its source).
#[derive(Debug, Error)]
#[error(transparent)]
pub struct SinkError(Box<dyn std::error::Error + Send + Sync>);

impl SinkError {
    /// Wraps a sink's own error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> SinkError {
        SinkError(Box::new(error))
    }
}

/// Why a recording did not complete.
#[derive(Clone, Debug, Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// A sink failed; the recording went on for the others.
    #[error("writing {target} failed after {events_written} events")]
    Sink {
        /// What the sink writes to.
        target: String,
        /// Events it had been handed before it failed.
        events_written: u64,
        /// Its error (shared: a finished recorder reports it to every caller).
        #[source]
        source: Arc<SinkError>,
    },
    /// The writer thread panicked (a bug in a sink).
    #[error("the recorder's writer thread panicked")]
    WriterPanicked,
    /// The writer thread could not be started.
    #[error("could not start the recorder's writer thread")]
    Spawn(#[source] Arc<std::io::Error>),
}

/// How the recorder buffers.
#[derive(Clone, Debug)]
pub struct RecorderConfig {
    /// Events per buffer handed to the writer thread.
    pub buffer_events: usize,
    /// Full buffers that may wait for the writer before the callback has to wait.
    pub queue_buffers: usize,
    /// How long a partly filled buffer may wait before the writer takes it and flushes
    /// the sinks, which bounds what a SIGKILL loses.
    pub flush_interval: Duration,
    /// Which events to keep; the others get no `seq`.
    pub filter: Filter,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            buffer_events: 4096,
            queue_buffers: 8,
            flush_interval: Duration::from_secs(1),
            filter: Filter::default(),
        }
    }
}

/// Totals of a recording, reported by [`Recorder::finish`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecorderSummary {
    /// Events recorded (kept by the filter); their `seq` ran from 0 to `events - 1`.
    pub events: u64,
    /// Events the filter dropped.
    pub filtered_out: u64,
    /// Times a callback waited because the writer was behind.
    pub waits: u64,
    /// Events that arrived after `finish` and were not recorded.
    pub after_finish: u64,
}

/// Lanes events are spread over by their `cpu`: vCPUs with different indexes modulo
/// this number never share a lock.
const LANES: usize = 16;

/// The path from the emulator's callbacks to the sinks: see the module documentation.
///
/// ```
/// use std::sync::Arc;
/// use mmio_core::{Access, DeviceId, DeviceTable, EventSink, MmioEvent, Recorder, RecorderConfig, SinkError, Space};
///
/// struct Count(Arc<std::sync::atomic::AtomicU64>);
/// impl EventSink for Count {
///     fn target(&self) -> String { "count".into() }
///     fn write(&mut self, events: &[MmioEvent], _: &DeviceTable) -> Result<(), SinkError> {
///         self.0.fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
///         Ok(())
///     }
///     fn finish(&mut self, _: &DeviceTable) -> Result<(), SinkError> { Ok(()) }
/// }
///
/// let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
/// let recorder = Recorder::start(
///     RecorderConfig::default(),
///     Arc::new(DeviceTable::new()),
///     vec![Box::new(Count(counted.clone()))],
/// )?;
/// let event = MmioEvent {
///     seq: 0, cpu: 0, access: Access::Write, space: Space::Memory, guest_pc: 0x52,
///     phys_addr: Some(0x4000_c000),
///     virt_addr: 0x4000_c000, offset: 0, size: 4, value: 0x48, device: DeviceId::UNKNOWN,
///     instr_count: None,
/// };
/// assert!(recorder.record(event));
/// assert_eq!(recorder.finish()?.events, 1);
/// assert_eq!(counted.load(std::sync::atomic::Ordering::Relaxed), 1);
/// # Ok::<(), mmio_core::RecorderError>(())
/// ```
pub struct Recorder {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<Result<(), RecorderError>>>>,
    outcome: Mutex<Option<Result<RecorderSummary, RecorderError>>>,
}

struct Shared {
    lanes: [Lane; LANES],
    /// The next `seq`; taken under the lane's lock, so a lane's buffer is in `seq`
    /// order and every number taken is in a lane, in flight or at the writer.
    next_seq: AtomicU64,
    /// Buffers on their way from a lane to the queue, outside any lock.
    in_flight: AtomicU64,
    /// Emptied buffers for the lanes to continue with.
    spares: Mutex<Vec<Vec<MmioEvent>>>,
    queue: SyncSender<Message>,
    finished: AtomicBool,
    devices: Arc<DeviceTable>,
    filter: Filter,
    buffer_events: usize,
    waits: AtomicU64,
    filtered_out: AtomicU64,
    after_finish: AtomicU64,
    /// Events every sink has been handed (or that a failed sink skipped).
    delivered: AtomicU64,
}

/// One lane's buffer, on its own cache lines so that two vCPUs' locks do not share
/// one.
#[repr(align(128))]
#[derive(Default)]
struct Lane {
    buffer: Mutex<Vec<MmioEvent>>,
}

enum Message {
    Events(Vec<MmioEvent>),
    /// Every lane is closed and every buffer sent: write the rest and finish.
    Finish,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic on another thread must not stop the recording of what is left.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Recorder {
    /// Starts the writer thread feeding `sinks`.
    pub fn start(
        config: RecorderConfig,
        devices: Arc<DeviceTable>,
        sinks: Vec<Box<dyn EventSink>>,
    ) -> Result<Recorder, RecorderError> {
        let buffer_events = config.buffer_events.max(1);
        let (queue, queue_rx) = mpsc::sync_channel(config.queue_buffers.max(1));
        let shared = Arc::new(Shared {
            lanes: Default::default(),
            next_seq: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            spares: Mutex::new(Vec::with_capacity(config.queue_buffers.max(1) + 2 * LANES)),
            queue,
            finished: AtomicBool::new(false),
            devices,
            filter: config.filter,
            buffer_events,
            waits: AtomicU64::new(0),
            filtered_out: AtomicU64::new(0),
            after_finish: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        });
        let writer = Writer {
            shared: shared.clone(),
            sinks: sinks.into_iter().map(SinkState::new).collect(),
            queue: queue_rx,
            flush_interval: config.flush_interval,
            pending: BinaryHeap::new(),
            next_out: 0,
            out: Vec::with_capacity(buffer_events),
        };
        let handle = std::thread::Builder::new()
            .name("mmio-trace-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| RecorderError::Spawn(Arc::new(e)))?;
        Ok(Recorder {
            shared,
            writer: Mutex::new(Some(handle)),
            outcome: Mutex::new(None),
        })
    }

    /// The device table events' `device` ids refer to.
    pub fn devices(&self) -> &Arc<DeviceTable> {
        &self.shared.devices
    }

    /// Records one event (its `seq` is assigned here). Returns whether it was kept.
    /// Safe to call from any number of threads at once; events with different `cpu`
    /// values take different locks.
    pub fn record(&self, mut event: MmioEvent) -> bool {
        let shared = &*self.shared;
        if !shared.filter.is_empty() {
            let kept = if shared.filter.needs_device() {
                shared
                    .devices
                    .with(event.device, |device| shared.filter.matches(&event, device))
            } else {
                shared.filter.matches(&event, None)
            };
            if !kept {
                shared.filtered_out.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        let lane = &shared.lanes[event.cpu as usize % LANES];
        let mut buffer = lock(&lane.buffer);
        // Read under the lane's lock: `finish` closes each lane under it.
        if shared.finished.load(Ordering::Relaxed) {
            shared.after_finish.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if buffer.capacity() == 0 {
            // This lane's first event: its buffer is made once.
            buffer.reserve_exact(shared.buffer_events);
        }
        event.seq = shared.next_seq.fetch_add(1, Ordering::Relaxed);
        buffer.push(event);
        if buffer.len() >= shared.buffer_events {
            let full = shared.swap_out(&mut buffer);
            drop(buffer);
            shared.send(full);
        }
        true
    }

    /// Flushes every event to the sinks, finishes them and stops the writer thread.
    /// Later calls return the same result; events recorded afterwards are counted in
    /// [`RecorderSummary::after_finish`] and dropped.
    pub fn finish(&self) -> Result<RecorderSummary, RecorderError> {
        let mut outcome = lock(&self.outcome);
        if let Some(done) = outcome.as_ref() {
            return done.clone().map(|summary| RecorderSummary {
                after_finish: self.shared.after_finish.load(Ordering::Relaxed),
                ..summary
            });
        }
        let shared = &*self.shared;
        for lane in &shared.lanes {
            let mut buffer = lock(&lane.buffer);
            shared.finished.store(true, Ordering::Relaxed);
            if !buffer.is_empty() {
                let rest = std::mem::take(&mut *buffer);
                shared.in_flight.fetch_add(1, Ordering::SeqCst);
                drop(buffer);
                shared.send(rest);
            }
        }
        // A callback may have swapped out a full buffer just before its lane closed:
        // it must reach the writer before `Finish` does.
        while shared.in_flight.load(Ordering::SeqCst) > 0 {
            std::thread::yield_now();
        }
        let events = shared.next_seq.load(Ordering::SeqCst);
        let mut writer = lock(&self.writer);
        if writer.is_some() {
            // The writer only stops on `Finish`, so it is there to receive it.
            let _ = shared.queue.send(Message::Finish);
        }
        let written = match writer.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(RecorderError::WriterPanicked),
            None => Ok(()),
        };
        let result = written.map(|()| RecorderSummary {
            events,
            filtered_out: shared.filtered_out.load(Ordering::Relaxed),
            waits: shared.waits.load(Ordering::Relaxed),
            after_finish: shared.after_finish.load(Ordering::Relaxed),
        });
        *outcome = Some(result.clone());
        result
    }

    /// Hands every partly filled buffer to the writer and waits until the sinks have
    /// been given every event recorded so far (for in-process consumers such as the
    /// PANDA plugin's C API). Not for the emulator's hot path.
    pub fn flush(&self) {
        let shared = &*self.shared;
        let target = shared.next_seq.load(Ordering::SeqCst);
        for lane in &shared.lanes {
            let mut buffer = lock(&lane.buffer);
            if shared.finished.load(Ordering::Relaxed) {
                return;
            }
            if !buffer.is_empty() {
                let partial = shared.swap_out(&mut buffer);
                drop(buffer);
                shared.send(partial);
            }
        }
        while shared.delivered.load(Ordering::Acquire) < target {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Events recorded so far.
    pub fn events_recorded(&self) -> u64 {
        self.shared.next_seq.load(Ordering::Relaxed)
    }

    /// Times a callback has waited so far because the writer was behind (the total
    /// is [`RecorderSummary::waits`]).
    pub fn waits(&self) -> u64 {
        self.shared.waits.load(Ordering::Relaxed)
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Err(error) = self.finish() {
            tracing::error!("{error}");
        }
    }
}

impl Shared {
    /// Takes a lane's events, leaving it a recycled buffer (a new one only while the
    /// writer has returned none yet), and counts them as in flight until [`send`].
    fn swap_out(&self, buffer: &mut Vec<MmioEvent>) -> Vec<MmioEvent> {
        let next = lock(&self.spares)
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.buffer_events));
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        std::mem::replace(buffer, next)
    }

    /// Sends a buffer taken by [`swap_out`] to the writer, waiting if its queue is full.
    fn send(&self, events: Vec<MmioEvent>) {
        match self.queue.try_send(Message::Events(events)) {
            Ok(()) => {}
            Err(TrySendError::Full(message)) => {
                self.waits.fetch_add(1, Ordering::Relaxed);
                // The writer stops only on `Finish`, sent after every buffer in flight.
                let _ = self.queue.send(message);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

struct SinkState {
    sink: Box<dyn EventSink>,
    events_written: u64,
    failed: bool,
}

impl SinkState {
    fn new(sink: Box<dyn EventSink>) -> SinkState {
        SinkState {
            sink,
            events_written: 0,
            failed: false,
        }
    }

    /// Runs `op` unless the sink already failed; reports its first failure once.
    fn attempt(
        &mut self,
        first_error: &mut Option<RecorderError>,
        op: impl FnOnce(&mut dyn EventSink) -> Result<(), SinkError>,
    ) -> bool {
        if self.failed {
            return false;
        }
        match op(self.sink.as_mut()) {
            Ok(()) => true,
            Err(error) => {
                self.failed = true;
                let error = RecorderError::Sink {
                    target: self.sink.target(),
                    events_written: self.events_written,
                    source: Arc::new(error),
                };
                tracing::error!(
                    "{}; the emulator goes on, further events for it are dropped",
                    crate::ErrorChain(&error)
                );
                first_error.get_or_insert(error);
                false
            }
        }
    }
}

/// A received buffer not yet written, ordered by the `seq` of its next event.
struct Pending {
    events: Vec<MmioEvent>,
    next: usize,
}

impl Pending {
    fn next_seq(&self) -> u64 {
        self.events[self.next].seq
    }
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.next_seq() == other.next_seq()
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.next_seq().cmp(&other.next_seq())
    }
}

struct Writer {
    shared: Arc<Shared>,
    sinks: Vec<SinkState>,
    queue: Receiver<Message>,
    flush_interval: Duration,
    /// Buffers received, smallest next `seq` first.
    pending: BinaryHeap<Reverse<Pending>>,
    /// The `seq` the sinks get next.
    next_out: u64,
    /// The batch being gathered for the sinks, in `seq` order.
    out: Vec<MmioEvent>,
}

impl Writer {
    fn run(mut self) -> Result<(), RecorderError> {
        let mut first_error = None;
        loop {
            match self.queue.recv_timeout(self.flush_interval) {
                Ok(Message::Events(events)) => {
                    self.receive(events);
                    self.write_ready(&mut first_error);
                    if !self.pending.is_empty() {
                        // The next `seq` is still in a lane: fetch the lanes' events
                        // rather than let the others' pile up.
                        self.take_lanes();
                        self.write_ready(&mut first_error);
                    }
                }
                Ok(Message::Finish) => break,
                Err(RecvTimeoutError::Timeout) => {
                    // The guest has been quiet: write what the lanes hold and flush,
                    // so a killed emulator loses at most that much.
                    self.take_lanes();
                    self.write_ready(&mut first_error);
                    for sink in &mut self.sinks {
                        sink.attempt(&mut first_error, |s| s.flush());
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Whatever the queue still holds came before `Finish`.
        while let Ok(Message::Events(events)) = self.queue.try_recv() {
            self.receive(events);
        }
        self.write_ready(&mut first_error);
        let devices = self.shared.devices.clone();
        for sink in &mut self.sinks {
            sink.attempt(&mut first_error, |s| s.finish(&devices));
        }
        first_error.map_or(Ok(()), Err)
    }

    fn receive(&mut self, events: Vec<MmioEvent>) {
        if events.is_empty() {
            self.recycle(events);
        } else {
            self.pending.push(Reverse(Pending { events, next: 0 }));
        }
    }

    /// Takes the partly filled buffers of the lanes, leaving them recycled ones (made
    /// here, on the writer's thread, if none is free). Never waits for a lane whose
    /// callback holds its lock.
    fn take_lanes(&mut self) {
        for lane in &self.shared.lanes {
            let Ok(mut buffer) = lane.buffer.try_lock() else {
                continue;
            };
            if buffer.is_empty() {
                continue;
            }
            let next = lock(&self.shared.spares)
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(self.shared.buffer_events));
            let events = std::mem::replace(&mut *buffer, next);
            drop(buffer);
            self.pending.push(Reverse(Pending { events, next: 0 }));
        }
    }

    /// Writes the events that continue the `seq` order without a gap.
    fn write_ready(&mut self, first_error: &mut Option<RecorderError>) {
        while let Some(Reverse(mut top)) = self.pending.pop() {
            if top.next_seq() != self.next_out {
                self.pending.push(Reverse(top));
                break;
            }
            // Take the run of consecutive numbers this buffer holds.
            while top.next < top.events.len() && top.events[top.next].seq == self.next_out {
                self.out.push(top.events[top.next]);
                top.next += 1;
                self.next_out += 1;
                if self.out.len() >= self.shared.buffer_events {
                    self.write_out(first_error);
                }
            }
            if top.next < top.events.len() {
                self.pending.push(Reverse(top));
            } else {
                self.recycle(top.events);
            }
        }
        self.write_out(first_error);
    }

    fn write_out(&mut self, first_error: &mut Option<RecorderError>) {
        if self.out.is_empty() {
            return;
        }
        let devices = &self.shared.devices;
        let batch = &self.out;
        for sink in &mut self.sinks {
            if sink.attempt(first_error, |s| s.write(batch, devices)) {
                sink.events_written += batch.len() as u64;
            }
        }
        self.shared
            .delivered
            .fetch_add(batch.len() as u64, Ordering::Release);
        self.out.clear();
    }

    fn recycle(&self, mut events: Vec<MmioEvent>) {
        events.clear();
        let mut spares = lock(&self.shared.spares);
        if spares.len() < spares.capacity() {
            spares.push(events);
        }
    }
}
