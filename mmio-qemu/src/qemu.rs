//! The FFI glue: QEMU's callbacks, kept thin; every decision is in
//! [`mmio_frontend`] and [`crate::addressing`].

use std::ffi::{c_char, c_uint, c_void, CStr};
use std::sync::OnceLock;
use std::time::Duration;

use mmio_core::Access;
use mmio_export::TraceInfo;
use mmio_frontend::access::{GuestAccess, Landing, RegionName};
use mmio_frontend::byte_order::ByteOrder;
use mmio_frontend::map_refresh::{MapFetch, QmpMapFetch};
use mmio_frontend::tracer::{on_fresh_thread, MapSource, Tracer};
use mmio_frontend::ErrorChain;
use qemu_plugin::sys::{
    qemu_plugin_cb_flags, qemu_plugin_get_hwaddr, qemu_plugin_hwaddr_device_name,
    qemu_plugin_hwaddr_is_io, qemu_plugin_hwaddr_phys_addr, qemu_plugin_id_t, qemu_plugin_insn,
    qemu_plugin_insn_data, qemu_plugin_insn_disas, qemu_plugin_insn_haddr, qemu_plugin_insn_vaddr,
    qemu_plugin_mem_get_value, qemu_plugin_mem_is_big_endian, qemu_plugin_mem_rw,
    qemu_plugin_mem_size_shift, qemu_plugin_mem_value_type, qemu_plugin_meminfo_t, qemu_plugin_op,
    qemu_plugin_register_atexit_cb, qemu_plugin_register_vcpu_insn_exec_cb,
    qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu, qemu_plugin_register_vcpu_mem_cb,
    qemu_plugin_register_vcpu_tb_trans_cb, qemu_plugin_scoreboard_new, qemu_plugin_tb,
    qemu_plugin_tb_get_insn, qemu_plugin_tb_n_insns, qemu_plugin_u64, qemu_plugin_u64_get,
};
use qemu_plugin::{register, Args, HasCallbacks, Info, PluginId, Register};

use crate::addressing::{
    addresses_only_stack_or_literal, arm_addresses_only_stack_or_literal, arm_block_state,
    x86_addresses_only_stack, Isa,
};
use crate::args::Instrument;
use crate::map_change::MapChangingBlocks;
use crate::port_callbacks::PortIo;
use crate::port_io::{decode, size_from_disassembly, size_without_disassembly, PortSite};
use crate::{fixed_physical, word_size};

extern "C" {
    /// GLib's allocator, which QEMU links: strings the plugin API returns are freed
    /// with it.
    fn g_free(memory: *mut c_void);
}

pub(crate) struct Plugin {
    pub(crate) tracer: Tracer,
    instrument: Instrument,
    /// Set when `skip_sp_pc=on` and the guest's instruction set is one `addressing`
    /// reads.
    skip_sp_pc: Option<Isa>,
    /// Per-vCPU count of instructions started, when `icount=on`.
    icount: Option<InstructionCounter>,
    /// Where this vCPU's writes could change the map (not looked up).
    map_changing: MapChangingBlocks,
    /// x86 port I/O, on an x86 target.
    pub(crate) ports: Option<PortIo>,
    /// QEMU's target name (`mips`, `x86_64`...).
    target: String,
    /// The target's byte order: an instruction's bytes make its fetched value in it.
    byte_order: ByteOrder,
}

/// Runs `f` with the loaded plugin (nothing before it is installed).
pub(crate) fn with_plugin(f: impl FnOnce(&Plugin)) {
    if let Some(plugin) = PLUGIN.get() {
        f(plugin);
    }
}

/// Instructions vCPU `cpu` retired before the one running, when `icount=on`.
pub(crate) fn instructions_retired(plugin: &Plugin, cpu: c_uint) -> Option<u64> {
    plugin.icount.map(|counter| {
        // SAFETY: reads this vCPU's own slot of a live scoreboard.
        let started = unsafe { qemu_plugin_u64_get(counter.0, cpu) };
        // The inline add runs before the instruction's callbacks, so it counts this
        // one too.
        started.saturating_sub(1)
    })
}

