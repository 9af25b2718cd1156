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
    // What a killed run left, and a file merely cut short.
    let killed = root.path().join("killed.parquet.partial");
    std::fs::write(&killed, b"PAR1 cut short").unwrap();
    assert!(matches!(
        scanned(&[killed], 2),
        Err(ExportError::Incomplete { .. })
    ));
    let cut = root.path().join("cut.parquet");
    std::fs::write(&cut, b"PAR1 cut short").unwrap();
    assert_eq!(
        scanned(std::slice::from_ref(&cut), 2)
            .unwrap_err()
            .to_string(),
        format!(
            "{}: truncated or corrupt Parquet file (no footer)",
            cut.display()
        )
    );
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

/// A trace rewritten by another tool (pandas, DuckDB `COPY`): `device` plain strings,
/// `device_kind` dictionary-encoded with signed keys, several batches. The scan and the
/// reader agree (found in review: the scan indexed its cache by row).
#[test]
fn scans_read_plain_and_signed_key_string_columns() {
    use arrow_array::types::Int32Type;
    use arrow_array::{
        ArrayRef, DictionaryArray, RecordBatch, StringArray, UInt32Array, UInt64Array, UInt8Array,
    };
    use arrow_schema::{DataType, Field, Schema};

    let rows = 70_000u64; // More than one batch of the scan.
    let names = ["pl011", "v7m_systick"];
    let schema = Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("cpu", DataType::UInt32, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("guest_pc", DataType::UInt64, false),
        Field::new("phys_addr", DataType::UInt64, true),
        Field::new("virt_addr", DataType::UInt64, false),
        Field::new("offset", DataType::UInt64, false),
        Field::new("size", DataType::UInt8, false),
        Field::new("value", DataType::UInt64, false),
        Field::new("device", DataType::Utf8, true),
        Field::new(
            "device_kind",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            true,
        ),
        Field::new("instr_count", DataType::UInt64, true),
    ]));
    let device = |n: u64| names[(n % 2) as usize];
    let base = |n: u64| {
        if n.is_multiple_of(2) {
            0x4000_c000
        } else {
            0xe000_e010
        }
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(0..rows)),
        Arc::new(UInt32Array::from_iter_values((0..rows).map(|_| 0))),
        Arc::new(StringArray::from_iter_values((0..rows).map(|n| {
            if n % 3 == 0 {
                "W"
            } else {
                "R"
            }
        }))),
        Arc::new(UInt64Array::from_iter_values(
            (0..rows).map(|n| 0x100 + n % 7),
        )),
        Arc::new(UInt64Array::from_iter_values(
            (0..rows).map(|n| base(n) + 4 * (n % 4)),
        )),
        Arc::new(UInt64Array::from_iter_values(
            (0..rows).map(|n| base(n) + 4 * (n % 4)),
        )),
        Arc::new(UInt64Array::from_iter_values(
            (0..rows).map(|n| 4 * (n % 4)),
        )),
        Arc::new(UInt8Array::from_iter_values((0..rows).map(|_| 4))),
        Arc::new(UInt64Array::from_iter_values(0..rows)),
        Arc::new(StringArray::from_iter_values((0..rows).map(device))),
        Arc::new(
            (0..rows)
                .map(|_| Some("device"))
                .collect::<DictionaryArray<Int32Type>>(),
        ),
        Arc::new(UInt64Array::from_iter((0..rows).map(|_| None::<u64>))),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rewritten.parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        schema.clone(),
        None,
    )
    .unwrap();
    writer
        .write(&RecordBatch::try_new(schema, columns).unwrap())
        .unwrap();
    writer.close().unwrap();

    let paths = [path];
    let want = read(&paths);
    assert_eq!(want.len(), rows as usize);
    assert_eq!(want[1].5.as_deref(), Some("v7m_systick"));
    assert_eq!(scanned(&paths, 2).unwrap(), want);
}
