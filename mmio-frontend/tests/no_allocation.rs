//! Architecture invariant: the emulator callback allocates nothing. A counting global
//! allocator fails the test if, once warmed up, the access decision (stock QEMU's and
//! PANDA's) or `Recorder::record` allocates on the calling thread, including across the
//! writer's idle flushes, which take the vCPU's partly filled buffer, and across waits
//! for a writer that fell behind.
//!
//! The warm-up runs against a slow sink, so the callback fills the queue and waits:
//! every buffer the pipeline can hold then exists, and the channel's wait has been set
//! up once. (A warm-up against a fast sink left that to chance: a writer descheduled
//! later made the callback allocate one more buffer, which CI once caught.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mmio_core::{Access, DeviceTable, EventSink, MmioEvent, Recorder, RecorderConfig, SinkError};
use mmio_frontend::access::{Decider, GuestAccess, Landing, RegionName};
use mmio_frontend::address_space::AddressSpace;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations_on_this_thread() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Discards events, slowly while `slow` is set (the warm-up).
struct Discard {
    slow: Arc<AtomicBool>,
}

impl EventSink for Discard {
    fn target(&self) -> String {
        "nothing".into()
    }
    fn write(&mut self, _: &[MmioEvent], _: &DeviceTable) -> Result<(), SinkError> {
        if self.slow.load(Ordering::Relaxed) {
            // Far slower than the callback fills a 64-event buffer: the queue fills.
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }
    fn finish(&mut self, _: &DeviceTable) -> Result<(), SinkError> {
        Ok(())
    }
}

fn access(vaddr: u64, landing: Landing<'_>) -> GuestAccess<'_> {
    GuestAccess {
        cpu: 0,
        access: Access::Write,
        pc: 0x52,
        vaddr,
        size: 4,
        value: 0x301,
        byte_order: mmio_frontend::byte_order::ByteOrder::Little,
        instr_count: Some(2),
        landing,
    }
}

#[test]
fn the_callback_path_allocates_nothing_in_steady_state() {
    let devices = Arc::new(DeviceTable::new());
    let space =
        AddressSpace::from_mtree(include_str!("fixtures/lm3s6965evb.mtree"), devices.clone())
            .unwrap();
    let decider = Decider::new(space);
    let config = RecorderConfig {
        buffer_events: 64,
        queue_buffers: 2,
        flush_interval: Duration::from_millis(2),
        ..RecorderConfig::default()
    };
    let slow = Arc::new(AtomicBool::new(true));
    let sink = Discard { slow: slow.clone() };
    let recorder = Recorder::start(config, devices, vec![Box::new(sink)]).unwrap();
    let accesses = [
        // Stock QEMU: named, anonymous (named from the map), not looked up, RAM.
        access(
            0x4000_c030,
            Landing::Io {
                phys_addr: 0x4000_c030,
                name: RegionName::Known(Some("pl011")),
            },
        ),
        access(
            0xe000_e018,
            Landing::Io {
                phys_addr: 0xe000_e018,
                name: RegionName::Known(Some("anon7f3a2c00")),
            },
        ),
        access(0xe000_ed94, Landing::NotLookedUp),
        access(0x2000_0000, Landing::Memory),
        // PANDA: a device, a RAM write, a hole.
        access(
            0x4000_c000,
            Landing::Unclassified {
                phys_addr: Some(0x4000_c000),
                region_offset: 0,
            },
        ),
        access(
            0x2000_0004,
            Landing::Unclassified {
                phys_addr: Some(0x2000_0004),
                region_offset: 4,
            },
        ),
        access(
            0x4000_1000,
            Landing::Unclassified {
                phys_addr: Some(0x4000_1000),
                region_offset: 0x4000_1000,
            },
        ),
    ];
    let run = |rounds: usize| {
        let mut recorded = 0;
        for round in 0..rounds {
            for access in &accesses {
                if let Some(event) = decider.decide(access) {
                    recorded += u64::from(recorder.record(event));
                }
            }
            if round % 500 == 0 {
                // Long enough for the writer's idle flush to take the lane's buffer.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        recorded
    };
    // Warm up: the queue filled and the callback waited, buffers made, returned and
    // recycled; the idle flush has run.
    run(5_000);
    assert!(recorder.waits() > 0, "the warm-up never filled the queue");
    slow.store(false, Ordering::Relaxed);
    let before = allocations_on_this_thread();
    let recorded = run(20_000);
    let allocated = allocations_on_this_thread() - before;
    assert_eq!(
        recorded,
        20_000 * 5,
        "five of the seven accesses are device accesses"
    );
    assert_eq!(allocated, 0, "allocations on the callback's thread");
    recorder.finish().unwrap();
}