/// A scoreboard entry QEMU increments inline before each instruction.
#[derive(Clone, Copy)]
struct InstructionCounter(qemu_plugin_u64);

// SAFETY: a scoreboard is made for concurrent use, each vCPU touching its own slot;
// the handle itself is never freed while the plugin is loaded.
unsafe impl Send for InstructionCounter {}
// SAFETY: as above.
unsafe impl Sync for InstructionCounter {}

static PLUGIN: OnceLock<Plugin> = OnceLock::new();

struct MmioTracePlugin;

impl HasCallbacks for MmioTracePlugin {}

impl Register for MmioTracePlugin {
    fn register(&mut self, id: PluginId, args: &Args, info: &Info) -> qemu_plugin::Result<()> {
        mmio_frontend::init_logging();
        if let Err(error) = install(id, &args.raw, info) {
            // QEMU gives plugins no clean way to refuse loading with a message of their
            // own: say what is wrong and stop before the guest runs.
            tracing::error!("mmio_trace: {}", ErrorChain(error.as_ref()));
            std::process::exit(1);
        }
        Ok(())
    }
}

register!(MmioTracePlugin);

fn install(
    id: PluginId,
    raw_args: &[String],
    info: &Info,
) -> Result<(), Box<dyn std::error::Error>> {
    let args = crate::args::parse(raw_args)?;
    let own = &args.own;
    let trace_info = TraceInfo::now(
        &format!("qemu (plugin API v{})", info.version.current),
        &info.target_name,
        &own.machine,
        word_size(&info.target_name),
    );
    let mut setup = args.tracer_setup(
        trace_info,
        own.mtree
            .as_deref()
            .map_or(MapSource::Empty, MapSource::Mtree),
        Vec::new(),
    );
    setup.map_fetch = own
        .qmp
        .clone()
        .map(|path| Box::new(QmpMapFetch::new(path)) as Box<dyn MapFetch>);
    let tracer = Tracer::start(setup)?;
    let icount = own.icount.then(|| {
        // SAFETY: plain FFI call; an 8-byte element holds one u64 per vCPU.
        let score = unsafe { qemu_plugin_scoreboard_new(std::mem::size_of::<u64>()) };
        InstructionCounter(qemu_plugin_u64 { score, offset: 0 })
    });
    let skip_sp_pc = own
        .skip_sp_pc
        .then(|| Isa::of_target(&info.target_name))
        .flatten();
    if PLUGIN
        .set(Plugin {
            tracer,
            instrument: own.instrument,
            icount,
            skip_sp_pc,
            map_changing: MapChangingBlocks::default(),
            ports: matches!(info.target_name.as_str(), "i386" | "x86_64").then(PortIo::new),
            target: info.target_name.clone(),
            byte_order: ByteOrder::of_target(&info.target_name),
        })
        .is_err()
    {
        return Err("the plugin was loaded twice".into());
    }
    // SAFETY: FFI registration with 'static extern "C" functions; `id` is ours.
    unsafe {
        qemu_plugin_register_vcpu_tb_trans_cb(id, Some(on_translate));
        qemu_plugin_register_atexit_cb(id, Some(on_exit), std::ptr::null_mut());
    }
    finish_on_abort();
    if own.progress {
        std::thread::Builder::new()
            .name("mmio-trace-progress".into())
            .spawn(report_progress)?;
    }
    Ok(())
}

/// QEMU runs the exit callbacks while a vCPU may still be executing: on a Linux
/// power-off, the callback of the very store that asked for it sometimes came after
/// the trace was finished. Give such stragglers a moment: finish once no event has
/// been recorded for 20 ms (at most 200 ms).
fn wait_until_quiet(tracer: &Tracer) {
    let mut recorded = tracer.recorder().events_recorded();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(20));
        let now = tracer.recorder().events_recorded();
        if now == recorded {
            return;
        }
        recorded = now;
    }
}

fn report_progress() {
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let Some(plugin) = PLUGIN.get() else { return };
        let now = plugin.tracer.recorder().events_recorded();
        tracing::info!("mmio_trace: {now} events ({}/s)", (now - last) / 2);
        last = now;
    }
}

