//! Directory outputs (parts rotated by event count) and trace sets read back as one.

mod common;

use std::path::{Path, PathBuf};

use mmio_core::{DeviceTable, MmioEvent};
use mmio_export::{
    create_output, open_trace, parse_count, trace_files, ExportError, Format, OutputOptions,
    TraceSet,
};

fn options(format: Option<Format>, rotate: Option<u64>) -> OutputOptions {
    let mut options = OutputOptions::default();
    options.format = format;
    options.rotate = rotate;
    options
}

fn write_dir(
    dir: &Path,
    format: Option<Format>,
    rotate: u64,
    events: &[MmioEvent],
    devices: &DeviceTable,
) {
    let mut out = create_output(dir, &options(format, Some(rotate)), common::info()).unwrap();
    // Batches that straddle part boundaries.
    for chunk in events.chunks(7) {
        out.write(chunk, devices).unwrap();
    }
    out.finish(devices).unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_directory_output_rotates_parts_and_seq_runs_on() {
    let (devices, sample) = common::sample();
    // 23 events, numbered on from the sample's.
    let events: Vec<MmioEvent> = (0..23)
        .map(|n| MmioEvent {
            seq: n,
            ..sample[n as usize % sample.len()]
        })
        .collect();
    let root = tempfile::tempdir().unwrap();
    for (format, extension) in [(None, "parquet"), (Some(Format::JsonLines), "jsonl")] {
        let dir = root.path().join(format!("{extension}/"));
        write_dir(&dir, format, 10, &events, &devices);
        assert_eq!(
            names(&dir),
            [0, 1, 2].map(|n| format!("part-0000{n}.{extension}")),
            "no .partial or row-group log is left"
        );
        let counts: Vec<usize> = trace_files(std::slice::from_ref(&dir))
            .unwrap()
            .iter()
            .map(|part| open_trace(part).unwrap().count())
            .collect();
        assert_eq!(counts, [10, 10, 3]);
        let set = TraceSet::open(std::slice::from_ref(&dir)).unwrap();
        let seqs: Vec<u64> = set.map(|e| e.unwrap().seq).collect();
        assert_eq!(seqs, (0..23).collect::<Vec<_>>());
    }
}

#[test]
fn a_trace_without_events_is_one_empty_part() {
    let devices = DeviceTable::new();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("empty/");
    write_dir(&dir, None, 10, &[], &devices);
    assert_eq!(names(&dir), ["part-00000.parquet"]);
    assert_eq!(
        open_trace(&dir.join("part-00000.parquet")).unwrap().count(),
        0
    );
}

#[test]
fn outputs_that_do_not_fit_their_options_fail_early() {
    let root = tempfile::tempdir().unwrap();
    let error = |path: PathBuf, format, rotate| {
        create_output(&path, &options(format, rotate), common::info())
            .err()
            .unwrap()
            .to_string()
    };
    let file = root.path().join("t.parquet");
    assert_eq!(
        error(file.clone(), None, Some(5)),
        format!(
            "{}: rotate applies to a directory output (end the path with /)",
            file.display()
        )
    );
    assert_eq!(
        error(file.clone(), Some(Format::JsonLines), None),
        format!(
            "{}: the extension says Parquet, the format option says JSON Lines",
            file.display()
        )
    );
    let dir = root.path().join("d/");
    assert_eq!(
        error(dir.clone(), Some(Format::PandaJson), None),
        format!(
            "{}: a directory of parts is Parquet or JSON Lines (format=parquet or format=jsonl)",
            dir.display()
        )
    );
    assert_eq!(
        error(dir.clone(), None, Some(0)),
        format!("{}: rotate must be at least 1 event", dir.display())
    );
    // A directory that holds a trace's parts already is not overwritten.
    let (devices, events) = common::sample();
    write_dir(&dir, None, 100, &events, &devices);
    assert_eq!(
        error(dir.clone(), None, None),
        format!(
            "{}: already holds the parts of a trace (part-00000.parquet): give a new directory",
            dir.display()
        )
    );
    assert_eq!(
        open_trace(&dir.join("part-00000.parquet")).unwrap().count(),
        events.len()
    );
}

#[test]
fn a_trace_set_reads_files_and_directories_as_one() {
    let (devices, events) = common::sample();
    let root = tempfile::tempdir().unwrap();
    let single = root.path().join("single.jsonl");
    let mut out = create_output(&single, &OutputOptions::default(), common::info()).unwrap();
    out.write(&events, &devices).unwrap();
    out.finish(&devices).unwrap();
    let dir = root.path().join("runs/a/");
    write_dir(&dir, None, 3, &events, &devices);
    // A part still being written is left out.
    std::fs::write(
        root.path().join("runs/a/part-00099.parquet.partial"),
        b"PAR1",
    )
    .unwrap();

    let files = trace_files(&[single.clone(), root.path().join("runs")]).unwrap();
    assert_eq!(files.len(), 1 + events.len().div_ceil(3));
    assert_eq!(files[0], single);
    assert!(files[1].ends_with("runs/a/part-00000.parquet"));

    let mut set = TraceSet::open(&[single, root.path().join("runs")]).unwrap();
    let got: Vec<MmioEvent> = set.by_ref().map(Result::unwrap).collect();
    assert_eq!(got.len(), 2 * events.len());
    // One device table for the set: a device of both files is one device (one id).
    assert_eq!(got[0].device, got[events.len()].device);
    assert_eq!(
        set.devices().get(got[0].device).map(|d| d.name.to_string()),
        Some("pl011".into())
    );
    assert_eq!(set.info().unwrap().run, "run-1");

    let empty = root.path().join("nothing");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        TraceSet::open(&[empty]),
        Err(ExportError::BadOutput { .. })
    ));
}

