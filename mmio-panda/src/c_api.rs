//! The C API of `include/mmio_trace.h`: `get_mmio_events` / `free_mmio_events`, the
//! `on_mmio_event` PPP callback, and the event layout they share.

use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock};

use mmio_core::{DeviceId, DeviceTable, EventSink, MmioEvent, SinkError};
use panda::prelude::target_ptr_t;

use crate::PandaTracer;

/// The one recording of the loaded plugin, for the exported functions.
pub(crate) static TRACER: OnceLock<PandaTracer> = OnceLock::new();

/// `mmio_event_t` of `include/mmio_trace.h`; the upstream plugin's field order.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mmio_event_t {
    pub access_type: c_char,
    pub pc: u64,
    pub phys_addr: target_ptr_t,
    pub virt_addr: target_ptr_t,
    pub size: usize,
    pub value: u64,
    pub dev_name: *const c_char,
}

/// The upstream plugin's name for "no device", as a C string.
static NO_DEVICE: LazyLock<CString> =
    LazyLock::new(|| CString::new(mmio_export::NO_DEVICE).unwrap_or_default());

/// C strings of device names, indexed by `DeviceId`. Entries are never removed, so a
/// `dev_name` handed out stays valid until the plugin unloads.
static NAMES: RwLock<Vec<CString>> = RwLock::new(Vec::new());

fn device_name(id: DeviceId, devices: &DeviceTable) -> *const c_char {
    if id.is_absent() {
        return NO_DEVICE.as_ptr();
    }
    if let Some(name) = NAMES
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(id.0 as usize)
    {
        return name.as_ptr();
    }
    let mut names = NAMES.write().unwrap_or_else(|p| p.into_inner());
    while names.len() <= id.0 as usize {
        let next = DeviceId(names.len() as u32);
        let name = devices
            .get(next)
            .map(|d| d.name.to_string())
            .unwrap_or_default();
        // A name with a NUL byte cannot be a C string; cut it there.
        let name = name.split('\0').next().unwrap_or_default().to_string();
        names.push(CString::new(name).unwrap_or_default());
    }
    names[id.0 as usize].as_ptr()
}

impl mmio_event_t {
    /// The C view of `event`.
    pub fn new(event: &MmioEvent, devices: &DeviceTable) -> mmio_event_t {
        mmio_event_t {
            access_type: event.access.as_str().as_bytes()[0] as c_char,
            pc: event.guest_pc,
            // The guest's addresses fit its word size.
            phys_addr: event.phys_addr.unwrap_or(event.virt_addr) as target_ptr_t,
            virt_addr: event.virt_addr as target_ptr_t,
            size: usize::from(event.size),
            value: event.value,
            dev_name: device_name(event.device, devices),
        }
    }
}

/// `on_mmio_event` subscribers, as PANDA's `PPP_REG_CB` adds them: a function, with
/// the context it is called with when added through the `_with_context` variant.
#[derive(Clone, Copy)]
enum Subscriber {
    Plain(OnMmioEvent),
    WithContext(OnMmioEventWithContext, usize),
}

impl Subscriber {
    /// What removal compares: the function's address as the C side passed it (and the
    /// context), as PANDA's own PPP does.
    fn key(&self) -> (bool, usize, usize) {
        match *self {
            Subscriber::Plain(callback) => (false, callback as usize, 0),
            Subscriber::WithContext(callback, context) => (true, callback as usize, context),
        }
    }
}

/// `PPP_CB_TYPEDEF(void, on_mmio_event, const mmio_event_t *event)`.
pub type OnMmioEvent = extern "C" fn(*const mmio_event_t);
/// The same, with the context pointer given at registration.
pub type OnMmioEventWithContext = extern "C" fn(*mut c_void, *const mmio_event_t);

static SUBSCRIBERS: RwLock<Vec<Subscriber>> = RwLock::new(Vec::new());
/// `SUBSCRIBERS.len()`, read without a lock on every event.
static SUBSCRIBED: AtomicUsize = AtomicUsize::new(0);

fn subscribe(subscriber: Subscriber) {
    let mut subscribers = SUBSCRIBERS.write().unwrap_or_else(|p| p.into_inner());
    subscribers.push(subscriber);
    SUBSCRIBED.store(subscribers.len(), Ordering::SeqCst);
}