/// Instruments the instructions of a new translation block that may reach I/O with a
/// memory callback whose userdata is the instruction's address: with
/// `instrument=last` only the block's last instruction, the only one QEMU (>= 8.2)
/// lets access a device.
unsafe extern "C" fn on_translate(_id: qemu_plugin_id_t, tb: *mut qemu_plugin_tb) {
    let Some(plugin) = PLUGIN.get() else { return };
    // SAFETY: `tb` is valid for the duration of this callback, as are its
    // instructions; the callbacks registered are 'static.
    plugin.tracer.guard(|| unsafe { instrument(plugin, tb) });
}

/// # Safety
/// `tb` is the block being translated.
unsafe fn instrument(plugin: &Plugin, tb: *mut qemu_plugin_tb) {
    // SAFETY: per the function's contract; the callbacks registered are 'static.
    unsafe {
        let instructions: Vec<*mut qemu_plugin_insn> = (0..qemu_plugin_tb_n_insns(tb))
            .map(|index| qemu_plugin_tb_get_insn(tb, index))
            .collect();
        let first_instrumented = match plugin.instrument {
            Instrument::All => 0,
            Instrument::Last => instructions.len().saturating_sub(1),
        };
        let skipped = plugin
            .skip_sp_pc
            .map(|isa| skippable_instructions(isa, &instructions));
        if let Some(ports) = &plugin.ports {
            ports.instrument_block(tb);
        }
        for (index, &insn) in instructions.iter().enumerate() {
            let pc = qemu_plugin_insn_vaddr(insn);
            let instrumented = index >= first_instrumented;
            let port = plugin
                .ports
                .as_ref()
                .filter(|_| instrumented)
                .and_then(|_| port_instruction(insn, pc));
            if port.is_none()
                && instrumented
                && !skipped.as_ref().is_some_and(|skipped| skipped[index])
            {
                // One callback per direction: QEMU picks it when it translates the
                // access (`inject_mem_cb`, QEMU 10.0.2), so no callback asks.
                qemu_plugin_register_vcpu_mem_cb(
                    insn,
                    Some(on_memory_read),
                    qemu_plugin_cb_flags::QEMU_PLUGIN_CB_NO_REGS,
                    qemu_plugin_mem_rw::QEMU_PLUGIN_MEM_R,
                    pc as usize as *mut c_void,
                );
                qemu_plugin_register_vcpu_mem_cb(
                    insn,
                    Some(on_memory_write),
                    qemu_plugin_cb_flags::QEMU_PLUGIN_CB_NO_REGS,
                    qemu_plugin_mem_rw::QEMU_PLUGIN_MEM_W,
                    pc as usize as *mut c_void,
                );
            }
            if let Some(counter) = plugin.icount {
                qemu_plugin_register_vcpu_insn_exec_inline_per_vcpu(
                    insn,
                    qemu_plugin_op::QEMU_PLUGIN_INLINE_ADD_U64,
                    counter.0,
                    1,
                );
            }
            // After the count's add, so that their callbacks see it as a memory
            // callback does.
            if let (Some(ports), Some((site, string))) = (&plugin.ports, port) {
                ports.instrument_instruction(insn, site, string);
            }
            if qemu_plugin_insn_haddr(insn).is_null() {
                instrument_fetch(insn, pc);
            }
        }
    }
}

/// The port I/O instruction `insn` is, with its width from QEMU's disassembly where the
/// bytes do not tell it.
///
/// # Safety
/// `insn` is an instruction of the block being translated.
unsafe fn port_instruction(insn: *mut qemu_plugin_insn, pc: u64) -> Option<(PortSite, bool)> {
    let mut bytes = [0u8; 16];
    // SAFETY: `insn` is live; QEMU copies at most `bytes.len()` bytes.
    let copied = unsafe { qemu_plugin_insn_data(insn, bytes.as_mut_ptr().cast(), bytes.len()) };
    let decoded = decode(&bytes[..copied.min(bytes.len())])?;
    let size = decoded.size.or_else(|| {
        // SAFETY: per the function's contract; the string is ours to free, done here.
        unsafe {
            let text: *mut c_char = qemu_plugin_insn_disas(insn);
            if text.is_null() {
                return None;
            }
            let size = CStr::from_ptr(text)
                .to_str()
                .ok()
                .and_then(size_from_disassembly);
            g_free(text.cast());
            size
        }
    });
    let size = size.unwrap_or_else(|| {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            tracing::warn!("mmio_trace: QEMU gives no disassembly: the width of word-sized port I/O is taken as in 32-bit code (wrong for 16-bit code)");
        });
        size_without_disassembly(&decoded)
    });
    Some((
        PortSite {
            pc,
            port: decoded.port,
            size,
            access: decoded.access,
        },
        decoded.string,
    ))
}

