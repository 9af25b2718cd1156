//! The FFI half of x86 port I/O ([`crate::port_io`] decodes): the callbacks that read
//! the port and value from the vCPU's registers when an `in`, `out`, `ins` or `outs`
//! runs, and record the access through the same decision as memory accesses.
//!
//! - `out`: an execution callback before the instruction reads the port (`dx` or the
//!   immediate) and the value (`al`/`ax`/`eax`).
//! - `in`: the value exists only after the instruction, which QEMU makes the last of
//!   its block: the execution callback keeps the port and marks the vCPU (a scoreboard
//!   entry); every block starts with a callback conditional on that mark (an inline
//!   compare, no call otherwise) that reads the accumulator.
//! - `ins` / `outs` (with `rep`, many accesses in one execution): the port is read
//!   before the instruction; each iteration's memory access carries the value (`outs`
//!   loads it, `ins` stores it, after a dummy store of 0 QEMU makes first so that a
//!   page fault can restart the instruction: `gen_ins`, QEMU 10.0.2
//!   target/i386/tcg/translate.c).
//!
//! An instruction that faults (no I/O permission in user mode) is recorded though no
//! device saw it: a plugin sees no fault.

use std::ffi::{c_uint, c_void};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::OnceLock;

use mmio_core::Access;
use mmio_frontend::access::{GuestAccess, Landing};
use mmio_frontend::byte_order::ByteOrder;
use qemu_plugin::sys::{
    qemu_plugin_cb_flags, qemu_plugin_cond, qemu_plugin_get_registers, qemu_plugin_insn,
    qemu_plugin_mem_get_value, qemu_plugin_mem_is_store, qemu_plugin_mem_rw,
    qemu_plugin_mem_size_shift, qemu_plugin_mem_value_type, qemu_plugin_meminfo_t,
    qemu_plugin_read_register, qemu_plugin_reg_descriptor, qemu_plugin_register,
    qemu_plugin_register_vcpu_insn_exec_cb, qemu_plugin_register_vcpu_mem_cb,
    qemu_plugin_register_vcpu_tb_exec_cond_cb, qemu_plugin_scoreboard_new, qemu_plugin_tb,
    qemu_plugin_u64, qemu_plugin_u64_set, GArray, GByteArray,
};

use crate::port_io::{PortOperand, PortSite};
use crate::qemu::{instructions_retired, with_plugin};

extern "C" {
    /// GLib, which QEMU links: the register buffers and the register list.
    fn g_byte_array_sized_new(reserved: c_uint) -> *mut GByteArray;
    fn g_byte_array_set_size(array: *mut GByteArray, length: c_uint) -> *mut GByteArray;
    fn g_array_free(array: *mut GArray, free_segment: i32) -> *mut i8;
}

/// vCPUs with state of their own; port accesses of any beyond are not recorded.
const MAX_VCPUS: usize = 1024;

/// One vCPU's port I/O in flight. Written only by its own vCPU's thread.
#[derive(Default)]
struct VcpuPorts {
    /// The packed [`PortSite`] of an `in` waiting for its value, or of the string
    /// instruction running.
    site: AtomicU64,
    /// Its port.
    port: AtomicU64,
    /// Instructions retired before it (`u64::MAX`: not counted).
    instr_count: AtomicU64,
    /// `ins`: the next store is the value (the one before it was QEMU's dummy 0).
    value_store_next: AtomicBool,
    /// The buffer registers are read into, made at the vCPU's first read.
    buffer: AtomicPtr<GByteArray>,
}

/// The accumulator and `dx`, as QEMU's register API names them.
struct Registers {
    accumulator: *mut qemu_plugin_register,
    dx: *mut qemu_plugin_register,
}

// SAFETY: register handles are opaque numbers QEMU hands out once for every vCPU of
// the machine; they are never dereferenced here.
unsafe impl Send for Registers {}
// SAFETY: as above.
unsafe impl Sync for Registers {}

/// Port I/O tracing for an x86 guest.
pub(crate) struct PortIo {
    /// Per vCPU: 1 while an `in` waits for its value.
    pending_in: qemu_plugin_u64,
    registers: OnceLock<Option<Registers>>,
    vcpus: Box<[VcpuPorts]>,
}

