//! The plugin's recording: the shared tracer ([`mmio_frontend::tracer`]) plus what
//! only PANDA's front end has, the in-memory copy for `get_mmio_events` and the
//! `on_mmio_event` PPP callback.

use std::sync::Arc;

use mmio_core::{Access, EventSink};
use mmio_export::TraceInfo;
use mmio_frontend::access::{GuestAccess, Landing};
use mmio_frontend::byte_order::ByteOrder;
use mmio_frontend::tracer::{MapSource, SetupError, Tracer};

use crate::args::{retains, PandaArgs};
use crate::c_api::{notify_subscribers, Retention};

/// One access as PANDA's `mmio_after_read` / `mmio_before_write` report it.
#[derive(Clone, Copy, Debug)]
pub struct PandaAccess {
    /// The vCPU's index.
    pub cpu: u32,
    /// Read or write.
    pub access: Access,
    /// Precise PC (`panda_enable_precise_pc`).
    pub pc: u64,
    /// The callback's `vaddr`: the address the guest used.
    pub vaddr: u64,
    /// The callback's `physaddr`: despite its name an offset inside the memory region
    /// (or a shared page), kept only as the offset of last resort.
    pub region_offset: u64,
    /// The absolute physical address, translated from `vaddr`; `None` if that failed.
    pub phys_addr: Option<u64>,
    /// Bytes accessed.
    pub size: u8,
    /// The value read or written.
    pub value: u64,
    /// PANDA's record/replay instruction count at the callback
    /// (`rr_get_guest_instr_count`), which already includes the accessing instruction.
    pub rr_instr_count: Option<u64>,
}

impl PandaAccess {
    /// The access as the shared decision takes it.
    pub fn guest_access(&self) -> GuestAccess<'static> {
        GuestAccess {
            cpu: self.cpu,
            access: self.access,
            pc: self.pc,
            vaddr: self.vaddr,
            size: self.size,
            value: self.value,
            // PANDA's targets run in their own byte order.
            byte_order: ByteOrder::of_target(panda::ARCH_NAME),
            // Retired before the access, as the QEMU front end counts.
            instr_count: self.rr_instr_count.map(|count| count.saturating_sub(1)),
            landing: Landing::Unclassified {
                phys_addr: self.phys_addr,
                region_offset: self.region_offset,
            },
        }
    }
}

/// The loaded plugin's recording.
pub struct PandaTracer {
    tracer: Tracer,
    retention: Option<Arc<Retention>>,
}

impl PandaTracer {
    /// Starts recording as `args` say. The map starts empty: the `MemoryListener`
    /// fills it once the machine exists.
    pub fn start(args: &PandaArgs, info: TraceInfo) -> Result<PandaTracer, SetupError> {
        let retention = retains(args).then(|| Arc::new(Retention::default()));
        let extra_sinks = retention
            .iter()
            .map(|retention| Box::new(retention.sink()) as Box<dyn EventSink>)
            .collect();
        let tracer = Tracer::start(args.tracer_setup(info, MapSource::Empty, extra_sinks))?;
        Ok(PandaTracer { tracer, retention })
    }

    /// The shared tracer.
    pub fn tracer(&self) -> &Tracer {
        &self.tracer
    }

    /// The in-memory copy, with `retain=true`.
    pub fn retention(&self) -> Option<&Arc<Retention>> {
        self.retention.as_ref()
    }

