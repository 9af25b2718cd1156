//! Per-event cost of the recorder's callback side, with 1 and 2 producer threads (each
//! a vCPU of its own, as QEMU's MTTCG runs them).

use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mmio_core::{
    Access, DeviceId, DeviceTable, EventSink, MmioEvent, Recorder, RecorderConfig, SinkError,
};

struct NullSink;

impl EventSink for NullSink {
    fn target(&self) -> String {
        "null".into()
    }
    fn write(&mut self, _: &[MmioEvent], _: &DeviceTable) -> Result<(), SinkError> {
        Ok(())
    }
    fn finish(&mut self, _: &DeviceTable) -> Result<(), SinkError> {
        Ok(())
    }
}

fn event(cpu: u32, n: u64) -> MmioEvent {
    MmioEvent {
        seq: 0,
        cpu,
        access: Access::Write,
        space: mmio_core::Space::Memory,
        guest_pc: 0x1000 + (n & 0xff),
        phys_addr: Some(0x4000_c000),
        virt_addr: 0x4000_c000,
        offset: 0,
        size: 4,
        value: n,
        device: DeviceId(0),
        instr_count: None,
    }
}

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("recorder_record");
    for threads in [1u64, 2] {
        group.throughput(Throughput::Elements(threads));
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let recorder = Recorder::start(
                    RecorderConfig::default(),
                    Arc::new(DeviceTable::new()),
                    vec![Box::new(NullSink)],
                )
                .expect("recorder starts");
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for cpu in 0..threads as u32 {
                        let recorder = &recorder;
                        scope.spawn(move || {
                            for n in 0..iters {
                                recorder.record(event(cpu, n));
                            }
                        });
                    }
                });
                let elapsed = start.elapsed();
                recorder.finish().expect("null sink never fails");
                elapsed
            });
        });
    }
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