// SAFETY: the scoreboard is made for concurrent use, each vCPU touching its own slot;
// the rest is atomics and register handles.
unsafe impl Send for PortIo {}
// SAFETY: as above.
unsafe impl Sync for PortIo {}

impl PortIo {
    pub(crate) fn new() -> PortIo {
        // SAFETY: plain FFI call; an 8-byte element holds one u64 per vCPU.
        let score = unsafe { qemu_plugin_scoreboard_new(std::mem::size_of::<u64>()) };
        PortIo {
            pending_in: qemu_plugin_u64 { score, offset: 0 },
            registers: OnceLock::new(),
            vcpus: (0..MAX_VCPUS).map(|_| VcpuPorts::default()).collect(),
        }
    }

    /// Registers the callbacks of the port instruction `site` decoded from `insn`, and
    /// (for every block, `tb`) the one that collects an `in`'s value.
    ///
    /// # Safety
    /// `tb` is the block being translated and `insn` one of its instructions.
    pub(crate) unsafe fn instrument_instruction(
        &self,
        insn: *mut qemu_plugin_insn,
        site: PortSite,
        string: bool,
    ) {
        let userdata = site.pack() as usize as *mut c_void;
        // SAFETY: per the function's contract; the callbacks are 'static.
        unsafe {
            if string {
                qemu_plugin_register_vcpu_insn_exec_cb(
                    insn,
                    Some(on_string_start),
                    qemu_plugin_cb_flags::QEMU_PLUGIN_CB_R_REGS,
                    userdata,
                );
                qemu_plugin_register_vcpu_mem_cb(
                    insn,
                    Some(on_string_access),
                    qemu_plugin_cb_flags::QEMU_PLUGIN_CB_NO_REGS,
                    qemu_plugin_mem_rw::QEMU_PLUGIN_MEM_RW,
                    userdata,
                );
            } else {
                qemu_plugin_register_vcpu_insn_exec_cb(
                    insn,
                    Some(on_port_instruction),
                    qemu_plugin_cb_flags::QEMU_PLUGIN_CB_R_REGS,
                    userdata,
                );
            }
        }
    }

    /// Gives block `tb` the callback, conditional on the vCPU's mark, that records a
    /// pending `in` with its value.
    ///
    /// # Safety
    /// `tb` is the block being translated.
    pub(crate) unsafe fn instrument_block(&self, tb: *mut qemu_plugin_tb) {
        // SAFETY: per the function's contract; the callback is 'static.
        unsafe {
            qemu_plugin_register_vcpu_tb_exec_cond_cb(
                tb,
                Some(on_in_value),
                qemu_plugin_cb_flags::QEMU_PLUGIN_CB_R_REGS,
                qemu_plugin_cond::QEMU_PLUGIN_COND_NE,
                self.pending_in,
                0,
                std::ptr::null_mut(),
            );
        }
    }

    /// The registers' handles, looked up in the first callback that reads one (the
    /// register list needs a vCPU).
    fn registers(&self) -> Option<&Registers> {
        self.registers
            .get_or_init(|| {
                // SAFETY: called from a vCPU callback; the list QEMU returns is ours
                // to free, its names are static.
                unsafe {
                    let list = qemu_plugin_get_registers();
                    if list.is_null() {
                        return None;
                    }
                    let descriptors = std::slice::from_raw_parts(
                        (*list).data as *const qemu_plugin_reg_descriptor,
                        (*list).len as usize,
                    );
                    let find = |names: [&str; 2]| {
                        descriptors
                            .iter()
                            .find(|d| {
                                let name = std::ffi::CStr::from_ptr(d.name).to_string_lossy();
                                names.contains(&&*name)
                            })
                            .map(|d| d.handle)
                    };
                    let registers = find(["rax", "eax"])
                        .zip(find(["rdx", "edx"]))
                        .map(|(accumulator, dx)| Registers { accumulator, dx });
                    g_array_free(list, 1);
                    if registers.is_none() {
                        tracing::error!(
                            "mmio_trace: QEMU lists no eax/edx register: port I/O is not recorded"
                        );
                    }
                    registers
                }
            })
            .as_ref()
    }

