//! Stopping the emulator mid-run: SIGTERM and SIGINT leave a complete trace; SIGKILL
//! leaves `FILE.partial` with nothing torn, and a Parquet one is recovered by
//! `mmio-trace recover`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::{lm3s6965evb_args, plugin_arg, read_trace, run_ok, tools, Firmware, Seen};

fn start(firmware: &Firmware, out: &Path) -> Child {
    Command::new("qemu-system-arm")
        .args(lm3s6965evb_args(firmware))
        .arg("-plugin")
        .arg(plugin_arg(out, "lm3s6965evb", ""))
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
        // Let it record for a while: the idle flush or enough events reach the file.
        wait_for("the partial trace", || {
            std::fs::metadata(partial(&out))
                .map(|m| m.len() > 4096)
                .unwrap_or(false)
                || name.ends_with(".parquet")
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