thread_local! {
    /// The instruction of the block being translated on this vCPU's thread that QEMU
    /// fetched from I/O: its address, bytes and length. QEMU runs such a block (of
    /// one instruction, never cached: `tb_gen_code`, QEMU 10.0.2) right after
    /// translating it, on the same thread.
    static FETCHED: std::cell::Cell<(u64, [u8; 8], usize)> =
        const { std::cell::Cell::new((0, [0; 8], 0)) };
}

/// Records, when it runs, the fetch of `insn`, whose code QEMU read from an I/O region
/// (no host memory behind it).
///
/// # Safety
/// `insn` is an instruction of the block being translated.
unsafe fn instrument_fetch(insn: *mut qemu_plugin_insn, pc: u64) {
    let mut bytes = [0u8; 8];
    // SAFETY: per the function's contract; at most `bytes.len()` bytes are copied.
    let copied = unsafe { qemu_plugin_insn_data(insn, bytes.as_mut_ptr().cast(), bytes.len()) };
    FETCHED.set((pc, bytes, copied.min(bytes.len())));
    // SAFETY: as above; the callback is 'static.
    unsafe {
        qemu_plugin_register_vcpu_insn_exec_cb(
            insn,
            Some(on_fetch),
            qemu_plugin_cb_flags::QEMU_PLUGIN_CB_NO_REGS,
            pc as usize as *mut c_void,
        );
    }
}

unsafe extern "C" fn on_fetch(cpu: c_uint, userdata: *mut c_void) {
    let Some(plugin) = PLUGIN.get() else { return };
    let pc = userdata as usize as u64;
    let (fetched_pc, bytes, len) = FETCHED.get();
    if fetched_pc != pc || len == 0 {
        return;
    }
    // One event of the instruction's length, rounded up to an access width.
    let size = len.next_power_of_two().min(8) as u8;
    let mut word = [0u8; 8];
    let value = match plugin.byte_order {
        ByteOrder::Little => {
            word[..len].copy_from_slice(&bytes[..len]);
            u64::from_le_bytes(word)
        }
        ByteOrder::Big => {
            word[8 - len..].copy_from_slice(&bytes[..len]);
            u64::from_be_bytes(word)
        }
    };
    plugin.tracer.on_access(&GuestAccess {
        cpu,
        access: Access::Fetch,
        pc,
        vaddr: pc,
        size,
        value,
        byte_order: plugin.byte_order,
        instr_count: instructions_retired(plugin, cpu),
        landing: Landing::Fetch {
            phys_addr: fixed_physical(&plugin.target, pc),
        },
    });
}

