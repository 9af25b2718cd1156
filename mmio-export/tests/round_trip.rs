//! events -> each format -> reader -> the same events.

mod common;

use common::{expected_names, read, sample, write};

#[test]
fn json_lines_keeps_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let (devices, events) = sample();
    for name in ["t.jsonl", "t.ndjson"] {
        let path = dir.path().join(name);
        write(&path, &devices, &events);
        let back = read(&path);
        let got: Vec<_> = back.iter().map(|(e, _, _)| *e).collect();
        // Device ids may differ between tables; compare them by name and kind.
        let strip = |e: &mmio_core::MmioEvent| mmio_core::MmioEvent {
            device: mmio_core::DeviceId(0),
            ..*e
        };
        assert_eq!(
            got.iter().map(strip).collect::<Vec<_>>(),
            events.iter().map(strip).collect::<Vec<_>>()
        );
        let names: Vec<_> = back.into_iter().map(|(_, n, k)| (n, k)).collect();
        assert_eq!(names, expected_names(&devices, &events));
    }
}

#[test]
fn parquet_keeps_every_field_and_the_device_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let (devices, events) = sample();
    write(&path, &devices, &events);
    assert!(!dir.path().join("t.parquet.partial").exists());
    assert!(!dir.path().join("t.parquet.partial.rowgroups").exists());
    let back = read(&path);
    let strip = |e: &mmio_core::MmioEvent| mmio_core::MmioEvent {
        device: mmio_core::DeviceId(0),
        ..*e
    };
    assert_eq!(
        back.iter().map(|(e, _, _)| strip(e)).collect::<Vec<_>>(),
        events.iter().map(strip).collect::<Vec<_>>()
    );
    let names: Vec<_> = back.iter().map(|(_, n, k)| (n.clone(), *k)).collect();
    assert_eq!(names, expected_names(&devices, &events));

    let reader = mmio_export::open_trace(&path).unwrap();
    let info = reader.info().unwrap();
    assert_eq!(info, &common::info());
    // The stored device table gives sizes back.
    let uart = reader.devices().find("pl011", 0x4000_c000).unwrap();
    assert_eq!(reader.devices().get(uart).unwrap().size, 0x1000);
}

#[test]
fn panda_json_keeps_what_the_format_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    let (devices, events) = sample();
    write(&path, &devices, &events);
    let back = read(&path);
    assert_eq!(back.len(), events.len());
    for ((got, name, _), want) in back.iter().zip(&events) {
        assert_eq!(got.access, want.access);
        assert_eq!(got.space, want.space);
        assert_eq!(got.guest_pc, want.guest_pc);
        assert_eq!(got.phys_addr, want.phys_addr);
        assert_eq!(got.virt_addr, want.virt_addr);
        assert_eq!(got.size, want.size);
        assert_eq!(got.value, want.value);
        assert_eq!(
            name.as_deref(),
            devices
                .get(want.device)
                .map(|d| d.name.to_string())
                .as_deref()
        );
    }
    assert_eq!(
        back.iter().map(|(e, _, _)| e.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5, 6, 7]
    );
}

