//! The PANDA plugin's callback path, driven in-process the way `mmio_after_read` /
//! `mmio_before_write` drive it (without PANDA): device resolution in the listener's
//! map, the RAM/ROM decision, recording into a Parquet trace, and the C event handed
//! to an `on_mmio_event` subscriber.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mmio_core::Access;
use mmio_export::TraceInfo;
use mmio_frontend::region::{RegionFlags, Section};
use panda_mmio_trace::{mmio_event_t, ppp_add_cb_on_mmio_event, PandaAccess, PandaTracer};

/// A Cortex-A board's worth of regions: RAM, flash, and a row of 4 KiB devices.
fn tracer(out: &std::path::Path) -> PandaTracer {
    let args = panda_mmio_trace::args::parse(&[("out_log", out.to_str().expect("utf-8 path"))])
        .expect("arguments parse");
    let tracer = PandaTracer::start(&args, TraceInfo::default()).expect("tracer starts");
    let space = tracer.tracer().space();
    let region = |name: &str, first: u64, size: u64, ram: bool| {
        let flags = RegionFlags {
            ram,
            ..RegionFlags::default()
        };
        Section::from_listener(Some(name.to_string()), first, size, 0, flags)
            .expect("regions are not empty")
    };
    space.add(&region("vexpress.highmem", 0x6000_0000, 0x1000_0000, true));
    space.add(&region("vexpress.flash0", 0x4000_0000, 0x400_0000, true));
    for (index, name) in ["arm-sysctl", "sp810", "pl041", "pl181", "pl050", "pl050"]
        .iter()
        .chain(&[
            "pl011", "pl011", "pl011", "pl011", "sp805", "sp804", "sp804",
        ])
        .enumerate()
    {
        space.add(&region(
            name,
            0x1000_0000 + 0x1000 * index as u64,
            0x1000,
            false,
        ));
    }
    tracer
}

fn access(phys: u64, n: u64) -> PandaAccess {
    PandaAccess {
        cpu: 0,
        access: Access::Write,
        pc: 0xc000_1000 + (n & 0xff) * 4,
        vaddr: 0xf000_0000 | (phys & 0xfff),
        region_offset: phys & 0xfff,
        phys_addr: Some(phys),
        size: 4,
        value: n,
        rr_instr_count: Some(n),
    }
}

/// The plugin's glue, linked in with the library, refers to these PANDA functions; the
/// benchmark never calls them (the glue is what it stands in for).
mod outside_panda {
    mmio_frontend::emulator_functions_unavailable!(
        "PANDA",
        cpu_get_address_space,
        memory_listener_register,
        memory_listener_unregister,
        panda_current_pc,
        panda_virt_to_phys_external,
        rr_get_guest_instr_count_external,
    );
}

extern "C" fn subscriber(event: *const mmio_event_t) {
    std::hint::black_box(event);
}

fn callback(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tracer = tracer(&dir.path().join("bench.parquet"));
    let mut group = c.benchmark_group("panda_callback");
    group.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    group.bench_function("uart_write_recorded", |b| {
        b.iter(|| {
            n += 1;
            tracer.on_access(&access(0x1000_6000, n))
        })
    });
    group.bench_function("ram_write_skipped", |b| {
        b.iter(|| {
            n += 1;
            tracer.on_access(&access(0x6000_4000, n))
        })
    });
    ppp_add_cb_on_mmio_event(subscriber);
    group.bench_function("uart_write_recorded_with_a_ppp_subscriber", |b| {
        b.iter(|| {
            n += 1;
            tracer.on_access(&access(0x1000_6000, n))
        })
    });
    group.finish();
    tracer.tracer().finish().expect("trace finishes");
}

criterion_group!(benches, callback);
criterion_main!(benches);
