//! From the emulator's callback to the sinks.
//!
//! The callback side ([`Recorder::record`]) assigns the sequence number and appends the
//! event to a buffer under an uncontended lock: no allocation (buffers are recycled), no
//! formatting, no system call. Full buffers travel over a bounded queue to one writer
//! thread that feeds the sinks, so memory is bounded by
//! `(queue_buffers + 2) * buffer_events` events however long the run. When the writer
//! falls behind, the callback waits instead of dropping events, and
//! [`RecorderSummary::waits`] counts how often it did.
//!
//! One buffer shared by all vCPUs, rather than one per vCPU, keeps the stored order equal
//! to `seq` order; I/O accesses are rare enough next to other memory accesses that the
//! lock is almost never contended.

use std::sync::atomic::{AtomicU64, Ordering};
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

/// An error from a sink, whatever its own error type.
#[derive(Debug, Error)]
#[error(transparent)]
pub struct SinkError(Box<dyn std::error::Error + Send + Sync>);

impl SinkError {
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> SinkError {
        SinkError(Box::new(error))
    }
}

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum RecorderError {
    #[error("writing {target} failed after {events_written} events: {message}")]
    Sink {
        target: String,
        events_written: u64,
        message: String,
    },
    #[error("the recorder's writer thread panicked")]
    WriterPanicked,
    #[error("could not start the recorder's writer thread: {0}")]
    Spawn(String),
}

