//! Column scans give the events the readers give, on any number of threads.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use mmio_core::{Access, DeviceTable, MmioEvent};
use mmio_export::{create_output, scan, trace_files, ExportError, OutputOptions, TraceSet, Wanted};

/// The scan's rows as (seq, access, pc, address, offset, device name, value).
type Row = (u64, Access, u64, u64, u64, Option<String>, u64);

fn scanned(paths: &[PathBuf], threads: usize) -> Result<Vec<Row>, ExportError> {
    let devices = Arc::new(DeviceTable::new());
    let mut wanted = Wanted::default();
    wanted.value = true;
    let partials = scan(
        paths,
        wanted,
        threads,
        &devices,
        Vec::new,
        |rows: &mut Vec<Row>, c| {
            for i in 0..c.len() {
                let name = devices.get(c.device[i]).map(|d| d.name.to_string());
                rows.push((
                    c.seq[i],
                    c.access[i],
                    c.guest_pc[i],
                    c.address[i],
                    c.offset[i],
                    name,
                    c.value[i],
                ));
            }
        },
    )?;
    assert!(partials.len() <= threads);
    let mut rows: Vec<Row> = partials.into_iter().flatten().collect();
    rows.sort_by_key(|row| row.0);
    Ok(rows)
}

fn read(paths: &[PathBuf]) -> Vec<Row> {
    let mut set = TraceSet::open(paths).unwrap();
    let events: Vec<MmioEvent> = set.by_ref().map(Result::unwrap).collect();
    events
        .iter()
        .map(|e| {
            let name = set.devices().get(e.device).map(|d| d.name.to_string());
            (
                e.seq,
                e.access,
                e.guest_pc,
                e.phys_addr.unwrap_or(e.virt_addr),
                e.offset,
                name,
                e.value,
            )
        })
        .collect()
}

#[test]
fn scans_match_the_readers_in_every_format_and_thread_count() {
    let (devices, sample) = common::sample();
    let events: Vec<MmioEvent> = (0..40)
        .map(|n| MmioEvent {
            seq: n,
            ..sample[n as usize % sample.len()]
        })
        .collect();
    let root = tempfile::tempdir().unwrap();
    for (dir, format) in [
        ("parquet/", None),
        ("jsonl/", Some(mmio_export::Format::JsonLines)),
    ] {
        let dir = root.path().join(dir);
        let mut options = OutputOptions::default();
        options.rotate = Some(7);
        options.format = format;
        let mut out = create_output(&dir, &options, common::info()).unwrap();
        out.write(&events, &devices).unwrap();
        out.finish(&devices).unwrap();
        assert_eq!(trace_files(std::slice::from_ref(&dir)).unwrap().len(), 6);
        let want = read(std::slice::from_ref(&dir));
        assert_eq!(want.len(), 40);
        for threads in [1, 2, 4] {
            assert_eq!(
                scanned(std::slice::from_ref(&dir), threads).unwrap(),
                want,
                "{threads} threads"
            );
        }
    }
}

#[test]
fn a_bad_file_stops_the_scan_with_its_name() {
    let root = tempfile::tempdir().unwrap();
    let cut = root.path().join("cut.parquet");
    std::fs::write(&cut, b"PAR1 cut short").unwrap();
    assert!(matches!(
        scanned(&[cut], 2),
        Err(ExportError::Incomplete { .. })
    ));
    let bad = root.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"seq\":0}\n").unwrap();
    let error = scanned(std::slice::from_ref(&bad), 2)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!("{}: line 1: missing field", bad.display())),
        "{error}"
    );
}