    /// The low 8 bytes of register `handle` of vCPU `cpu`, read into the vCPU's own
    /// buffer (made once).
    ///
    /// # Safety
    /// Called from a callback of vCPU `cpu` registered with `QEMU_PLUGIN_CB_R_REGS`.
    unsafe fn read(&self, cpu: usize, handle: *mut qemu_plugin_register) -> Option<u64> {
        let slot = self.vcpus.get(cpu)?;
        let mut buffer = slot.buffer.load(Ordering::Relaxed);
        // SAFETY: per the function's contract; the buffer is this vCPU's alone.
        unsafe {
            if buffer.is_null() {
                buffer = g_byte_array_sized_new(16);
                slot.buffer.store(buffer, Ordering::Relaxed);
            }
            g_byte_array_set_size(buffer, 0);
            let read = qemu_plugin_read_register(handle, buffer);
            if read <= 0 {
                return None;
            }
            let bytes = std::slice::from_raw_parts((*buffer).data, (*buffer).len as usize);
            let mut value = [0u8; 8];
            let len = bytes.len().min(8);
            value[..len].copy_from_slice(&bytes[..len]);
            // x86 registers come in the target's (little-endian) order.
            Some(u64::from_le_bytes(value))
        }
    }

    /// The port `site` names for vCPU `cpu`: its immediate, or `dx` now.
    ///
    /// # Safety
    /// As [`PortIo::read`].
    unsafe fn port(&self, cpu: usize, site: &PortSite) -> Option<u64> {
        match site.port {
            PortOperand::Immediate(port) => Some(u64::from(port)),
            // SAFETY: per the function's contract.
            PortOperand::Dx => {
                unsafe { self.read(cpu, self.registers()?.dx) }.map(|dx| dx & 0xffff)
            }
        }
    }
}

/// Records a port access of `size` bytes by the instruction of `site` on vCPU `cpu`.
fn record(
    cpu: c_uint,
    site: &PortSite,
    access: Access,
    port: u64,
    size: u8,
    value: u64,
    count: Option<u64>,
) {
    with_plugin(|plugin| {
        plugin.tracer.on_access(&GuestAccess {
            cpu,
            access,
            pc: site.pc,
            vaddr: port,
            size,
            value,
            // `helper_out*` / `helper_in*` go through QEMU's native (x86: little-endian)
            // accessors of the I/O address space.
            byte_order: ByteOrder::Little,
            instr_count: count,
            landing: Landing::Port { port },
        });
    });
}

unsafe extern "C" fn on_port_instruction(cpu: c_uint, userdata: *mut c_void) {
    with_plugin(|plugin| {
        let Some(ports) = &plugin.ports else { return };
        let site = PortSite::unpack(userdata as usize as u64);
        let index = cpu as usize;
        // SAFETY: this callback is registered with QEMU_PLUGIN_CB_R_REGS, on vCPU `cpu`.
        let Some(port) = (unsafe { ports.port(index, &site) }) else {
            return;
        };
        let count = instructions_retired(plugin, cpu);
        match site.access {
            Access::Write => {
                let Some(registers) = ports.registers() else {
                    return;
                };
                // SAFETY: as above.
                if let Some(value) = unsafe { ports.read(index, registers.accumulator) } {
                    record(cpu, &site, Access::Write, port, site.size, value, count);
                }
            }
            _ => {
                let Some(slot) = ports.vcpus.get(index) else {
                    return;
                };
                slot.site.store(userdata as usize as u64, Ordering::Relaxed);
                slot.port.store(port, Ordering::Relaxed);
                slot.instr_count
                    .store(count.unwrap_or(u64::MAX), Ordering::Relaxed);
                // SAFETY: this vCPU's slot of a live scoreboard.
                unsafe { qemu_plugin_u64_set(ports.pending_in, cpu, 1) };
            }
        }
    });
}