fn unsubscribe(subscriber: Subscriber) -> bool {
    let mut subscribers = SUBSCRIBERS.write().unwrap_or_else(|p| p.into_inner());
    let before = subscribers.len();
    subscribers.retain(|s| s.key() != subscriber.key());
    SUBSCRIBED.store(subscribers.len(), Ordering::SeqCst);
    subscribers.len() != before
}

/// Hands `event` to every `on_mmio_event` subscriber; builds nothing when there is
/// none.
pub fn notify_subscribers(event: &MmioEvent, devices: &DeviceTable) {
    if SUBSCRIBED.load(Ordering::Relaxed) == 0 {
        return;
    }
    let c_event = mmio_event_t::new(event, devices);
    for subscriber in SUBSCRIBERS.read().unwrap_or_else(|p| p.into_inner()).iter() {
        match *subscriber {
            Subscriber::Plain(callback) => callback(&c_event),
            Subscriber::WithContext(callback, context) => {
                callback(context as *mut c_void, &c_event)
            }
        }
    }
}

/// `PPP_REG_CB("mmio_trace", on_mmio_event, callback)`.
#[no_mangle]
pub extern "C" fn ppp_add_cb_on_mmio_event(callback: OnMmioEvent) {
    subscribe(Subscriber::Plain(callback));
}

/// `PPP_REG_CB_WITH_CONTEXT("mmio_trace", on_mmio_event, callback, context)`.
#[no_mangle]
pub extern "C" fn ppp_add_cb_on_mmio_event_with_context(
    callback: OnMmioEventWithContext,
    context: *mut c_void,
) {
    subscribe(Subscriber::WithContext(callback, context as usize));
}

/// `PPP_REMOVE_CB("mmio_trace", on_mmio_event, callback)`: whether it was there.
#[no_mangle]
pub extern "C" fn ppp_remove_cb_on_mmio_event(callback: OnMmioEvent) -> bool {
    unsubscribe(Subscriber::Plain(callback))
}

/// `PPP_REMOVE_CB_WITH_CONTEXT(...)`: whether it was there.
#[no_mangle]
pub extern "C" fn ppp_remove_cb_on_mmio_event_with_context(
    callback: OnMmioEventWithContext,
    context: *mut c_void,
) -> bool {
    unsubscribe(Subscriber::WithContext(callback, context as usize))
}

/// Every event recorded, kept for `get_mmio_events` (argument `retain`).
#[derive(Default)]
pub struct Retention {
    events: Mutex<Vec<MmioEvent>>,
}

impl Retention {
    /// The sink that fills this copy.
    pub fn sink(self: &Arc<Self>) -> RetentionSink {
        RetentionSink(self.clone())
    }

    /// Events kept.
    pub fn len(&self) -> usize {
        self.events.lock().map_or(0, |e| e.len())
    }

    /// Whether nothing is kept yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The sink filling a [`Retention`].
pub struct RetentionSink(Arc<Retention>);

impl EventSink for RetentionSink {
    fn target(&self) -> String {
        "the in-memory copy for get_mmio_events".into()
    }

    fn write(&mut self, events: &[MmioEvent], _: &DeviceTable) -> Result<(), SinkError> {
        self.0
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(events);
        Ok(())
    }

    fn finish(&mut self, _: &DeviceTable) -> Result<(), SinkError> {
        Ok(())
    }
}

extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn free(pointer: *mut c_void);
}

static TOLD_ABOUT_RETAIN: AtomicBool = AtomicBool::new(false);

/// `get_mmio_events` for a given tracer.
///
/// # Safety
/// `count` must be NULL or point to writable memory for one `int`.
pub(crate) unsafe fn events_of(
    tracer: Option<&PandaTracer>,
    count: *mut c_int,
) -> *mut mmio_event_t {
    let set_count = |n: c_int| {
        if !count.is_null() {
            // SAFETY: the caller passes a valid `int *` (or NULL, checked).
            unsafe { *count = n };
        }
    };
    let Some((tracer, retention)) = tracer.and_then(|t| t.retention().map(|r| (t, r))) else {
        if !TOLD_ABOUT_RETAIN.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "mmio_trace: get_mmio_events needs retention: load the plugin with retain=true"
            );
        }
        set_count(0);
        return std::ptr::null_mut();
    };
    let tracer = tracer.tracer();
    tracer.recorder().flush();
    let events = retention.events.lock().unwrap_or_else(|p| p.into_inner());
    let n = events.len().min(c_int::MAX as usize);
    if n == 0 {
        set_count(0);
        return std::ptr::null_mut();
    }
    // SAFETY: malloc of n elements; checked for NULL before use.
    let array = unsafe { malloc(n * std::mem::size_of::<mmio_event_t>()) } as *mut mmio_event_t;
    if array.is_null() {
        set_count(0);
        return array;
    }
    for (index, event) in events[..n].iter().enumerate() {
        // SAFETY: index < n, inside the allocation.
        unsafe {
            array
                .add(index)
                .write(mmio_event_t::new(event, tracer.devices()))
        };
    }
    set_count(n as c_int);
    array
}

