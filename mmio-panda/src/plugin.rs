//! The FFI glue with PANDA: arguments, callbacks, the memory listener. Every decision
//! is made in tested code ([`mmio_frontend`], the crate's other modules).

use std::ffi::{c_char, CStr};
use std::sync::OnceLock;

use mmio_core::Access;
use mmio_export::TraceInfo;
use mmio_frontend::byte_order::ByteOrder;
use mmio_frontend::region::{RegionFlags, Section};
use mmio_frontend::tracer::on_fresh_thread;
use mmio_frontend::ErrorChain;
use panda::prelude::*;
use panda::sys::{
    cpu_get_address_space, memory_listener_register, memory_listener_unregister, MemoryListener,
    MemoryRegionSection,
};

use crate::c_api::TRACER;
use crate::{PandaAccess, PandaTracer};

const PLUGIN_NAME: &CStr = c"mmio_trace";

/// The listener QEMU calls with the sections of the CPU's address space.
struct Listener(std::cell::UnsafeCell<MemoryListener>);
// SAFETY: QEMU calls the listener under its big lock; we only hand out the pointer.
unsafe impl Sync for Listener {}
// SAFETY: as above; the listener is created once and never moved out of the static.
unsafe impl Send for Listener {}
static LISTENER: OnceLock<Listener> = OnceLock::new();

fn raw_args() -> Vec<(String, String)> {
    // SAFETY: PANDA owns the list; we copy it and free it as its API asks.
    unsafe {
        let list = panda::sys::panda_get_args(PLUGIN_NAME.as_ptr());
        if list.is_null() {
            return Vec::new();
        }
        let args = std::slice::from_raw_parts((*list).list, (*list).nargs.max(0) as usize)
            .iter()
            .map(|arg| (text(arg.key), text(arg.value)))
            .collect();
        panda::sys::panda_free_args(list);
        args
    }
}

