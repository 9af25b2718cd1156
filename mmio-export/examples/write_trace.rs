//! Writes a synthetic trace through the recorder and reports throughput, size and peak
//! memory as one JSON line: `write_trace FILE EVENTS`.
//!
//! The trace looks like firmware polling peripherals: a few devices, a few hundred
//! distinct PCs, small values. Used by `bench/writers.sh`.

use std::sync::Arc;
use std::time::Instant;

use mmio_core::{Access, DeviceId, DeviceKind, DeviceTable, MmioEvent, Recorder, RecorderConfig};
use mmio_export::{create_writer, TraceInfo};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(count)) = (args.next(), args.next()) else {
        return Err("usage: write_trace FILE EVENTS".into());
    };
    let path = std::path::PathBuf::from(path);
    let count: u64 = count.parse()?;
    let devices = Arc::new(DeviceTable::new());
    let ids: Vec<DeviceId> = [
        "pl011",
        "v7m_systick",
        "gptm",
        "pl061",
        "ssys",
        "flash-control",
    ]
    .iter()
    .enumerate()
    .map(|(i, name)| {
        devices
            .intern(
                name,
                0x4000_0000 + i as u64 * 0x1000,
                0x1000,
                DeviceKind::Device,
            )
            .expect("the table has room")
    })
    .collect();
    let writer = create_writer(&path, TraceInfo::now("synthetic", "arm", "bench", 4))?;
    let recorder = Recorder::start(RecorderConfig::default(), devices, vec![writer])?;
    let start = Instant::now();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for n in 0..count {
        // xorshift: cheap, deterministic variety.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let device = (state % ids.len() as u64) as usize;
        let offset = (state >> 8) % 16 * 4;
        let address = 0x4000_0000 + device as u64 * 0x1000 + offset;
        recorder.record(MmioEvent {
            seq: 0,
            cpu: 0,
            access: if state & 3 == 0 {
                Access::Write
            } else {
                Access::Read
            },
            space: mmio_core::Space::Memory,
            guest_pc: 0x800 + (state >> 16) % 300 * 2,
            phys_addr: Some(address),
            virt_addr: address,
            offset,
            size: 4,
            value: (state >> 24) & 0xff,
            device: ids[device],
            instr_count: Some(n * 7),
        });
    }
    let summary = recorder.finish()?;
    let seconds = start.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path)?.len();
    let peak_rss_kib = std::fs::read_to_string("/proc/self/status")?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!(
        "{{\"file\":\"{}\",\"events\":{},\"seconds\":{:.3},\"events_per_second\":{:.0},\"bytes_per_event\":{:.2},\"peak_rss_mib\":{:.1},\"waits\":{}}}",
        path.display(),
        summary.events,
        seconds,
        summary.events as f64 / seconds,
        bytes as f64 / summary.events.max(1) as f64,
        peak_rss_kib as f64 / 1024.0,
        summary.waits
    );
    Ok(())
}
