//! Stopping the emulator mid-run: SIGTERM and SIGINT leave a complete trace; SIGKILL
//! leaves `FILE.partial` with nothing torn, and a Parquet one is recovered by
//! `mmio-trace recover`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::{lm3s6965evb_args, plugin_arg, read_trace, run_ok, tools, Firmware, Seen};

fn start(firmware: &Firmware, out: &Path) -> Child {
    start_with(firmware, out, "")
}

fn start_with(firmware: &Firmware, out: &Path, extra: &str) -> Child {
    Command::new("qemu-system-arm")
        .args(lm3s6965evb_args(firmware))
        .arg("-plugin")
        .arg(plugin_arg(out, "lm3s6965evb", extra))
        .stderr(Stdio::null())
        .spawn()
        .expect("qemu-system-arm starts")
}

fn partial(out: &Path) -> PathBuf {
    PathBuf::from(format!("{}.partial", out.display()))
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(child: &Child, name: &str) {
    run_ok(
        Command::new("kill")
            .arg(format!("-{name}"))
            .arg(child.id().to_string()),
        "kill",
    );
}

fn wait_exit(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "QEMU did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The firmware's accesses, in order, from the first one on.
fn check_prefix(firmware: &Firmware, trace: &[Seen]) {
    assert!(trace.len() > 20, "{} events", trace.len());
    assert_eq!(trace[0].event.guest_pc, firmware.pc("uart_ctl_write"));
    let poll = firmware.pc("systick_ctrl_read");
    for (seq, seen) in trace.iter().enumerate() {
        assert_eq!(seen.event.seq, seq as u64);
    }
    assert_eq!(trace.last().unwrap().device.as_deref(), Some("v7m_systick"));
    assert!(trace.iter().filter(|s| s.event.guest_pc == poll).count() > 10);
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// QEMU aborts on a failed assertion (as 10.0.2+ds-2 did in `iotlb_to_section`), which
/// runs no exit callback: the plugin's SIGABRT handler finishes the trace first.
#[test]
fn an_abort_of_qemu_leaves_a_finished_trace() {
    let firmware = Firmware::lm3s6965evb(&["FOREVER"]);
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.parquet", "a.jsonl"] {
        let out = dir.path().join(name);
        let mut qemu = start(&firmware, &out);
        wait_for("events in the partial trace", || {
            std::fs::metadata(partial(&out)).is_ok_and(|m| m.len() > 0)
        });
        std::thread::sleep(Duration::from_millis(300));
        signal(&qemu, "ABRT");
        let status = qemu.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(6), "{name}: {status}");
        assert!(!partial(&out).exists(), "{name}: still partial");
        check_prefix(&firmware, &read_trace(&out));
    }
}

#[test]
fn sigterm_and_sigint_leave_a_complete_trace() {
    let firmware = Firmware::lm3s6965evb(&["FOREVER"]);
    let dir = tempfile::tempdir().unwrap();
    for (signal_name, name) in [
        ("TERM", "t.parquet"),
        ("INT", "i.jsonl"),
        ("TERM", "t.json"),
    ] {
        let out = dir.path().join(name);
        let mut child = start(&firmware, &out);
        // Let it record for a while: the plugin has started (Parquet writes its
        // row groups only later) or, for JSON, the idle flush reached the file.
        wait_for("the partial trace", || {
            std::fs::metadata(partial(&out))
                .map(|m| m.len() > 4096 || name.ends_with(".parquet"))
                .unwrap_or(false)
        });
        std::thread::sleep(Duration::from_millis(1500));
        signal(&child, signal_name);
        wait_exit(&mut child);
        assert!(
            out.exists(),
            "{name}: finished trace after SIG{signal_name}"
        );
        assert!(!partial(&out).exists(), "{name}: no partial file left");
        check_prefix(&firmware, &read_trace(&out));
    }
}

#[test]
fn sigkill_leaves_whole_json_lines() {
    let firmware = Firmware::lm3s6965evb(&["FOREVER"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k.jsonl");
    let mut child = start(&firmware, &out);
    wait_for("10000 lines", || lines(&partial(&out)) > 10_000);
    signal(&child, "KILL");
    wait_exit(&mut child);
    assert!(!out.exists());
    let text = std::fs::read_to_string(partial(&out)).unwrap();
    assert!(text.ends_with('\n'), "no torn last line");
    // Every line parses (the reader would stop at a torn or bad one); blank lines are
    // the writer's page padding.
    let trace = read_trace(&partial(&out));
    assert_eq!(
        trace.len(),
        text.lines().filter(|l| !l.trim().is_empty()).count()
    );
    check_prefix(&firmware, &trace);
}

#[test]
fn sigkill_parquet_is_recovered_from_complete_row_groups() {
    let firmware = Firmware::lm3s6965evb(&["FOREVER"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k.parquet");
    let log = PathBuf::from(format!("{}.rowgroups", partial(&out).display()));
    let mut child = start(&firmware, &out);
    wait_for("a completed row group", || {
        std::fs::metadata(&log)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
    });
    signal(&child, "KILL");
    wait_exit(&mut child);
    assert!(!out.exists());
    let output = run_ok(
        Command::new(&tools().cli).arg("recover").arg(partial(&out)),
        "mmio-trace recover",
    );
    let trace = read_trace(&out);
    check_prefix(&firmware, &trace);
    let report = String::from_utf8(output.stdout).unwrap();
    assert!(
        report.starts_with(&format!("recovered {} events in ", trace.len())),
        "{report}"
    );
    assert!(
        report
            .trim_end()
            .ends_with(&format!("into {}", out.display())),
        "{report}"
    );
}

/// Issue #15: a killed run's finished parts are complete traces, readable without
/// `recover`; only the part being written is left `.partial`.
#[test]
fn sigkill_leaves_finished_parts_readable() {
    let firmware = Firmware::lm3s6965evb(&["FOREVER"]);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("parts");
    let out = PathBuf::from(format!("{}/", dir.display()));
    let mut child = start_with(&firmware, &out, ",rotate=20k");
    let finished = |dir: &Path| -> Vec<PathBuf> {
        let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| entries.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        parts.retain(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("part-") && name.ends_with(".parquet")
        });
        parts.sort();
        parts
    };
    wait_for("three finished parts", || finished(&dir).len() >= 3);
    signal(&child, "KILL");
    wait_exit(&mut child);
    let parts = finished(&dir);
    let trace: Vec<Seen> = parts.iter().flat_map(|part| read_trace(part)).collect();
    assert_eq!(
        trace.len(),
        20_000 * parts.len(),
        "every finished part is whole"
    );
    check_prefix(&firmware, &trace);
    // Besides them, at most the part being written (and its row-group log), unfinished
    // and hidden from query engines that list the directory. A kill just after the
    // part's writer is created, or after its footer is written and its log removed
    // but before the rename, leaves the part without its log.
    let next = format!(".part-{:05}.parquet.partial", parts.len());
    let mut others: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("part-"))
        .collect();
    others.sort();
    assert!(
        others.is_empty()
            || others == [next.clone()]
            || others == [next.clone(), format!("{next}.rowgroups")],
        "{others:?}"
    );
}

/// `mmio-trace qemu` tracing the endless firmware into `out`, run through `launcher`
/// (e.g. `timeout`) when given.
fn wrapper(launcher: &[&str], firmware: &Firmware, out: &Path) -> Command {
    let mut command = match launcher.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(&tools().cli);
            command
        }
        None => Command::new(&tools().cli),
    };
    command
        .arg("qemu")
        .arg("--out")
        .arg(out)
        .args(["--", "qemu-system-arm"])
        .args(lm3s6965evb_args(firmware))
        .stdin(Stdio::null())
        .stderr(wrapper_log(out));
    command
}

/// Where the wrapper's (and QEMU's) messages go: `OUT.log`, shown when a test fails.
fn wrapper_log(out: &Path) -> std::fs::File {
    std::fs::File::create(format!("{}.log", out.display())).expect("create the wrapper's log")
}

/// Waits for the plugin's `.partial` file; fails at once, with the wrapper's
/// messages, if the wrapper ended first.
fn wait_for_partial(child: &mut Child, out: &Path) {
    wait_for("the partial trace", || {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!(
                "the wrapper exited ({status}) before the trace began:\n{}",
                std::fs::read_to_string(format!("{}.log", out.display())).unwrap_or_default()
            );
        }
        partial(out).exists()
    });
}