/// The first callback of a block after an `in`: the value is in the accumulator.
unsafe extern "C" fn on_in_value(cpu: c_uint, _userdata: *mut c_void) {
    with_plugin(|plugin| {
        let Some(ports) = &plugin.ports else { return };
        // SAFETY: this vCPU's slot of a live scoreboard.
        unsafe { qemu_plugin_u64_set(ports.pending_in, cpu, 0) };
        let index = cpu as usize;
        let Some(slot) = ports.vcpus.get(index) else {
            return;
        };
        let site = PortSite::unpack(slot.site.load(Ordering::Relaxed));
        let Some(registers) = ports.registers() else {
            return;
        };
        // SAFETY: registered with QEMU_PLUGIN_CB_R_REGS, on vCPU `cpu`.
        let Some(value) = (unsafe { ports.read(index, registers.accumulator) }) else {
            return;
        };
        let count = slot.instr_count.load(Ordering::Relaxed);
        record(
            cpu,
            &site,
            Access::Read,
            slot.port.load(Ordering::Relaxed),
            site.size,
            value,
            (count != u64::MAX).then_some(count),
        );
    });
}

/// Before an `ins` / `outs`: its port, for each iteration's access.
unsafe extern "C" fn on_string_start(cpu: c_uint, userdata: *mut c_void) {
    with_plugin(|plugin| {
        let Some(ports) = &plugin.ports else { return };
        let site = PortSite::unpack(userdata as usize as u64);
        let index = cpu as usize;
        let Some(slot) = ports.vcpus.get(index) else {
            return;
        };
        // SAFETY: registered with QEMU_PLUGIN_CB_R_REGS, on vCPU `cpu`.
        let Some(port) = (unsafe { ports.port(index, &site) }) else {
            return;
        };
        slot.port.store(port, Ordering::Relaxed);
        slot.value_store_next.store(false, Ordering::Relaxed);
        let count = instructions_retired(plugin, cpu);
        slot.instr_count
            .store(count.unwrap_or(u64::MAX), Ordering::Relaxed);
    });
}

/// One memory access of an `ins` (its stores) or `outs` (its loads): one port access.
unsafe extern "C" fn on_string_access(
    cpu: c_uint,
    info: qemu_plugin_meminfo_t,
    _vaddr: u64,
    userdata: *mut c_void,
) {
    with_plugin(|plugin| {
        let Some(ports) = &plugin.ports else { return };
        let site = PortSite::unpack(userdata as usize as u64);
        let Some(slot) = ports.vcpus.get(cpu as usize) else {
            return;
        };
        // SAFETY: `info` is valid during this callback; the union member read is the
        // one the type tag names. The width is the memory access's: QEMU's
        // disassembler (capstone 4) names `66 f3 6d` in 32-bit code `rep insl`, which
        // QEMU runs as `insw`.
        let (is_store, value, size) = unsafe {
            let value = qemu_plugin_mem_get_value(info);
            let bits = match value.type_ {
                qemu_plugin_mem_value_type::QEMU_PLUGIN_MEM_VALUE_U8 => u64::from(value.data.u8_),
                qemu_plugin_mem_value_type::QEMU_PLUGIN_MEM_VALUE_U16 => u64::from(value.data.u16_),
                qemu_plugin_mem_value_type::QEMU_PLUGIN_MEM_VALUE_U32 => u64::from(value.data.u32_),
                _ => return,
            };
            (
                qemu_plugin_mem_is_store(info),
                bits,
                1u8 << qemu_plugin_mem_size_shift(info).min(3),
            )
        };
        let access = match (site.access, is_store) {
            // `outs` loads what it writes to the port.
            (Access::Write, false) => Access::Write,
            // `ins`: a dummy store of 0, then the value read from the port.
            (Access::Read, true) => {
                let value_store = slot.value_store_next.fetch_xor(true, Ordering::Relaxed);
                if !value_store {
                    return;
                }
                Access::Read
            }
            _ => return,
        };
        let count = slot.instr_count.load(Ordering::Relaxed);
        record(
            cpu,
            &site,
            access,
            slot.port.load(Ordering::Relaxed),
            size,
            value,
            (count != u64::MAX).then_some(count),
        );
    });
}
