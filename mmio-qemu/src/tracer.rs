//! What the plugin decides for each memory access, independent of QEMU's types so
//! that it is tested without QEMU.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use mmio_core::{
    Access, DeviceId, DeviceKind, DeviceTable, EmulatorNameResolver, MemoryMap, MmioEvent,
    Recorder, RecorderConfig, RecorderError, RecorderSummary,
};
use mmio_export::{create_writer, ExportError, TraceInfo};
use thiserror::Error;

use crate::PluginArgs;

#[derive(Debug, Error)]
pub enum SetupError {
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("mtree={}: {source}", path.display())]
    ReadMtree {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("mtree={}: {source}", path.display())]
    ParseMtree {
        path: std::path::PathBuf,
        source: mmio_core::MtreeError,
    },
    #[error(transparent)]
    Recorder(#[from] RecorderError),
}

/// What QEMU's `qemu_plugin_get_hwaddr` said about an access.
#[derive(Clone, Copy, Debug)]
pub struct HwAccess<'a> {
    pub is_io: bool,
    /// Absolute guest-physical address.
    pub phys_addr: u64,
    /// `qemu_plugin_hwaddr_device_name`: the region's name, or `anon…`.
    pub device_name: Option<&'a str>,
}

/// One guest memory access as the callback sees it.
#[derive(Clone, Copy, Debug)]
pub struct GuestAccess<'a> {
    pub cpu: u32,
    pub pc: u64,
    pub vaddr: u64,
    pub is_store: bool,
    pub size: u8,
    pub value: u64,
    /// `None` when QEMU could not look the access up (the access flushed the TLB).
    pub hw: Option<HwAccess<'a>>,
    pub instr_count: Option<u64>,
}

pub struct Tracer {
    recorder: Recorder,
    resolver: EmulatorNameResolver<MemoryMap>,
    has_map: bool,
    /// Every I/O access so far had `phys == virt` (M-profile, or no MMU yet), so an
    /// access QEMU could not look up can take its virtual address as physical.
    identity_mapping: AtomicBool,
    unresolved: AtomicU64,
}