#[test]
fn counts_take_k_and_m_suffixes() {
    assert_eq!(parse_count("500"), Some(500));
    assert_eq!(parse_count("500k"), Some(500_000));
    assert_eq!(parse_count("16M"), Some(16_000_000));
    assert_eq!(parse_count("16m"), None);
    assert_eq!(parse_count("-1"), None);
    assert_eq!(parse_count("99999999999999999999M"), None);
    assert_eq!("jsonl".parse::<Format>(), Ok(Format::JsonLines));
    assert_eq!(
        "csv".parse::<Format>().unwrap_err().to_string(),
        "unknown trace format \"csv\" (use parquet, jsonl, ndjson or json)"
    );
}

/// Found in review: parts past 99999 sorted as text came out of order; hidden files
/// (parts being written, `._` resource forks) and symbolic links (a loop) were read.
#[test]
fn directories_list_parts_in_numeric_order_and_skip_hidden_files_and_links() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    std::fs::create_dir(&dir).unwrap();
    let (devices, events) = common::sample();
    for name in [
        "part-100000.jsonl",
        "part-99999.jsonl",
        "part-00002.jsonl",
        "._part-00001.jsonl",
        ".part-00003.jsonl",
    ] {
        let mut out =
            create_output(&dir.join(name), &OutputOptions::default(), common::info()).unwrap();
        out.write(&events[..1], &devices).unwrap();
        out.finish(&devices).unwrap();
    }
    std::os::unix::fs::symlink(&dir, dir.join("loop")).unwrap();
    let names: Vec<String> = trace_files(std::slice::from_ref(&dir))
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["part-00002.jsonl", "part-99999.jsonl", "part-100000.jsonl"]
    );

    let mistyped = PathBuf::from(format!("{}/", root.path().join("rn").display()));
    assert_eq!(
        trace_files(std::slice::from_ref(&mistyped))
            .unwrap_err()
            .to_string(),
        format!("{}: no such directory", mistyped.display())
    );
}