/// What the wrapper prints once the trace is finished.
fn check_wrapper_summary(out: &Path, stdout: &[u8]) {
    let stdout = String::from_utf8_lossy(stdout);
    assert!(
        stdout.starts_with(&format!("trace: {}\ndevice ", out.display())),
        "{stdout}"
    );
    assert!(stdout.contains("\nv7m_systick "), "{stdout}");
}

/// Issue #15: `timeout -s TERM` and a plain `kill -TERM` stop the wrapper, not just
/// QEMU: the wrapper forwards the signal, waits for QEMU to finish the trace, prints
/// the summary and exits with QEMU's status, so the finished file is there when the
/// command returns.
#[test]
fn sigterm_to_the_wrapper_returns_with_a_finished_trace() {
    let firmware = Firmware::lm3s6965evb(&["FOREVER"]);
    let dir = tempfile::tempdir().unwrap();

    let out = dir.path().join("timeout.parquet");
    // Long enough for two QEMU start-ups, the map query and some guest progress on a
    // loaded machine.
    let output = wrapper(&["timeout", "-s", "TERM", "20"], &firmware, &out)
        .output()
        .expect("timeout runs");
    // 124: timeout's own status when it had to stop the command.
    assert_eq!(output.status.code(), Some(124));
    assert!(out.exists(), "finished trace when timeout returns");
    assert!(!partial(&out).exists());
    check_wrapper_summary(&out, &output.stdout);
    check_prefix(&firmware, &read_trace(&out));

    for (signal_name, name) in [("TERM", "kill.jsonl"), ("HUP", "hup.parquet")] {
        let out = dir.path().join(name);
        let mut child = wrapper(&[], &firmware, &out)
            .stdout(Stdio::piped())
            .spawn()
            .expect("mmio-trace qemu starts");
        wait_for_partial(&mut child, &out);
        std::thread::sleep(Duration::from_millis(1500));
        signal(&child, signal_name);
        let output = child.wait_with_output().expect("the wrapper exits");
        // QEMU exits with status 0 after a termination signal, and so does the wrapper.
        assert_eq!(output.status.code(), Some(0), "SIG{signal_name}");
        assert!(out.exists(), "finished trace after SIG{signal_name}");
        assert!(!partial(&out).exists());
        check_wrapper_summary(&out, &output.stdout);
        check_prefix(&firmware, &read_trace(&out));
    }
}