/// Every event recorded so far, as a `malloc`'d array; see `include/mmio_trace.h`.
///
/// # Safety
/// `count` must be NULL or point to writable memory for one `int`.
#[no_mangle]
pub unsafe extern "C" fn get_mmio_events(count: *mut c_int) -> *mut mmio_event_t {
    // SAFETY: same contract as this function's.
    unsafe { events_of(TRACER.get(), count) }
}

/// Frees an array from `get_mmio_events`.
///
/// # Safety
/// `events` must be NULL or a pointer `get_mmio_events` returned, not freed yet.
#[no_mangle]
pub unsafe extern "C" fn free_mmio_events(events: *mut mmio_event_t) {
    // SAFETY: the array came from malloc (or is NULL, which free accepts).
    unsafe { free(events as *mut c_void) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse;
    use crate::recording::tests::{access, lm3s_tracer};
    use std::ffi::CStr;
    use std::process::Command;

    #[test]
    fn the_api_returns_every_event_with_stable_names() {
        let tracer = lm3s_tracer(&parse::<&str, &str>(&[]).unwrap());
        tracer.on_access(&access(0x4000_c000, 0, 0x48));
        tracer.on_access(&access(0xe000_e018, 8, 0x1_0005));
        tracer.on_access(&access(0x6000_0000, 0x40, 7));
        let mut count: c_int = -1;
        // SAFETY: a valid `int *`; the array is freed below.
        let array = unsafe { events_of(Some(&tracer), &mut count) };
        assert_eq!(count, 3);
        // SAFETY: `count` elements were written.
        let events = unsafe { std::slice::from_raw_parts(array, count as usize) };
        let names: Vec<&str> = events
            .iter()
            // SAFETY: names are NUL-terminated strings kept until unload.
            .map(|e| unsafe { CStr::from_ptr(e.dev_name) }.to_str().unwrap())
            .collect();
        assert_eq!(names, ["pl011", "v7m_systick", "[NONE]"]);
        let fields: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    e.access_type as u8,
                    e.pc,
                    e.phys_addr as u64,
                    e.virt_addr as u64,
                    e.size,
                    e.value,
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                (b'W', 0x5e, 0x4000_c000, 0x4000_c000, 4, 0x48),
                (b'W', 0x5e, 0xe000_e018, 0xe000_e018, 4, 0x1_0005),
                (b'W', 0x5e, 0x6000_0000, 0x6000_0000, 4, 7),
            ]
        );
        // SAFETY: returned by events_of, freed once.
        unsafe { free_mmio_events(array) };
        tracer.tracer().finish().unwrap();
    }

    /// What `on_event` saw from this test's PC (other tests record in parallel).
    static SEEN: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    const PPP_TEST_PC: u64 = 0x7770;

    extern "C" fn on_event(event: *const mmio_event_t) {
        // SAFETY: the plugin passes a live event whose name is a C string.
        let (pc, value, name) = unsafe {
            (
                (*event).pc,
                (*event).value,
                CStr::from_ptr((*event).dev_name),
            )
        };
        if pc == PPP_TEST_PC {
            SEEN.lock()
                .unwrap()
                .push((value, name.to_string_lossy().into_owned()));
        }
    }

    /// `PPP_REG_CB("mmio_trace", on_mmio_event, on_event)` and its removal, as PANDA's
    /// macros call the exported functions.
    #[test]
    fn ppp_subscribers_get_each_event_as_it_is_recorded() {
        let tracer = lm3s_tracer(&parse::<&str, &str>(&[]).unwrap());
        let access = |vaddr, offset, value| crate::PandaAccess {
            pc: PPP_TEST_PC,
            ..access(vaddr, offset, value)
        };
        tracer.on_access(&access(0x4000_c000, 0, 0x48));
        ppp_add_cb_on_mmio_event(on_event);
        tracer.on_access(&access(0x4000_c000, 0, 0x69));
        tracer.on_access(&access(0x2000_0000, 0, 0x1)); // RAM: not an event
        tracer.on_access(&access(0xe000_e018, 8, 0x5));
        assert!(ppp_remove_cb_on_mmio_event(on_event));
        assert!(!ppp_remove_cb_on_mmio_event(on_event));
        tracer.on_access(&access(0x4000_c000, 0, 0xa));
        assert_eq!(
            *SEEN.lock().unwrap(),
            [
                (0x69, "pl011".to_string()),
                (0x5, "v7m_systick".to_string())
            ]
        );
        tracer.tracer().finish().unwrap();
    }

    #[test]
    fn without_retention_the_api_returns_null() {
        let dir = tempfile::tempdir().unwrap();
        let args = parse(&[("out_log", dir.path().join("t.jsonl").to_str().unwrap())]).unwrap();
        let tracer = lm3s_tracer(&args);
        tracer.on_access(&access(0x4000_c000, 0, 0x48));
        let mut count: c_int = -1;
        // SAFETY: a valid `int *`.
        let array = unsafe { events_of(Some(&tracer), &mut count) };
        assert!(array.is_null());
        assert_eq!(count, 0);
        // And before the plugin is loaded at all.
        // SAFETY: NULL count is allowed.
        assert!(unsafe { get_mmio_events(std::ptr::null_mut()) }.is_null());
        tracer.tracer().finish().unwrap();
    }

    /// The header's struct has the layout of `mmio_event_t`, checked with a C compiler.
    #[test]
    fn the_c_header_matches_the_rust_layout() {
        let bits = std::mem::size_of::<target_ptr_t>() * 8;
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("layout.c");
        std::fs::write(
            &program,
            r#"#include <stdio.h>
#include <stddef.h>
#include "mmio_trace.h"
int main(void) {
    printf("%zu %zu %zu %zu %zu %zu %zu %zu\n", sizeof(mmio_event_t),
           offsetof(mmio_event_t, access_type), offsetof(mmio_event_t, pc),
           offsetof(mmio_event_t, phys_addr), offsetof(mmio_event_t, virt_addr),
           offsetof(mmio_event_t, size), offsetof(mmio_event_t, value),
           offsetof(mmio_event_t, dev_name));
    mmio_event_t *(*get)(int *) = get_mmio_events;
    void (*release)(mmio_event_t *) = free_mmio_events;
    (void)get; (void)release;
    return 0;
}
"#,
        )
        .unwrap();
        let binary = dir.path().join("layout");
        let compiled = Command::new("cc")
            .args(["-std=c99", "-Wall", "-Werror", "-Wno-unused", "-c"])
            .arg(format!("-DMMIO_TRACE_TARGET_LONG_BITS={bits}"))
            .arg("-I")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/include"))
            .arg(&program)
            .arg("-o")
            .arg(dir.path().join("layout.o"))
            .status()
            .unwrap();
        assert!(compiled.success(), "the header compiles as C99");
        // Link without the plugin: only the layout is printed.
        let linked = Command::new("cc")
            .arg(dir.path().join("layout.o"))
            .args(["-Wl,--unresolved-symbols=ignore-all", "-o"])
            .arg(&binary)
            .status()
            .unwrap();
        assert!(linked.success());
        let output = Command::new(&binary).output().unwrap();
        let c_layout = String::from_utf8(output.stdout).unwrap();
        let rust_layout = format!(
            "{} {} {} {} {} {} {} {}\n",
            std::mem::size_of::<mmio_event_t>(),
            std::mem::offset_of!(mmio_event_t, access_type),
            std::mem::offset_of!(mmio_event_t, pc),
            std::mem::offset_of!(mmio_event_t, phys_addr),
            std::mem::offset_of!(mmio_event_t, virt_addr),
            std::mem::offset_of!(mmio_event_t, size),
            std::mem::offset_of!(mmio_event_t, value),
            std::mem::offset_of!(mmio_event_t, dev_name),
        );
        assert_eq!(c_layout, rust_layout);
        // The layout for this target's word size, spelled out.
        let expected = if bits == 32 {
            "48 0 8 16 20 24 32 40\n"
        } else {
            "56 0 8 16 24 32 40 48\n"
        };
        assert_eq!(rust_layout, expected);
    }
}