impl Tracer {
    pub fn start(args: &PluginArgs, info: TraceInfo) -> Result<Tracer, SetupError> {
        let devices = Arc::new(DeviceTable::new());
        let map = match &args.mtree {
            Some(path) => load_mtree(path, &devices)?,
            None => MemoryMap::new(),
        };
        let writer = create_writer(&args.out_log, info)?;
        let config = RecorderConfig {
            filter: args.filter.clone(),
            ..RecorderConfig::default()
        };
        let recorder = Recorder::start(config, devices.clone(), vec![writer])?;
        Ok(Tracer {
            recorder,
            has_map: args.mtree.is_some(),
            resolver: EmulatorNameResolver::new(map, devices),
            identity_mapping: AtomicBool::new(true),
            unresolved: AtomicU64::new(0),
        })
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Records `access` if it reached an I/O region. Returns whether it was recorded.
    pub fn on_access(&self, access: &GuestAccess<'_>) -> bool {
        let (phys_addr, resolved) = match access.hw {
            Some(hw) if !hw.is_io => return false,
            Some(hw) => {
                if hw.phys_addr != access.vaddr {
                    self.identity_mapping.store(false, Ordering::Relaxed);
                }
                let resolved =
                    self.resolver
                        .resolve_named(hw.device_name, hw.phys_addr, access.size);
                (Some(hw.phys_addr), resolved)
            }
            None => {
                // The access flushed the TLB before QEMU could describe it (e.g. a
                // write to MPU_CTRL). Keep it if the map says it is I/O.
                let phys = self
                    .identity_mapping
                    .load(Ordering::Relaxed)
                    .then_some(access.vaddr);
                let resolved = phys.and_then(|p| self.resolver.fallback().lookup(p));
                let kind = resolved.and_then(|r| self.resolver_devices().kind(r.device));
                match kind {
                    Some(DeviceKind::Device | DeviceKind::Unimplemented) => {}
                    Some(_) => return false,
                    None if self.has_map => return false,
                    None => {}
                }
                (phys, resolved)
            }
        };
        let (device, base) = match resolved {
            Some(found) => (found.device, found.base),
            // QEMU dispatches a hole of the map to its anonymous "unassigned" region.
            None if self.has_map => (DeviceId::UNASSIGNED, 0),
            None => {
                self.unresolved.fetch_add(1, Ordering::Relaxed);
                (DeviceId::UNKNOWN, 0)
            }
        };
        let address = phys_addr.unwrap_or(access.vaddr);
        self.recorder.record(MmioEvent {
            seq: 0,
            cpu: access.cpu,
            access: if access.is_store {
                Access::Write
            } else {
                Access::Read
            },
            guest_pc: access.pc,
            phys_addr,
            virt_addr: access.vaddr,
            offset: address.wrapping_sub(base),
            size: access.size,
            value: MmioEvent::mask_value(access.value, access.size),
            device,
            instr_count: access.instr_count,
        })
    }

    fn resolver_devices(&self) -> &DeviceTable {
        self.recorder.devices()
    }

    /// Flushes and finishes the trace file.
    pub fn finish(&self) -> Result<RecorderSummary, RecorderError> {
        let summary = self.recorder.finish();
        let unresolved = self.unresolved.load(Ordering::Relaxed);
        if unresolved > 0 {
            tracing::warn!(
                "{unresolved} events have no device name: QEMU left their region anonymous; pass mtree=FILE (an `info mtree -f` dump) or use `mmio-trace qemu`, which does"
            );
        }
        summary
    }
}

fn load_mtree(path: &Path, devices: &DeviceTable) -> Result<MemoryMap, SetupError> {
    let text = std::fs::read_to_string(path).map_err(|source| SetupError::ReadMtree {
        path: path.to_path_buf(),
        source,
    })?;
    MemoryMap::from_mtree(&text, devices).map_err(|source| SetupError::ParseMtree {
        path: path.to_path_buf(),
        source,
    })
}

/// Bytes in a guest word, from QEMU's target name.
pub fn word_size(target_name: &str) -> u8 {
    match target_name {
        "aarch64" | "x86_64" | "mips64" | "mips64el" | "ppc64" | "riscv64" | "s390x"
        | "sparc64" | "loongarch64" | "alpha" => 8,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmio_export::open_trace;

    const LM3S_MTREE: &str = include_str!("../../mmio-core/tests/fixtures/lm3s6965evb.mtree");

    fn tracer(dir: &Path, mtree: bool) -> (Tracer, std::path::PathBuf) {
        let out = dir.join("t.jsonl");
        let mtree_path = dir.join("m.txt");
        std::fs::write(&mtree_path, LM3S_MTREE).unwrap();
        let args = PluginArgs {
            out_log: out.clone(),
            mtree: mtree.then_some(mtree_path),
            ..PluginArgs::default()
        };
        (Tracer::start(&args, TraceInfo::default()).unwrap(), out)
    }

    fn access<'a>(
        vaddr: u64,
        hw: Option<HwAccess<'a>>,
        is_store: bool,
        value: u64,
    ) -> GuestAccess<'a> {
        GuestAccess {
            cpu: 0,
            pc: 0x100,
            vaddr,
            is_store,
            size: 4,
            value,
            hw,
            instr_count: None,
        }
    }

