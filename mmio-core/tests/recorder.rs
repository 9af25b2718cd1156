//! The recorder under several producer threads, slow sinks and failing sinks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mmio_core::{
    Access, DeviceId, DeviceKind, DeviceTable, ErrorChain, EventSink, Filter, MmioEvent, Recorder,
    RecorderConfig, RecorderError, SinkError,
};

#[derive(Default)]
struct Collected {
    events: Vec<MmioEvent>,
    largest_batch: usize,
    finished: usize,
    flushes: usize,
}

struct CollectingSink {
    out: Arc<Mutex<Collected>>,
    delay: Duration,
}

impl EventSink for CollectingSink {
    fn target(&self) -> String {
        "memory".into()
    }
    fn write(&mut self, events: &[MmioEvent], _: &DeviceTable) -> Result<(), SinkError> {
        std::thread::sleep(self.delay);
        let mut out = self.out.lock().unwrap();
        out.largest_batch = out.largest_batch.max(events.len());
        out.events.extend_from_slice(events);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.lock().unwrap().flushes += 1;
        Ok(())
    }
    fn finish(&mut self, _: &DeviceTable) -> Result<(), SinkError> {
        self.out.lock().unwrap().finished += 1;
        Ok(())
    }
}

fn event(cpu: u32, n: u64) -> MmioEvent {
    MmioEvent {
        seq: u64::MAX,
        cpu,
        access: if n.is_multiple_of(2) {
            Access::Read
        } else {
            Access::Write
        },
        space: mmio_core::Space::Memory,
        guest_pc: 0x1000 + n,
        phys_addr: Some(0x4000_c000),
        virt_addr: 0x4000_c000,
        offset: 0,
        size: 4,
        value: n,
        device: DeviceId(0),
        instr_count: None,
    }
}

fn start(config: RecorderConfig, delay: Duration) -> (Recorder, Arc<Mutex<Collected>>) {
    let out = Arc::new(Mutex::new(Collected::default()));
    let sink = CollectingSink {
        out: out.clone(),
        delay,
    };
    let devices = Arc::new(DeviceTable::new());
    devices
        .intern("pl011", 0x4000_c000, 0x1000, DeviceKind::Device)
        .unwrap();
    let recorder = Recorder::start(config, devices, vec![Box::new(sink)]).unwrap();
    (recorder, out)
}

#[test]
fn every_event_arrives_once_in_per_thread_order() {
    const THREADS: u32 = 4;
    const PER_THREAD: u64 = 25_000;
    let config = RecorderConfig {
        buffer_events: 256,
        queue_buffers: 2,
        ..RecorderConfig::default()
    };
    let (recorder, out) = start(config, Duration::ZERO);
    std::thread::scope(|scope| {
        for cpu in 0..THREADS {
            let recorder = &recorder;
            scope.spawn(move || {
                for n in 0..PER_THREAD {
                    assert!(recorder.record(event(cpu, n)));
                }
            });
        }
    });
    let summary = recorder.finish().unwrap();
    assert_eq!(summary.events, u64::from(THREADS) * PER_THREAD);
    let out = out.lock().unwrap();
    assert_eq!(out.events.len() as u64, summary.events);
    assert_eq!(out.finished, 1);
    // Stored order is seq order, from 0 without gaps.
    for (index, event) in out.events.iter().enumerate() {
        assert_eq!(event.seq, index as u64);
    }
    // Each thread's events arrive once and in the order it made them.
    for cpu in 0..THREADS {
        let values: Vec<u64> = out
            .events
            .iter()
            .filter(|e| e.cpu == cpu)
            .map(|e| e.value)
            .collect();
        assert_eq!(values, (0..PER_THREAD).collect::<Vec<_>>());
    }
}

#[test]
fn a_slow_sink_makes_the_callback_wait_without_losing_events() {
    let config = RecorderConfig {
        buffer_events: 10,
        queue_buffers: 1,
        ..RecorderConfig::default()
    };
    let (recorder, out) = start(config, Duration::from_millis(2));
    for n in 0..1_000 {
        recorder.record(event(0, n));
    }
    let summary = recorder.finish().unwrap();
    assert_eq!(summary.events, 1_000);
    assert!(
        summary.waits > 0,
        "the producer must have waited: {summary:?}"
    );
    let out = out.lock().unwrap();
    assert_eq!(out.events.len(), 1_000);
    // Memory stays bounded: batches never exceed the configured buffer.
    assert_eq!(out.largest_batch, 10);
}

#[test]
fn finish_twice_is_harmless_and_later_events_are_counted() {
    let (recorder, out) = start(RecorderConfig::default(), Duration::ZERO);
    for n in 0..5 {
        recorder.record(event(0, n));
    }
    let first = recorder.finish().unwrap();
    assert!(!recorder.record(event(0, 99)));
    let second = recorder.finish().unwrap();
    assert_eq!(first.events, 5);
    assert_eq!(second.events, 5);
    assert_eq!(second.after_finish, 1);
    let out = out.lock().unwrap();
    assert_eq!(out.events.len(), 5);
    assert_eq!(out.finished, 1);
}

