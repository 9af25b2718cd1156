//! Traces written by mmio-export open in DuckDB and pandas with the declared types,
//! exact values near 2^64 and the right per-device counts.

use std::sync::Arc;

use integration_tests::python_check;
use mmio_core::{Access, DeviceId, DeviceKind, DeviceTable, MmioEvent};
use mmio_export::{create_writer, TraceInfo};

fn events() -> (Arc<DeviceTable>, Vec<MmioEvent>) {
    let devices = Arc::new(DeviceTable::new());
    let uart = devices
        .intern("pl011", 0x4000_c000, 0x1000, DeviceKind::Device)
        .unwrap();
    let odd = devices
        .intern(
            "odd \"quoted\" \\ name",
            0x5000_0000,
            0x100,
            DeviceKind::Device,
        )
        .unwrap();
    let base = MmioEvent {
        seq: 0,
        cpu: 0,
        access: Access::Read,
        space: mmio_core::Space::Memory,
        guest_pc: 0xffff_ffff_ffff_fff0,
        phys_addr: Some(0xffff_ffff_ffff_f000),
        virt_addr: 0xffff_ffff_ffff_f000,
        offset: 0,
        size: 8,
        value: u64::MAX,
        device: uart,
        instr_count: Some(u64::MAX - 1),
    };
    let events = vec![
        base,
        MmioEvent {
            seq: 1,
            value: 1 << 63,
            ..base
        },
        MmioEvent {
            seq: 2,
            access: Access::Write,
            value: 0x41,
            size: 1,
            device: odd,
            phys_addr: None,
            instr_count: None,
            ..base
        },
        MmioEvent {
            seq: 3,
            value: 0,
            device: DeviceId::UNASSIGNED,
            ..base
        },
    ];
    (devices, events)
}

#[test]
fn parquet_and_json_lines_open_in_duckdb_and_pandas() {
    let dir = tempfile::tempdir().unwrap();
    let (devices, events) = events();
    for name in ["t.parquet", "t.jsonl"] {
        let path = dir.path().join(name);
        let mut writer = create_writer(&path, TraceInfo::default()).unwrap();
        writer.write(&events, &devices).unwrap();
        writer.finish(&devices).unwrap();
        python_check(
            &path,
            &[
                (Some("pl011"), 2),
                (Some("odd \"quoted\" \\ name"), 1),
                (None, 1),
            ],
            u64::MAX,
        );
    }
}

#[test]
fn empty_traces_open_in_duckdb_and_pandas() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.parquet");
    let devices = DeviceTable::new();
    let mut writer = create_writer(&path, TraceInfo::default()).unwrap();
    writer.finish(&devices).unwrap();
    python_check(&path, &[], 0);
}