/// For each instruction of a block, whether it addresses only the stack or a literal
/// pool: from the bytes on x86, and on 32-bit Arm when they tell A32 from T32 (nearly
/// always), else from QEMU's disassembly.
///
/// # Safety
/// The instructions are those of the block being translated.
unsafe fn skippable_instructions(isa: Isa, instructions: &[*mut qemu_plugin_insn]) -> Vec<bool> {
    if isa == Isa::X86 {
        return instructions
            .iter()
            .map(|&insn| {
                let mut bytes = [0u8; 8];
                // SAFETY: `insn` is live; QEMU copies at most `bytes.len()` bytes.
                let copied =
                    unsafe { qemu_plugin_insn_data(insn, bytes.as_mut_ptr().cast(), bytes.len()) };
                x86_addresses_only_stack(&bytes[..copied.min(bytes.len())])
            })
            .collect();
    }
    if isa == Isa::Arm {
        let encodings: Vec<([u8; 4], usize)> = instructions
            .iter()
            .map(|&insn| {
                let mut bytes = [0u8; 4];
                // SAFETY: `insn` is live; QEMU copies at most `bytes.len()` bytes.
                let copied =
                    unsafe { qemu_plugin_insn_data(insn, bytes.as_mut_ptr().cast(), bytes.len()) };
                (bytes, copied.min(bytes.len()))
            })
            .collect();
        let state = arm_block_state(encodings.iter().map(|(bytes, len)| &bytes[..*len]));
        if let Some(state) = state {
            return encodings
                .iter()
                .map(|(bytes, len)| arm_addresses_only_stack_or_literal(state, &bytes[..*len]))
                .collect();
        }
    }
    instructions
        .iter()
        // SAFETY: per this function's contract.
        .map(|&insn| unsafe { disassembly_addresses_only_stack_or_literal(isa, insn) })
        .collect()
}

/// Reads QEMU's disassembly of `insn`; false (keep the callback) when there is none.
///
/// # Safety
/// `insn` must be an instruction of the block being translated.
unsafe fn disassembly_addresses_only_stack_or_literal(
    isa: Isa,
    insn: *mut qemu_plugin_insn,
) -> bool {
    // SAFETY: `insn` is live (caller's contract); the returned string is ours to free
    // with g_free, done before returning.
    unsafe {
        let text: *mut c_char = qemu_plugin_insn_disas(insn);
        if text.is_null() {
            return false;
        }
        let skip = CStr::from_ptr(text)
            .to_str()
            .is_ok_and(|text| addresses_only_stack_or_literal(isa, text));
        g_free(text.cast());
        skip
    }
}

unsafe extern "C" fn on_memory_read(
    vcpu_index: c_uint,
    info: qemu_plugin_meminfo_t,
    vaddr: u64,
    userdata: *mut c_void,
) {
    // SAFETY: QEMU's arguments, passed on.
    unsafe { on_memory_access(false, vcpu_index, info, vaddr, userdata) }
}

unsafe extern "C" fn on_memory_write(
    vcpu_index: c_uint,
    info: qemu_plugin_meminfo_t,
    vaddr: u64,
    userdata: *mut c_void,
) {
    // SAFETY: QEMU's arguments, passed on.
    unsafe { on_memory_access(true, vcpu_index, info, vaddr, userdata) }
}