#[test]
fn an_idle_guest_gets_its_events_flushed() {
    let config = RecorderConfig {
        flush_interval: Duration::from_millis(20),
        ..RecorderConfig::default()
    };
    let (recorder, out) = start(config, Duration::ZERO);
    recorder.record(event(0, 1));
    // The writer hands the sink the events, then flushes it: wait for both.
    let mut waited = Duration::ZERO;
    while waited < Duration::from_secs(10) {
        let out = out.lock().unwrap();
        if !out.events.is_empty() && out.flushes >= 1 {
            break;
        }
        drop(out);
        std::thread::sleep(Duration::from_millis(10));
        waited += Duration::from_millis(10);
    }
    let out_now = out.lock().unwrap();
    assert_eq!(
        out_now.events.len(),
        1,
        "partial buffer reached the sink before finish"
    );
    assert!(out_now.flushes >= 1);
    drop(out_now);
    recorder.finish().unwrap();
}

#[test]
fn the_filter_runs_before_sequence_numbers() {
    let config = RecorderConfig {
        filter: Filter::parse("access=w").unwrap(),
        ..RecorderConfig::default()
    };
    let (recorder, out) = start(config, Duration::ZERO);
    for n in 0..10 {
        recorder.record(event(0, n));
    }
    let summary = recorder.finish().unwrap();
    assert_eq!(summary.events, 5);
    assert_eq!(summary.filtered_out, 5);
    let out = out.lock().unwrap();
    let kept: Vec<(u64, u64)> = out.events.iter().map(|e| (e.seq, e.value)).collect();
    assert_eq!(kept, [(0, 1), (1, 3), (2, 5), (3, 7), (4, 9)]);
}

struct FailingSink {
    fail_after_batches: usize,
    batches: usize,
}

#[derive(Debug)]
struct DiskFull;

impl std::fmt::Display for DiskFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("No space left on device")
    }
}
impl std::error::Error for DiskFull {}

impl EventSink for FailingSink {
    fn target(&self) -> String {
        "/tmp/full.jsonl".into()
    }
    fn write(&mut self, _: &[MmioEvent], _: &DeviceTable) -> Result<(), SinkError> {
        self.batches += 1;
        if self.batches > self.fail_after_batches {
            return Err(SinkError::new(DiskFull));
        }
        Ok(())
    }
    fn finish(&mut self, _: &DeviceTable) -> Result<(), SinkError> {
        Ok(())
    }
}

#[test]
fn a_failing_sink_is_reported_once_and_the_others_go_on() {
    let out = Arc::new(Mutex::new(Collected::default()));
    let sinks: Vec<Box<dyn EventSink>> = vec![
        Box::new(FailingSink {
            fail_after_batches: 2,
            batches: 0,
        }),
        Box::new(CollectingSink {
            out: out.clone(),
            delay: Duration::ZERO,
        }),
    ];
    let config = RecorderConfig {
        buffer_events: 100,
        // No idle flush: a stalled producer must not split the batches counted.
        flush_interval: Duration::from_secs(3600),
        ..RecorderConfig::default()
    };
    let recorder = Recorder::start(config, Arc::new(DeviceTable::new()), sinks).unwrap();
    for n in 0..1_000 {
        assert!(recorder.record(event(0, n)));
    }
    let error = recorder.finish().unwrap_err();
    let RecorderError::Sink {
        target,
        events_written,
        ..
    } = &error
    else {
        panic!("a sink error: {error:?}");
    };
    assert_eq!((target.as_str(), *events_written), ("/tmp/full.jsonl", 200));
    // The sink's own error is kept as the source, not copied into the message.
    assert_eq!(
        error.to_string(),
        "writing /tmp/full.jsonl failed after 200 events"
    );
    assert_eq!(
        ErrorChain(&error).to_string(),
        "writing /tmp/full.jsonl failed after 200 events: No space left on device"
    );
    assert_eq!(
        ErrorChain(&recorder.finish().unwrap_err()).to_string(),
        ErrorChain(&error).to_string()
    );
    assert_eq!(out.lock().unwrap().events.len(), 1_000);
}

#[test]
fn flush_delivers_a_partial_buffer_before_returning() {
    let (recorder, out) = start(RecorderConfig::default(), Duration::from_millis(5));
    for n in 0..3 {
        recorder.record(event(0, n));
    }
    recorder.flush();
    assert_eq!(out.lock().unwrap().events.len(), 3);
    recorder.record(event(0, 3));
    recorder.flush();
    assert_eq!(out.lock().unwrap().events.len(), 4);
    recorder.finish().unwrap();
    // After finish, flush returns at once.
    recorder.flush();
}
