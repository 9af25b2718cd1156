//! Asks QEMU for its memory map before the guest runs: start the machine stopped
//! (`-S`) with a QMP socket, run `info mtree -f`, quit.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use mmio_frontend::qmp::Qmp;
use serde_json::json;

/// The `info mtree -f` text of the machine `qemu args` describes.
pub fn dump_memory_map(qemu: &str, args: &[String], scratch: &Path) -> Result<String> {
    let socket = scratch.join("qmp.sock");
    let mut command = Command::new(qemu);
    command
        .args(args)
        .arg("-S")
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if !args.iter().any(|a| a == "-nographic" || a == "-display") {
        command.args(["-display", "none"]);
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {qemu}"))?;
    let result = query(&socket, &mut child);
    if result.is_err() {
        let _ = child.kill();
    }
    let status = child.wait()?;
    match result {
        Ok(text) => Ok(text),
        Err(error) => {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            Err(error.context(format!(
                "cannot read the memory map from {qemu} ({status}){}{}",
                if stderr.trim().is_empty() { "" } else { ": " },
                stderr.trim()
            )))
        }
    }
}

fn query(socket: &Path, child: &mut std::process::Child) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut qmp = loop {
        match Qmp::connect(socket, Duration::from_secs(30)) {
            Ok(qmp) => break qmp,
            Err(_) if Instant::now() < deadline => {
                if let Some(status) = child.try_wait()? {
                    bail!("QEMU exited before its monitor was up ({status})");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => return Err(error).context("QEMU's monitor socket never came up"),
        }
    };
    let text = qmp.human("info mtree -f")?;
    // Wait for the answer: QEMU drops requests still queued when the client hangs up.
    // QEMU may also close the monitor before its answer is read: it is quitting then,
    // and is killed to make sure.
    if qmp.execute(&json!({"execute": "quit"})).is_err() {
        let _ = child.kill();
    }
    Ok(text)
}
