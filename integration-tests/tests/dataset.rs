//! Issue #15: traces that outgrow one file. Real qemu-system-arm runs of the lm3s6965evb
//! firmware write directories of parts (`out_log=DIR/`, `rotate=`, `run=`), through
//! the plugin and through `mmio-trace qemu`; DuckDB, pyarrow and pandas read them as
//! one dataset, and every `mmio-trace` command reads several files and directories.

use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::{
    lm3s6965evb_args, mmio_trace as cli, plugin_arg, read_trace, run_ok, workspace_root, Firmware,
    Seen,
};
use mmio_core::{DeviceId, MmioEvent};

fn qemu_with_plugin(firmware: &Firmware, out: &Path, extra: &str) {
    run_ok(
        Command::new("qemu-system-arm")
            .args(lm3s6965evb_args(firmware))
            .arg("-plugin")
            .arg(plugin_arg(out, "lm3s6965evb", extra)),
        "qemu-system-arm with the plugin",
    );
}

fn parts(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The events of every part of `dir`, in part order.
fn read_parts(dir: &Path) -> Vec<Seen> {
    parts(dir)
        .iter()
        .flat_map(|name| read_trace(&dir.join(name)))
        .collect()
}

#[test]
fn rotated_parts_of_several_runs_read_as_one_dataset() {
    let firmware = Firmware::lm3s6965evb(&[]);
    let root = tempfile::tempdir().unwrap();
    // The whole trace in one file, to compare the parts with.
    let single = root.path().join("single.parquet");
    qemu_with_plugin(&firmware, &single, ",run=single");
    let whole = read_trace(&single);
    let events = whole.len();
    assert!(
        events > 10,
        "the firmware makes enough events to rotate: {events}"
    );

    // Run a: the plugin, parts of 4 events.
    let parquet_root = root.path().join("traces");
    let run_a: PathBuf = parquet_root.join("board=lm3s6965evb/a");
    qemu_with_plugin(
        &firmware,
        &PathBuf::from(format!("{}/", run_a.display())),
        ",rotate=4,run=a",
    );
    let want_parts: Vec<String> = (0..events.div_ceil(4))
        .map(|n| format!("part-{n:05}.parquet"))
        .collect();
    assert_eq!(
        parts(&run_a),
        want_parts,
        "finished parts only, nothing partial"
    );
    assert!(read_parts(&run_a) == whole, "seq runs on across parts");

    // Run b: the wrapper, parts of 3 events, its summary over the parts.
    let run_b = parquet_root.join("board=lm3s6965evb/b");
    let out_b = format!("{}/", run_b.display());
    let mut qemu = vec!["qemu-system-arm".to_string()];
    qemu.extend(lm3s6965evb_args(&firmware));
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"qemu",
        &"--out",
        &out_b,
        &"--rotate",
        &"3",
        &"--run",
        &"b",
        &"--",
    ];
    args.extend(qemu.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
    let output = cli(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(parts(&run_b).len(), events.div_ceil(3));
    assert!(read_parts(&run_b) == whole, "the wrapper's parts differ");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("{events} events, ")),
        "the summary covers every part: {stdout}"
    );

    // Run c: JSON Lines parts of 5.
    let jsonl_root = root.path().join("jsonl");
    qemu_with_plugin(
        &firmware,
        &PathBuf::from(format!("{}/c/", jsonl_root.display())),
        ",format=jsonl,rotate=5,run=c",
    );
    let want_parts: Vec<String> = (0..events.div_ceil(5))
        .map(|n| format!("part-{n:05}.jsonl"))
        .collect();
    assert_eq!(parts(&jsonl_root.join("c")), want_parts);
    // Device ids are each reader's own; names and kinds are compared.
    let by_name = |trace: Vec<Seen>| -> Vec<Seen> {
        trace
            .into_iter()
            .map(|s| Seen {
                event: MmioEvent {
                    device: DeviceId(0),
                    ..s.event
                },
                ..s
            })
            .collect()
    };
    assert!(
        by_name(read_parts(&jsonl_root.join("c"))) == by_name(whole.clone()),
        "JSON Lines parts differ"
    );

    let expected = serde_json::json!({
        "parquet": {
            "a": {"events": events, "board": "lm3s6965evb"},
            "b": {"events": events, "board": "lm3s6965evb"},
        },
        "jsonl": {"c": events},
    });
    run_ok(
        Command::new("python3")
            .arg(workspace_root().join("integration-tests/python/check_dataset.py"))
            .arg(&parquet_root)
            .arg(&jsonl_root)
            .arg(expected.to_string()),
        "python3 check_dataset.py (needs duckdb, pandas, pyarrow: scripts/setup-debian.sh)",
    );

    // Every command takes several files and directories as one trace.
    let output = cli(&[&"summary", &"--json", &run_a, &run_b, &single]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["events"], 3 * events);
    let output = cli(&[&"summary", &"--by", &"file", &"--json", &run_a]);
    let by_file: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let per_file: Vec<(String, u64)> = by_file
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = PathBuf::from(f["file"].as_str().unwrap());
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            (name, f["events"].as_u64().unwrap())
        })
        .collect();
    let want: Vec<(String, u64)> = (0..events.div_ceil(4))
        .map(|n| {
            (
                format!("part-{n:05}.parquet"),
                (events - 4 * n).min(4) as u64,
            )
        })
        .collect();
    assert_eq!(per_file, want);
    let output = cli(&[&"show", &run_a]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).lines().count(),
        1 + events,
        "a header and every event"
    );
    let joined = root.path().join("joined.parquet");
    let output = cli(&[&"convert", &run_a, &run_b, &joined, &"--run", &"a+b"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run = mmio_export::open_trace(&joined)
        .unwrap()
        .info()
        .unwrap()
        .run
        .clone();
    assert_eq!(run, "a+b");
    let joined = read_trace(&joined);
    assert_eq!(joined.len(), 2 * events);
    assert_eq!(
        joined[events].event.seq, events as u64,
        "convert numbers anew"
    );
    let output = cli(&[&"diff", &run_a, &single]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("traces are equal ({events} events)\n")
    );
}

#[test]
fn a_directory_that_holds_parts_is_refused_before_qemu_runs() {
    let firmware = Firmware::lm3s6965evb(&[]);
    let root = tempfile::tempdir().unwrap();
    let dir = format!("{}/", root.path().join("run").display());
    qemu_with_plugin(&firmware, Path::new(&dir), ",rotate=1k");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"qemu", &"--out", &dir, &"--"];
    let qemu: Vec<String> = std::iter::once("qemu-system-arm".to_string())
        .chain(lm3s6965evb_args(&firmware))
        .collect();
    args.extend(qemu.iter().map(|a| a as &dyn AsRef<std::ffi::OsStr>));
    let output = cli(&args);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!(
            "mmio-trace: {dir}: already holds the parts of a trace (part-00000.parquet): give a new directory\n"
        )
    );
    let output = cli(&[
        &"qemu",
        &"--out",
        &"t.parquet",
        &"--rotate",
        &"0",
        &"--",
        &"qemu-system-arm",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("\"0\" is not a number of events, at least 1 (k and M suffixes allowed)"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