/// # Safety
/// The arguments are those QEMU passed to a memory callback, used during it.
#[inline(always)]
unsafe fn on_memory_access(
    is_store: bool,
    vcpu_index: c_uint,
    info: qemu_plugin_meminfo_t,
    vaddr: u64,
    userdata: *mut c_void,
) {
    let Some(plugin) = PLUGIN.get() else { return };
    let known_phys = is_store
        .then(|| {
            plugin
                .map_changing
                .physical(vcpu_index, vaddr)
                .or_else(|| plugin.tracer.map_changing_store(vaddr))
        })
        .flatten();
    // SAFETY: as above; `hwaddr` is checked for NULL before any use and not kept. A
    // write that may change the map is not looked up (see `map_change`).
    let hwaddr = match known_phys {
        Some(_) => std::ptr::null_mut(),
        None => unsafe { qemu_plugin_get_hwaddr(info, vaddr) },
    };
    // SAFETY: called only for the non-NULL `hwaddr` below, during this callback; QEMU
    // interns the name, so it lives as long as the plugin.
    let ask_name = || unsafe {
        let name = qemu_plugin_hwaddr_device_name(hwaddr);
        (!name.is_null())
            .then(|| CStr::from_ptr(name).to_str().ok())
            .flatten()
    };
    let landing = if let Some(phys_addr) = known_phys {
        Landing::Io {
            phys_addr,
            name: RegionName::Known(None),
        }
    } else if hwaddr.is_null() {
        Landing::NotLookedUp
    // SAFETY: `hwaddr` is non-NULL and valid during this callback.
    } else if !unsafe { qemu_plugin_hwaddr_is_io(hwaddr) } {
        return; // RAM or ROM: the common case, leave at once.
    } else {
        Landing::Io {
            // SAFETY: as above.
            phys_addr: unsafe { qemu_plugin_hwaddr_phys_addr(hwaddr) },
            name: RegionName::Ask(&ask_name),
        }
    };
    // SAFETY: `info` is valid during this callback; the union member read is the one
    // the type tag names.
    let (value, size) = unsafe {
        let value = qemu_plugin_mem_get_value(info);
        let bits = match value.type_ {
            qemu_plugin_mem_value_type::QEMU_PLUGIN_MEM_VALUE_U8 => u64::from(value.data.u8_),
            qemu_plugin_mem_value_type::QEMU_PLUGIN_MEM_VALUE_U16 => u64::from(value.data.u16_),
            qemu_plugin_mem_value_type::QEMU_PLUGIN_MEM_VALUE_U32 => u64::from(value.data.u32_),
            qemu_plugin_mem_value_type::QEMU_PLUGIN_MEM_VALUE_U64 => value.data.u64_,
            // 16-byte vector accesses are outside the event model (sizes 1 to 8).
            qemu_plugin_mem_value_type::QEMU_PLUGIN_MEM_VALUE_U128 => return,
        };
        (bits, 1u8 << qemu_plugin_mem_size_shift(info).min(3))
    };
    let instr_count = instructions_retired(plugin, vcpu_index);
    // SAFETY: `info` is valid during this callback.
    let big_endian = unsafe { qemu_plugin_mem_is_big_endian(info) };
    let decided = plugin.tracer.decide_and_record(&GuestAccess {
        cpu: vcpu_index,
        access: if is_store {
            Access::Write
        } else {
            Access::Read
        },
        pc: userdata as usize as u64,
        vaddr,
        size,
        value,
        byte_order: if big_endian {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        },
        instr_count,
        landing,
    });
    if known_phys.is_none() {
        if let Some((event, _)) = decided {
            if let Some(phys) = event.phys_addr {
                let changes_map = plugin.tracer.changes_memory_map(event.device);
                plugin
                    .map_changing
                    .looked_up(vcpu_index, vaddr, phys, changes_map);
            }
        }
    }
}

/// QEMU stops on a failed assertion with `abort()`, which runs no exit callback: finish
/// the trace from the SIGABRT handler (once), then let the abort go on. The handler
/// runs on the thread that called `abort()`, outside any lock of the recorder (QEMU
/// asserts in its own code, never inside a plugin call the recorder is in), so it can
/// finish as the exit callback does.
fn finish_on_abort() {
    extern "C" fn on_abort(_signal: libc::c_int) {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            on_fresh_thread(|| {
                if let Some(plugin) = PLUGIN.get() {
                    tracing::error!(
                        "mmio_trace: QEMU aborted; finishing the trace with the {} events recorded before",
                        plugin.tracer.recorder().events_recorded()
                    );
                    plugin.tracer.finish_and_log();
                }
            });
        });
        // SA_RESETHAND restored the default action, so this ends the process as the
        // abort would have once the handler returns (SIGABRT is blocked until then);
        // a SIGABRT sent with kill(1) ends it the same way.
        // SAFETY: raise is async-signal-safe.
        unsafe {
            libc::raise(libc::SIGABRT);
        }
    }
    // SAFETY: a plain sigaction with a handler that is 'static; `action` is fully
    // initialised (zeroed, then the fields set) before the call.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_abort as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESETHAND;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGABRT, &action, std::ptr::null_mut()) != 0 {
            tracing::warn!("mmio_trace: cannot catch SIGABRT; an abort of QEMU would leave the trace unfinished");
        }
    }
}

/// Runs when QEMU exits (guest power-off, semihosting exit, SIGTERM, SIGINT, `quit`).
unsafe extern "C" fn on_exit(_id: qemu_plugin_id_t, _userdata: *mut c_void) {
    on_fresh_thread(|| {
        if let Some(plugin) = PLUGIN.get() {
            wait_until_quiet(&plugin.tracer);
            plugin.tracer.finish_and_log();
        }
    });
}
