//! The optional name columns (`function`, `register`) of an annotated output
//! (`convert --symbols --svd`): written beside the recorded columns in Parquet and
//! JSON Lines, invisible to the event readers, refused by the PANDA JSON format.

mod common;

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::RecordBatch;
use mmio_core::MmioEvent;
use mmio_export::{
    create_annotated_output, open_trace, recover_parquet, trace_files, Annotate, NameColumns,
    OutputOptions,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Names the sample's UART write and SysTick read.
struct SampleNames {
    columns: NameColumns,
}

impl Annotate for SampleNames {
    fn columns(&self) -> NameColumns {
        self.columns
    }
    fn function(&self, event: &MmioEvent) -> Option<&str> {
        match event.guest_pc {
            0x1f4 => Some("uart_putc"),
            0x200 => Some("systick_wait"),
            _ => None,
        }
    }
    fn register(&self, event: &MmioEvent) -> Option<&str> {
        match event.phys_addr? {
            0x4000_c000 => Some("UART0.DR"),
            0xe000_e018 => Some("SysTick.CVR"),
            _ => None,
        }
    }
}

fn both() -> Arc<dyn Annotate> {
    Arc::new(SampleNames {
        columns: NameColumns::default().with_function().with_register(),
    })
}

fn write(path: &Path, names: Arc<dyn Annotate>) {
    let (devices, events) = common::sample();
    let mut writer =
        create_annotated_output(path, &OutputOptions::default(), common::info(), names).unwrap();
    writer.write(&events, &devices).unwrap();
    writer.finish(&devices).unwrap();
}

fn batches(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A dictionary column's values row by row.
fn names(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for batch in batches {
        let dictionary = batch
            .column_by_name(column)
            .unwrap_or_else(|| panic!("no column {column}"))
            .as_dictionary::<UInt32Type>();
        let values = dictionary.values().as_string::<i32>();
        out.extend(
            dictionary
                .keys()
                .iter()
                .map(|key| key.map(|key| values.value(key as usize).to_string())),
        );
    }
    out
}

fn some(names: &[Option<&str>]) -> Vec<Option<String>> {
    names.iter().map(|n| n.map(str::to_string)).collect()
}

#[test]
fn parquet_carries_the_name_columns_after_the_recorded_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("named.parquet");
    write(&path, both());
    let batches = batches(&path);
    let schema = batches[0].schema();
    let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        &columns[columns.len() - 3..],
        ["run", "function", "register"]
    );
    assert_eq!(
        names(&batches, "function"),
        some(&[
            Some("uart_putc"),
            Some("systick_wait"),
            None,
            None,
            None,
            None,
            None,
            None
        ])
    );
    assert_eq!(
        names(&batches, "register"),
        some(&[
            Some("UART0.DR"),
            Some("SysTick.CVR"),
            None,
            None,
            None,
            None,
            None,
            None
        ])
    );
    // The event readers see the recorded columns only, unchanged.
    let plain = dir.path().join("plain.parquet");
    let (devices, events) = common::sample();
    common::write(&plain, &devices, &events);
    assert_eq!(common::read(&path), common::read(&plain));
}

#[test]
fn only_the_columns_asked_for_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("functions.parquet");
    write(
        &path,
        Arc::new(SampleNames {
            columns: NameColumns::default().with_function(),
        }),
    );
    let batches = batches(&path);
    assert!(batches[0].column_by_name("register").is_none());
    assert_eq!(names(&batches, "function")[0].as_deref(), Some("uart_putc"));
}

#[test]
fn json_lines_carry_the_names_after_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("named.jsonl");
    write(&path, both());
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8);
    assert!(
        lines[0].ends_with(r#","run":"run-1","function":"uart_putc","register":"UART0.DR"}"#),
        "{}",
        lines[0]
    );
    assert!(
        lines[2].ends_with(r#","run":"run-1","function":null,"register":null}"#),
        "{}",
        lines[2]
    );
    let plain = dir.path().join("plain.jsonl");
    let (devices, events) = common::sample();
    common::write(&plain, &devices, &events);
    assert_eq!(common::read(&path), common::read(&plain));
}

#[test]
fn panda_json_refuses_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("named.json");
    let error = create_annotated_output(&path, &OutputOptions::default(), common::info(), both())
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: the PANDA JSON format has no function or register column: write .parquet or .jsonl",
            path.display()
        )
    );
    assert!(!dir.path().join("named.json.partial").exists());
}

#[test]
fn every_part_of_a_directory_carries_the_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("parts/");
    let mut options = OutputOptions::default();
    options.rotate = Some(4);
    let (devices, events) = common::sample();
    let mut writer = create_annotated_output(&out, &options, common::info(), both()).unwrap();
    writer.write(&events, &devices).unwrap();
    writer.finish(&devices).unwrap();
    let parts = trace_files(&[out]).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(
        names(&batches(&parts[1]), "register"),
        some(&[None, None, None, None])
    );
    assert_eq!(
        names(&batches(&parts[0]), "function"),
        some(&[Some("uart_putc"), Some("systick_wait"), None, None])
    );
}

#[test]
fn a_killed_annotated_run_is_recovered_without_its_name_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let (devices, sample) = common::sample();
    // One full row group of 1 Mi rows and part of a second.
    let events: Vec<MmioEvent> = (0..1024 * 1024 + 5_000u64)
        .map(|n| MmioEvent {
            seq: n,
            ..sample[(n % sample.len() as u64) as usize]
        })
        .collect();
    let mut writer =
        create_annotated_output(&path, &OutputOptions::default(), common::info(), both()).unwrap();
    for chunk in events.chunks(4096) {
        writer.write(chunk, &devices).unwrap();
    }
    std::mem::forget(writer);
    let summary = recover_parquet(&dir.path().join("t.parquet.partial"), &path).unwrap();
    assert_eq!(summary.events, 1024 * 1024);
    let recovered: Vec<u64> = open_trace(&path).unwrap().map(|e| e.unwrap().seq).collect();
    assert_eq!(recovered, (0..1024 * 1024).collect::<Vec<u64>>());
    assert!(batches(&path)[0].column_by_name("function").is_none());
}

#[test]
fn an_annotated_trace_without_events_still_has_the_name_columns() {
    let dir = tempfile::tempdir().unwrap();
    let (devices, _) = common::sample();
    for out in [dir.path().join("empty.parquet"), dir.path().join("parts/")] {
        let mut writer =
            create_annotated_output(&out, &OutputOptions::default(), common::info(), both())
                .unwrap();
        writer.finish(&devices).unwrap();
        let files = trace_files(std::slice::from_ref(&out)).unwrap();
        assert_eq!(files.len(), 1, "{out:?}");
        let schema = ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0]).unwrap())
            .unwrap()
            .schema()
            .clone();
        for column in ["function", "register"] {
            assert!(schema.field_with_name(column).is_ok(), "{out:?}: {column}");
        }
        assert_eq!(open_trace(&files[0]).unwrap().count(), 0);
    }
}