    fn io(phys_addr: u64, name: &str) -> Option<HwAccess<'_>> {
        Some(HwAccess {
            is_io: true,
            phys_addr,
            device_name: Some(name),
        })
    }

    fn read_back(out: &Path) -> Vec<(u64, Option<u64>, u64, Option<String>)> {
        let mut reader = open_trace(out).unwrap();
        let events: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
        events
            .iter()
            .map(|e| {
                (
                    e.virt_addr,
                    e.phys_addr,
                    e.offset,
                    reader.devices().get(e.device).map(|d| d.name.to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn ram_is_skipped_and_anonymous_regions_are_named_from_the_map() {
        let dir = tempfile::tempdir().unwrap();
        let (tracer, out) = tracer(dir.path(), true);
        let ram = Some(HwAccess {
            is_io: false,
            phys_addr: 0x2000_0000,
            device_name: Some("RAM"),
        });
        assert!(!tracer.on_access(&access(0x2000_0000, ram, true, 1)));
        assert!(tracer.on_access(&access(
            0xe000_e018,
            io(0xe000_e018, "anon5a3c1e80"),
            false,
            0x5
        )));
        assert!(tracer.on_access(&access(0x4000_c018, io(0x4000_c018, "pl011"), false, 0x90)));
        // MPU_CTRL: QEMU could not describe the access; the map says it is the NVIC.
        assert!(tracer.on_access(&access(0xe000_ed94, None, true, 0x5)));
        // A TLB-flushing access to RAM is not I/O.
        assert!(!tracer.on_access(&access(0x2000_0004, None, true, 0x5)));
        // A hole in the map: QEMU's anonymous "unassigned" region.
        assert!(tracer.on_access(&access(
            0x4000_1000,
            io(0x4000_1000, "anon7f3a0000"),
            false,
            0
        )));
        tracer.finish().unwrap();
        assert_eq!(
            read_back(&out),
            [
                (
                    0xe000_e018,
                    Some(0xe000_e018),
                    8,
                    Some("v7m_systick".into())
                ),
                (0x4000_c018, Some(0x4000_c018), 0x18, Some("pl011".into())),
                (
                    0xe000_ed94,
                    Some(0xe000_ed94),
                    0xd94,
                    Some("nvic_sysregs".into())
                ),
                (0x4000_1000, Some(0x4000_1000), 0x4000_1000, None),
            ]
        );
        let mut reader = open_trace(&out).unwrap();
        let last = reader.by_ref().map(Result::unwrap).last().unwrap();
        assert_eq!(
            reader.devices().kind(last.device),
            Some(DeviceKind::Unassigned)
        );
    }

    #[test]
    fn without_a_map_names_are_kept_and_anonymous_ones_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let (tracer, out) = tracer(dir.path(), false);
        assert!(tracer.on_access(&access(0x4000_c018, io(0x4000_c018, "pl011"), false, 0x90)));
        assert!(tracer.on_access(&access(
            0xe000_e018,
            io(0xe000_e018, "anon5a3c1e80"),
            false,
            0x5
        )));
        tracer.finish().unwrap();
        assert_eq!(
            read_back(&out),
            [
                (
                    0x4000_c018,
                    Some(0x4000_c018),
                    0x4000_c018,
                    Some("pl011".into())
                ),
                (0xe000_e018, Some(0xe000_e018), 0xe000_e018, None),
            ]
        );
    }

    #[test]
    fn a_translated_access_keeps_both_addresses_and_stops_the_identity_guess() {
        let dir = tempfile::tempdir().unwrap();
        let (tracer, out) = tracer(dir.path(), true);
        assert!(tracer.on_access(&access(0xf000_c000, io(0x4000_c000, "pl011"), true, 0x4148)));
        // Now an untranslatable access has no physical address.
        assert!(!tracer.on_access(&access(0xf000_c004, None, true, 1)));
        tracer.finish().unwrap();
        assert_eq!(
            read_back(&out),
            [(0xf000_c000, Some(0x4000_c000), 0, Some("pl011".into()))]
        );
    }

    #[test]
    fn values_are_masked_to_the_access_size() {
        let dir = tempfile::tempdir().unwrap();
        let (tracer, out) = tracer(dir.path(), true);
        let byte = GuestAccess {
            size: 1,
            ..access(0x4000_c000, io(0x4000_c000, "pl011"), true, 0xffff_ff48)
        };
        tracer.on_access(&byte);
        tracer.finish().unwrap();
        let event = open_trace(&out).unwrap().next().unwrap().unwrap();
        assert_eq!((event.size, event.value), (1, 0x48));
    }

    #[test]
    fn word_sizes_follow_the_target() {
        assert_eq!(word_size("arm"), 4);
        assert_eq!(word_size("aarch64"), 8);
        assert_eq!(word_size("x86_64"), 8);
        assert_eq!(word_size("i386"), 4);
    }
}