#[test]
fn zero_events_make_valid_files() {
    let dir = tempfile::tempdir().unwrap();
    let devices = mmio_core::DeviceTable::new();
    for name in ["e.json", "e.jsonl", "e.parquet"] {
        let path = dir.path().join(name);
        write(&path, &devices, &[]);
        assert!(read(&path).is_empty(), "{name}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("e.json")).unwrap(),
        "[\n\n]\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("e.jsonl")).unwrap(),
        ""
    );
}

/// Readers over any input, not only paths: every format read from bytes in memory
/// (seekable) and from a stream that cannot seek gives the events read from the file.
#[test]
fn readers_take_any_input() {
    use mmio_export::{open_trace, Format, TraceReader};
    use std::io::Cursor;

    /// A `Read` that is not `Seek`, like a pipe.
    struct Pipe(Cursor<Vec<u8>>);
    impl std::io::Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(buf)
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let (devices, events) = sample();
    for (name, format) in [
        ("t.parquet", Format::Parquet),
        ("t.jsonl", Format::JsonLines),
        ("t.json", Format::PandaJson),
    ] {
        let path = dir.path().join(name);
        write(&path, &devices, &events);
        let from_file: Vec<_> = open_trace(&path).unwrap().map(Result::unwrap).collect();
        assert_eq!(from_file.len(), events.len(), "{name}");
        let bytes = std::fs::read(&path).unwrap();

        let seekable =
            TraceReader::from_seekable(Cursor::new(bytes.clone()), format, name).unwrap();
        assert_eq!(seekable.path(), std::path::Path::new(name));
        let from_seekable: Vec<_> = seekable.map(Result::unwrap).collect();
        assert_eq!(from_seekable, from_file, "{name} from a seekable input");

        let stream = TraceReader::from_stream(Pipe(Cursor::new(bytes)), format, name).unwrap();
        let from_stream: Vec<_> = stream.map(Result::unwrap).collect();
        assert_eq!(from_stream, from_file, "{name} from a stream");
    }
}

/// Row-group statistics are what DuckDB and Spark prune with: unsigned for the u64
/// columns (`value` u64::MAX is the maximum, not -1 the minimum), present where they
/// prune, left out where every group has the same values.
#[test]
fn parquet_statistics_are_unsigned_and_only_where_they_prune() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::statistics::Statistics;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let (devices, events) = sample();
    write(&path, &devices, &events);
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let group = reader.metadata().row_group(0);
    let statistics = |name: &str| {
        group
            .columns()
            .iter()
            .find(|c| c.column_path().string() == name)
            .unwrap_or_else(|| panic!("no column {name}"))
            .statistics()
            .cloned()
    };
    let Some(Statistics::Int64(value)) = statistics("value") else {
        panic!("no statistics for value");
    };
    assert_eq!(
        (
            *value.min_opt().unwrap() as u64,
            *value.max_opt().unwrap() as u64
        ),
        (0, u64::MAX)
    );
    let Some(Statistics::Int64(pc)) = statistics("guest_pc") else {
        panic!("no statistics for guest_pc");
    };
    assert_eq!(
        (*pc.min_opt().unwrap(), *pc.max_opt().unwrap()),
        (0x1f4, 0x1c00_6490)
    );
    let Some(Statistics::ByteArray(device)) = statistics("device") else {
        panic!("no statistics for device");
    };
    assert_eq!(
        device.min_opt().unwrap().as_utf8().unwrap(),
        "flash-control"
    );
    for name in ["type", "space", "device_kind", "run"] {
        assert!(statistics(name).is_none(), "{name} has statistics");
    }
}

/// Files of format versions 1 and 2 have no `space` column (and version 1 no `run`):
/// every event was a memory access, and they read as such.
#[test]
fn parquet_files_of_older_versions_read_as_memory_accesses() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ArrowWriter;

    let dir = tempfile::tempdir().unwrap();
    let current = dir.path().join("v3.parquet");
    let (devices, events) = sample();
    let memory: Vec<_> = events
        .iter()
        .filter(|e| e.space == mmio_core::Space::Memory)
        .copied()
        .collect();
    write(&current, &devices, &memory);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&current).unwrap()).unwrap();
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    let batches: Vec<_> = builder.build().unwrap().map(Result::unwrap).collect();
    for (version, dropped) in [("2", &["space"][..]), ("1", &["space", "run"][..])] {
        let old = dir.path().join(format!("v{version}.parquet"));
        let keep: Vec<usize> = batches[0]
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| !dropped.contains(&f.name().as_str()))
            .map(|(i, _)| i)
            .collect();
        let schema = std::sync::Arc::new(batches[0].schema().project(&keep).unwrap());
        let properties = parquet::file::properties::WriterProperties::builder()
            .set_key_value_metadata(Some(
                metadata
                    .iter()
                    .map(|kv| match kv.key.as_str() {
                        "mmio_trace.format_version" => parquet::file::metadata::KeyValue::new(
                            kv.key.clone(),
                            version.to_string(),
                        ),
                        _ => kv.clone(),
                    })
                    .collect(),
            ))
            .build();
        let mut writer = ArrowWriter::try_new(
            std::fs::File::create(&old).unwrap(),
            schema,
            Some(properties),
        )
        .unwrap();
        for batch in &batches {
            writer.write(&batch.project(&keep).unwrap()).unwrap();
        }
        writer.close().unwrap();
        assert_eq!(read(&old), read(&current), "version {version}");
    }
}