#[derive(Clone, Debug)]
pub struct RecorderConfig {
    /// Events per buffer handed to the writer thread.
    pub buffer_events: usize,
    /// Full buffers that may wait for the writer before the callback has to wait.
    pub queue_buffers: usize,
    /// How long a partly filled buffer may wait before the writer takes it and flushes
    /// the sinks, which bounds what a SIGKILL loses.
    pub flush_interval: Duration,
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

pub struct Recorder {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<Result<(), RecorderError>>>>,
    outcome: Mutex<Option<Result<RecorderSummary, RecorderError>>>,
}

struct Shared {
    producer: Mutex<Producer>,
    devices: Arc<DeviceTable>,
    filter: Filter,
    buffer_events: usize,
    waits: AtomicU64,
    filtered_out: AtomicU64,
    after_finish: AtomicU64,
    /// Events every sink has been handed (or that a failed sink skipped).
    delivered: AtomicU64,
}

struct Producer {
    buffer: Vec<MmioEvent>,
    next_seq: u64,
    /// `None` once finished.
    queue: Option<SyncSender<Vec<MmioEvent>>>,
    spare: Receiver<Vec<MmioEvent>>,
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
        let (queue_tx, queue_rx) = mpsc::sync_channel(config.queue_buffers.max(1));
        let (spare_tx, spare_rx) = mpsc::sync_channel(config.queue_buffers.max(1) + 1);
        let shared = Arc::new(Shared {
            producer: Mutex::new(Producer {
                buffer: Vec::with_capacity(buffer_events),
                next_seq: 0,
                queue: Some(queue_tx),
                spare: spare_rx,
            }),
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
            spare: spare_tx,
            flush_interval: config.flush_interval,
        };
        let handle = std::thread::Builder::new()
            .name("mmio-trace-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| RecorderError::Spawn(e.to_string()))?;
        Ok(Recorder {
            shared,
            writer: Mutex::new(Some(handle)),
            outcome: Mutex::new(None),
        })
    }

    pub fn devices(&self) -> &Arc<DeviceTable> {
        &self.shared.devices
    }

    /// Records one event (its `seq` is assigned here). Returns whether it was kept.
    /// Safe to call from any number of threads at once.
    pub fn record(&self, mut event: MmioEvent) -> bool {
        let shared = &*self.shared;
        if !shared.filter.is_empty() {
            let device = if shared.filter.needs_device() {
                shared.devices.get(event.device)
            } else {
                None
            };
            if !shared.filter.matches(&event, device.as_ref()) {
                shared.filtered_out.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        let mut producer = lock(&shared.producer);
        if producer.queue.is_none() {
            shared.after_finish.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        event.seq = producer.next_seq;
        producer.next_seq += 1;
        producer.buffer.push(event);
        if producer.buffer.len() >= shared.buffer_events {
            producer.hand_over(shared);
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
        let events = {
            let mut producer = lock(&self.shared.producer);
            producer.hand_over(&self.shared);
            producer.queue = None;
            producer.next_seq
        };
        let written = match lock(&self.writer).take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(RecorderError::WriterPanicked),
            None => Ok(()),
        };
        let result = written.map(|()| RecorderSummary {
            events,
            filtered_out: self.shared.filtered_out.load(Ordering::Relaxed),
            waits: self.shared.waits.load(Ordering::Relaxed),
            after_finish: self.shared.after_finish.load(Ordering::Relaxed),
        });
        *outcome = Some(result.clone());
        result
    }

    /// Hands the partly filled buffer to the writer and waits until the sinks have been
    /// given every event recorded so far (for in-process consumers such as the PANDA
    /// plugin's C API). Not for the emulator's hot path.
    pub fn flush(&self) {
        let target = {
            let mut producer = lock(&self.shared.producer);
            producer.hand_over(&self.shared);
            if producer.queue.is_none() {
                return;
            }
            producer.next_seq
        };
        while self.shared.delivered.load(Ordering::Acquire) < target {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Events recorded so far.
    pub fn events_recorded(&self) -> u64 {
        lock(&self.shared.producer).next_seq
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Err(error) = self.finish() {
            tracing::error!("{error}");
        }
    }
}

impl Producer {
    /// Sends the current buffer to the writer (waiting if its queue is full) and
    /// continues with a recycled one.
    fn hand_over(&mut self, shared: &Shared) {
        if self.buffer.is_empty() {
            return;
        }
        let Some(queue) = self.queue.as_ref() else {
            return;
        };
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(shared.buffer_events));
        let full = std::mem::replace(&mut self.buffer, next);
        match queue.try_send(full) {
            Ok(()) => {}
            Err(TrySendError::Full(full)) => {
                shared.waits.fetch_add(1, Ordering::Relaxed);
                // The writer only stops after `queue` is dropped, so this cannot fail.
                let _ = queue.send(full);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
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
                    message: error.to_string(),
                };
                tracing::error!("{error}; the emulator goes on, further events for it are dropped");
                first_error.get_or_insert(error);
                false
            }
        }
    }
}

struct Writer {
    shared: Arc<Shared>,
    sinks: Vec<SinkState>,
    queue: Receiver<Vec<MmioEvent>>,
    spare: SyncSender<Vec<MmioEvent>>,
    flush_interval: Duration,
}

impl Writer {
    fn run(mut self) -> Result<(), RecorderError> {
        let mut first_error = None;
        loop {
            match self.queue.recv_timeout(self.flush_interval) {
                Ok(batch) => self.write(batch, &mut first_error),
                Err(RecvTimeoutError::Timeout) => self.flush_idle(&mut first_error),
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let devices = self.shared.devices.clone();
        for sink in &mut self.sinks {
            sink.attempt(&mut first_error, |s| s.finish(&devices));
        }
        first_error.map_or(Ok(()), Err)
    }

    fn write(&mut self, mut batch: Vec<MmioEvent>, first_error: &mut Option<RecorderError>) {
        let devices = &self.shared.devices;
        for sink in &mut self.sinks {
            if sink.attempt(first_error, |s| s.write(&batch, devices)) {
                sink.events_written += batch.len() as u64;
            }
        }
        self.shared
            .delivered
            .fetch_add(batch.len() as u64, Ordering::Release);
        batch.clear();
        let _ = self.spare.try_send(batch);
    }

    /// The guest has been quiet for `flush_interval`: take the partly filled buffer
    /// and flush the sinks, so a killed emulator loses at most that much.
    fn flush_idle(&mut self, first_error: &mut Option<RecorderError>) {
        // A callback holding the lock may be waiting for this thread (queue full):
        // never block on it here.
        let pending = match self.shared.producer.try_lock() {
            Ok(mut producer) if !producer.buffer.is_empty() => {
                Some(std::mem::take(&mut producer.buffer))
            }
            _ => None,
        };
        if let Some(batch) = pending {
            self.write(batch, first_error);
        }
        for sink in &mut self.sinks {
            sink.attempt(first_error, |s| s.flush());
        }
    }
}
