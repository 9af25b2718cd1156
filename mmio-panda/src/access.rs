//! What the plugin does with each access PANDA reports, without PANDA's types.

use std::sync::Arc;

use mmio_core::{
    Access, DeviceId, DeviceKind, DeviceTable, MmioEvent, Recorder, RecorderConfig, RecorderError,
    RecorderSummary,
};
use mmio_export::{create_writer, ExportError, TraceInfo};

use crate::c_api::Retention;
use crate::{Lookup, PandaArgs, SharedMap};

/// One access as PANDA's `mmio_after_read` / `mmio_before_write` report it.
#[derive(Clone, Copy, Debug)]
pub struct PandaAccess {
    pub cpu: u32,
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
    pub size: u8,
    pub value: u64,
    /// PANDA's record/replay instruction count at the callback
    /// (`rr_get_guest_instr_count`), which already includes the accessing instruction.
    pub rr_instr_count: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessDecision {
    Record(MmioEvent),
    /// A write to clean RAM holding translated code (`TLB_NOTDIRTY`) or to ROM: PANDA
    /// reports it through the MMIO callback, but it is no device access.
    SkipMemory,
}

pub struct Tracer {
    recorder: Recorder,
    map: SharedMap,
    retention: Option<Arc<Retention>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Recorder(#[from] RecorderError),
}

impl Tracer {
    pub fn start(args: &PandaArgs, info: TraceInfo) -> Result<Tracer, SetupError> {
        let devices = Arc::new(DeviceTable::new());
        let mut sinks = Vec::new();
        if let Some(path) = &args.out_log {
            sinks.push(create_writer(path, info)?);
        }
        let retention = args.retain.then(|| Arc::new(Retention::default()));
        if let Some(retention) = &retention {
            sinks.push(Box::new(retention.sink()) as Box<dyn mmio_core::EventSink>);
        }
        let config = RecorderConfig {
            filter: args.filter.clone(),
            ..RecorderConfig::default()
        };
        Ok(Tracer {
            recorder: Recorder::start(config, devices.clone(), sinks)?,
            map: SharedMap::new(devices),
            retention,
        })
    }