/// # Safety
/// `text` is NULL or a NUL-terminated string.
unsafe fn text(text: *const c_char) -> String {
    if text.is_null() {
        return String::new();
    }
    // SAFETY: per the function's contract.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

fn word_size() -> u8 {
    std::mem::size_of::<target_ulong>() as u8
}

#[panda::init]
fn init(_: &mut PluginHandle) -> bool {
    mmio_frontend::init_logging();
    let args = match crate::args::parse(&raw_args()) {
        Ok(args) => args,
        Err(error) => {
            tracing::error!("mmio_trace: {}", ErrorChain(&error));
            return false;
        }
    };
    let info = TraceInfo::now("panda", panda::ARCH_NAME, "", word_size());
    let tracer = match PandaTracer::start(&args, info) {
        Ok(tracer) => tracer,
        Err(error) => {
            tracing::error!("mmio_trace: {}", ErrorChain(&error));
            return false;
        }
    };
    if TRACER.set(tracer).is_err() {
        tracing::error!("mmio_trace: loaded twice");
        return false;
    }
    // SAFETY: plain PANDA API call; `finish_at_exit` is a 'static extern "C" fn.
    unsafe {
        panda::sys::panda_enable_precise_pc();
        atexit(finish_at_exit);
    }
    true
}

extern "C" {
    fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

/// PANDA unloads plugins only when its main loop returns; a guest that ends the
/// process another way (semihosting `SYS_EXIT` calls `exit()`) would leave the trace
/// unfinished.
extern "C" fn finish_at_exit() {
    on_fresh_thread(finish);
}

/// Finishes the trace once, from `uninit_plugin` or at exit, whichever comes first.
fn finish() {
    if let Some(tracer) = TRACER.get() {
        tracer.tracer().finish_and_log();
    }
}

#[panda::uninit]
fn uninit(_: &mut PluginHandle) {
    if let Some(listener) = LISTENER.get() {
        // SAFETY: registered in after_machine_init; unregistered once, here.
        unsafe { memory_listener_unregister(listener.0.get()) };
    }
    finish();
}

/// Registering the listener replays the current map; doing it earlier crashes PANDA.
#[panda::after_machine_init]
fn machine_ready(cpu: &mut CPUState) {
    let listener = LISTENER.get_or_init(|| {
        // SAFETY: an all-zero MemoryListener is "no callbacks"; we set the two we use.
        let mut listener: MemoryListener = unsafe { std::mem::zeroed() };
        listener.region_add = Some(region_add);
        listener.region_del = Some(region_del);
        Listener(std::cell::UnsafeCell::new(listener))
    });
    // SAFETY: `cpu` is live; the listener is 'static; the CPU's address space 0 is the
    // one it dispatches on (on Cortex-M "cpu-memory", which holds NVIC and SysTick).
    unsafe {
        let space = cpu_get_address_space(cpu, 0);
        memory_listener_register(listener.0.get(), space);
    }
}

/// # Safety
/// `section` is the live section QEMU passes; its region's `name` is read directly
/// (never through `memory_region_name`, which asserts on unnamed regions).
unsafe fn section_of(section: *mut MemoryRegionSection) -> Option<Section> {
    // SAFETY: per the function's contract.
    let section = unsafe { section.as_ref()? };
    // SAFETY: a section's region outlives the callback.
    let region = unsafe { section.mr.as_ref()? };
    let name = (!region.name.is_null())
        // SAFETY: a non-NULL name is a NUL-terminated string.
        .then(|| {
            unsafe { CStr::from_ptr(region.name) }
                .to_string_lossy()
                .into_owned()
        });
    let flags = RegionFlags {
        ram: region.ram,
        rom_device: region.rom_device,
        readonly: region.readonly,
        priority: i64::from(region.priority),
    };
    // SAFETY: a region's ops, when set, are a static table of its device model.
    let declared = unsafe { region.ops.as_ref() }.map(|ops| ops.endianness);
    let byte_order = declared.map(|endianness| match endianness {
        panda::sys::device_endian_DEVICE_BIG_ENDIAN => ByteOrder::Big,
        panda::sys::device_endian_DEVICE_LITTLE_ENDIAN => ByteOrder::Little,
        _ => ByteOrder::of_target(panda::ARCH_NAME),
    });
    Section::from_listener(
        name,
        section.offset_within_address_space,
        u64::try_from(section.size).unwrap_or(u64::MAX),
        section.offset_within_region,
        flags,
    )
    .map(|section| Section {
        byte_order,
        ..section
    })
}

unsafe extern "C" fn region_add(_: *mut MemoryListener, section: *mut MemoryRegionSection) {
    let Some(tracer) = TRACER.get() else { return };
    let tracer = tracer.tracer();
    tracer.guard(|| {
        // SAFETY: QEMU passes a live section.
        if let Some(section) = unsafe { section_of(section) } {
            tracer.space().add(&section);
        }
    });
}

unsafe extern "C" fn region_del(_: *mut MemoryListener, section: *mut MemoryRegionSection) {
    let Some(tracer) = TRACER.get() else { return };
    let tracer = tracer.tracer();
    tracer.guard(|| {
        // SAFETY: QEMU passes a live section.
        if let Some(section) = unsafe { section_of(section) } {
            tracer.space().remove(&section);
        }
    });
}

fn on_access(
    cpu: &mut CPUState,
    access: Access,
    physaddr: target_ptr_t,
    vaddr: target_ptr_t,
    size: usize,
    value: *mut u64,
) {
    let Some(tracer) = TRACER.get() else { return };
    // SAFETY: PANDA passes a pointer to the value being read or written.
    let value = unsafe { value.as_ref() }.copied().unwrap_or(0);
    let phys_addr = panda::mem::virt_to_phys(cpu, vaddr).map(u64::from);
    // SAFETY: plain PANDA API call, valid in record and replay.
    let instr_count = unsafe { panda::sys::rr_get_guest_instr_count_external() };
    tracer.on_access(&PandaAccess {
        cpu: cpu.cpu_index as u32,
        access,
        pc: u64::from(panda::current_pc(cpu)),
        vaddr: u64::from(vaddr),
        region_offset: u64::from(physaddr),
        phys_addr,
        size: u8::try_from(size).unwrap_or(8),
        value,
        rr_instr_count: Some(instr_count),
    });
}

#[panda::mmio_after_read]
fn after_read(
    cpu: &mut CPUState,
    physaddr: target_ptr_t,
    vaddr: target_ptr_t,
    size: usize,
    value: *mut u64,
) {
    on_access(cpu, Access::Read, physaddr, vaddr, size, value);
}

#[panda::mmio_before_write]
fn before_write(
    cpu: &mut CPUState,
    physaddr: target_ptr_t,
    vaddr: target_ptr_t,
    size: usize,
    value: *mut u64,
) {
    on_access(cpu, Access::Write, physaddr, vaddr, size, value);
}