    /// Decides, records, and hands the event to `on_mmio_event` subscribers (if any:
    /// without one, no C event is built).
    pub fn on_access(&self, access: &PandaAccess) {
        if let Some(event) = self.tracer.on_access(&access.guest_access()) {
            self.tracer
                .guard(|| notify_subscribers(&event, self.tracer.devices()));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use mmio_core::{DeviceId, DeviceKind};

    use super::*;

    /// A tracer whose listener reported lm3s6965evb's SRAM, UART, SysTick and a stub
    /// (and virt's CFI flash).
    pub(crate) fn lm3s_tracer(args: &PandaArgs) -> PandaTracer {
        let tracer = PandaTracer::start(args, TraceInfo::default()).unwrap();
        for section in mmio_frontend::test_support::listener_sections() {
            tracer.tracer().space().add(&section);
        }
        tracer
    }

    pub(crate) fn access(vaddr: u64, region_offset: u64, value: u64) -> PandaAccess {
        PandaAccess {
            cpu: 0,
            access: Access::Write,
            pc: 0x5e,
            vaddr,
            region_offset,
            phys_addr: Some(vaddr),
            size: 4,
            value,
            rr_instr_count: Some(3),
        }
    }

    #[test]
    fn the_instruction_count_is_of_the_instructions_before_the_access() {
        let decided = access(0x4000_c018, 0x18, 0x90).guest_access();
        assert_eq!(decided.instr_count, Some(2));
    }

    #[test]
    fn unassigned_and_ram_accesses_reach_the_file_as_the_decision_says() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.jsonl");
        let args = crate::args::parse(&[("out_log", out.to_str().unwrap())]).unwrap();
        let tracer = lm3s_tracer(&args);
        tracer.on_access(&access(0x2000_0100, 0x100, 1));
        tracer.on_access(&PandaAccess {
            access: Access::Read,
            ..access(0x4000_1000, 0x4000_1000, 0)
        });
        tracer.tracer().finish().unwrap();
        let mut reader = mmio_export::open_trace(&out).unwrap();
        let events: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].device, events[0].phys_addr, events[0].offset),
            (DeviceId::UNASSIGNED, Some(0x4000_1000), 0x4000_1000)
        );
        assert_eq!(
            reader.devices().kind(events[0].device),
            Some(DeviceKind::Unassigned)
        );
    }

    /// Issue #15: a panic in the callback path (here injected at the third event) is
    /// contained: the trace is finished with the events before it, and later
    /// callbacks return at once instead of taking PANDA down.
    #[test]
    fn a_panic_in_the_callback_finishes_the_trace_and_the_guest_runs_on() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.parquet");
        let args = crate::args::parse(&[("out_log", out.to_str().unwrap())]).unwrap();
        let tracer = lm3s_tracer(&args);
        tracer.tracer().inject_panic_at(2);
        for value in 0..5 {
            tracer.on_access(&access(0x4000_c000, 0, value));
        }
        assert!(out.exists(), "the trace is finished at the panic");
        let values: Vec<u64> = mmio_export::open_trace(&out)
            .unwrap()
            .map(|event| event.unwrap().value)
            .collect();
        assert_eq!(values, [0, 1]);
        assert_eq!(tracer.tracer().finish().unwrap().events, 2);
    }

    /// Issue #13, PANDA's half of `integration-tests/tests/virt.rs`'s
    /// `a_cfi_flash_query_is_recorded_by_both_front_ends`: the CFI query the firmware
    /// makes of virt's flash, as PANDA's MMIO callbacks report it, over virt's map
    /// (`romd` there, `rom_device` to the listener) gives the events QEMU's plugin
    /// records: the flash commands are writes to a device, not to ROM.
    #[test]
    fn a_cfi_flash_query_is_recorded_as_qemu_records_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.jsonl");
        let args = crate::args::parse(&[("out_log", out.to_str().unwrap())]).unwrap();
        let tracer = PandaTracer::start(&args, TraceInfo::default()).unwrap();
        let mtree = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../mmio-frontend/tests/fixtures/virt.mtree"
        ))
        .unwrap();
        for section in mmio_frontend::mtree::cpu_sections(&mtree).unwrap() {
            tracer.tracer().space().add(&section);
        }
        let query = [
            (Access::Write, 0x154, 0x0098_0098),
            (Access::Read, 0x40, 0x0051_0051),
            (Access::Read, 0x44, 0x0052_0052),
            (Access::Read, 0x48, 0x0059_0059),
            (Access::Write, 0x0, 0x00ff_00ff),
        ];
        for (access, addr, value) in query {
            tracer.on_access(&PandaAccess {
                access,
                ..self::access(addr, addr, value)
            });
        }
        tracer.tracer().finish().unwrap();
        let mut reader = mmio_export::open_trace(&out).unwrap();
        let events: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
        let got: Vec<_> = events
            .iter()
            .map(|e| {
                let device = reader.devices().get(e.device).unwrap();
                (
                    e.access,
                    e.phys_addr,
                    e.offset,
                    e.value,
                    device.name.to_string(),
                    device.kind,
                )
            })
            .collect();
        let want: Vec<_> = query
            .iter()
            .map(|&(access, addr, value)| {
                let name = "virt.flash0".to_string();
                (access, Some(addr), addr, value, name, DeviceKind::Device)
            })
            .collect();
        assert_eq!(got, want);
    }
}