    pub fn map(&self) -> &SharedMap {
        &self.map
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    pub fn devices(&self) -> &DeviceTable {
        self.map.devices()
    }

    pub fn retention(&self) -> Option<&Arc<Retention>> {
        self.retention.as_ref()
    }

    /// Names the device from the map of the CPU's address space, at access time.
    ///
    /// Accesses to unmapped addresses reach this callback too (QEMU dispatches them
    /// to its "unassigned" I/O region), so a hole in the map is recorded as
    /// unassigned. PANDA's `unassigned_io_*` callbacks fire for the same accesses, but
    /// with no virtual address and, for reads, before the value exists: not used.
    pub fn decide(&self, access: &PandaAccess) -> AccessDecision {
        let (device, offset) = match access.phys_addr.map(|addr| (addr, self.map.lookup(addr))) {
            Some((_, Lookup::Region(_, DeviceKind::Ram | DeviceKind::Rom))) => {
                return AccessDecision::SkipMemory
            }
            Some((addr, Lookup::Region(resolution, _))) => {
                (resolution.device, addr.wrapping_sub(resolution.base))
            }
            Some((addr, Lookup::Unnamed(base))) => (DeviceId::UNKNOWN, addr.wrapping_sub(base)),
            Some((addr, Lookup::Hole)) => (DeviceId::UNASSIGNED, addr),
            // Untranslated, or no map yet: PANDA's offset is all there is.
            None | Some((_, Lookup::NoMap)) => (DeviceId::UNKNOWN, access.region_offset),
        };
        AccessDecision::Record(MmioEvent {
            seq: 0,
            cpu: access.cpu,
            access: access.access,
            guest_pc: access.pc,
            phys_addr: access.phys_addr,
            virt_addr: access.vaddr,
            offset,
            size: access.size,
            value: MmioEvent::mask_value(access.value, access.size),
            device,
            // The format counts instructions retired *before* the access: checked
            // against QEMU's count on the same firmware (2 before the first store).
            instr_count: access.rr_instr_count.map(|count| count.saturating_sub(1)),
        })
    }

    /// Decides and records; returns the event recorded, if any (with its `seq`).
    pub fn on_access(&self, access: &PandaAccess) -> Option<MmioEvent> {
        match self.decide(access) {
            AccessDecision::Record(event) => self.recorder.record(event).then_some(event),
            AccessDecision::SkipMemory => None,
        }
    }

    pub fn finish(&self) -> Result<RecorderSummary, RecorderError> {
        self.recorder.finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::RegionInfo;

    pub(crate) fn lm3s_tracer(args: &PandaArgs) -> Tracer {
        let tracer = Tracer::start(args, TraceInfo::default()).unwrap();
        let region = |name: &str, first, size, ram, priority| RegionInfo {
            name: Some(name.to_string()),
            first,
            size,
            offset_within_region: 0,
            ram,
            rom_device: false,
            readonly: false,
            priority,
        };
        tracer
            .map()
            .add(&region("stellaris.sram", 0x2000_0000, 0x1_0000, true, 0));
        tracer
            .map()
            .add(&region("pl011", 0x4000_c000, 0x1000, false, 0));
        tracer
            .map()
            .add(&region("v7m_systick", 0xe000_e010, 0xe0, false, 1));
        tracer
            .map()
            .add(&region("flash-control", 0x400f_d000, 0x1000, false, -1000));
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
    fn devices_are_named_from_the_absolute_address_not_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let args =
            PandaArgs::parse(&[("out_log", dir.path().join("t.jsonl").to_str().unwrap())]).unwrap();
        let tracer = lm3s_tracer(&args);
        // Upstream compared PANDA's physaddr 0x18 (an offset) with its ranges.
        let AccessDecision::Record(event) = tracer.decide(&access(0x4000_c018, 0x18, 0x90)) else {
            panic!("UART access skipped");
        };
        assert_eq!(&*tracer.devices().get(event.device).unwrap().name, "pl011");
        assert_eq!(
            (
                event.phys_addr,
                event.offset,
                event.value,
                event.instr_count
            ),
            (Some(0x4000_c018), 0x18, 0x90, Some(2))
        );
        let AccessDecision::Record(event) = tracer.decide(&access(0xe000_e018, 0x8, 5)) else {
            panic!("SysTick access skipped");
        };
        assert_eq!(
            &*tracer.devices().get(event.device).unwrap().name,
            "v7m_systick"
        );
        assert_eq!(event.offset, 8);
        let AccessDecision::Record(event) = tracer.decide(&access(0x400f_d000, 0, 1)) else {
            panic!("stub access skipped");
        };
        assert_eq!(
            tracer.devices().kind(event.device),
            Some(DeviceKind::Unimplemented)
        );
        tracer.finish().unwrap();
    }

    #[test]
    fn unassigned_accesses_have_no_device_and_kind_unassigned() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.jsonl");
        let args = PandaArgs::parse(&[("out_log", out.to_str().unwrap())]).unwrap();
        let tracer = lm3s_tracer(&args);
        // As PANDA reports a read of the hole at 0x40001000 on lm3s6965evb through a
        // virtual alias: the offset it passes is inside the "unassigned" region.
        let read = PandaAccess {
            access: Access::Read,
            phys_addr: Some(0x4000_1000),
            ..access(0xd081_5000, 0x4000_1000, 0)
        };
        let event = tracer.on_access(&read).unwrap();
        assert_eq!(
            (event.device, event.phys_addr, event.virt_addr, event.offset),
            (
                DeviceId::UNASSIGNED,
                Some(0x4000_1000),
                0xd081_5000,
                0x4000_1000
            )
        );
        tracer.finish().unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.contains("\"device\":null,\"device_kind\":\"unassigned\""),
            "{text}"
        );
    }

    #[test]
    fn writes_to_ram_are_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let args =
            PandaArgs::parse(&[("out_log", dir.path().join("t.jsonl").to_str().unwrap())]).unwrap();
        let tracer = lm3s_tracer(&args);
        assert_eq!(
            tracer.decide(&access(0x2000_0040, 0x40, 1)),
            AccessDecision::SkipMemory
        );
        assert_eq!(tracer.on_access(&access(0x2000_0040, 0x40, 1)), None);
        tracer.finish().unwrap();
    }

    #[test]
    fn untranslatable_accesses_keep_panda_offset() {
        let dir = tempfile::tempdir().unwrap();
        let args =
            PandaArgs::parse(&[("out_log", dir.path().join("t.jsonl").to_str().unwrap())]).unwrap();
        let tracer = lm3s_tracer(&args);
        let untranslated = PandaAccess {
            phys_addr: None,
            ..access(0xf000_0018, 0x18, 0x90)
        };
        let AccessDecision::Record(event) = tracer.decide(&untranslated) else {
            panic!("skipped");
        };
        assert_eq!(
            (event.device, event.offset, event.phys_addr),
            (DeviceId::UNKNOWN, 0x18, None)
        );
        tracer.finish().unwrap();
    }
}
