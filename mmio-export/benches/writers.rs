//! Throughput of each writer on batches of a synthetic trace (criterion).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mmio_core::{Access, DeviceKind, DeviceTable, MmioEvent};
use mmio_export::{create_writer, TraceInfo};

const EVENTS: usize = 100_000;

fn trace() -> (Arc<DeviceTable>, Vec<MmioEvent>) {
    let devices = Arc::new(DeviceTable::new());
    let ids: Vec<_> = ["pl011", "v7m_systick", "gptm", "ssys"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            devices
                .intern(name, i as u64 * 0x1000, 0x1000, DeviceKind::Device)
                .expect("the table has room")
        })
        .collect();
    let events = (0..EVENTS as u64)
        .map(|n| MmioEvent {
            seq: n,
            cpu: 0,
            access: if n % 4 == 0 {
                Access::Write
            } else {
                Access::Read
            },
            space: mmio_core::Space::Memory,
            guest_pc: 0x800 + n % 300 * 2,
            phys_addr: Some(0x4000_0000 + n % 64 * 4),
            virt_addr: 0x4000_0000 + n % 64 * 4,
            offset: n % 64 * 4,
            size: 4,
            value: n % 251,
            device: ids[(n % 4) as usize],
            instr_count: Some(n * 7),
        })
        .collect();
    (devices, events)
}

fn writers(c: &mut Criterion) {
    let (devices, events) = trace();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("writer");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    for name in ["trace.parquet", "trace.jsonl", "trace.json"] {
        let path = dir.path().join(name);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut writer = create_writer(&path, TraceInfo::default()).expect("writer");
                for batch in events.chunks(4096) {
                    writer.write(batch, &devices).expect("write");
                }
                writer.finish(&devices).expect("finish");
            });
        });
    }
    group.finish();
}

criterion_group!(benches, writers);
criterion_main!(benches);
