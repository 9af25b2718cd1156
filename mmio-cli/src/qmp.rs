//! Asks QEMU for its memory map before the guest runs: start the machine stopped
//! (`-S`) with a QMP socket, run `info mtree -f`, quit.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

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
    let stream = loop {
        match UnixStream::connect(socket) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => {
                if let Some(status) = child.try_wait()? {
                    bail!("QEMU exited before its monitor was up ({status})");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => return Err(error).context("QEMU's monitor socket never came up"),
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    read_reply(&mut reader)?; // The greeting.
    send(&mut writer, &json!({"execute": "qmp_capabilities"}))?;
    read_reply(&mut reader)?;
    send(
        &mut writer,
        &json!({"execute": "human-monitor-command", "arguments": {"command-line": "info mtree -f"}}),
    )?;
    let reply = read_reply(&mut reader)?;
    let text = reply
        .get("return")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("unexpected reply to info mtree: {reply}"))?
        .to_string();
    // Wait for the answer: QEMU drops requests still queued when the client hangs up.
    send(&mut writer, &json!({"execute": "quit"}))?;
    read_reply(&mut reader)?;
    Ok(text)
}

fn send(writer: &mut UnixStream, message: &Value) -> Result<()> {
    writeln!(writer, "{message}").context("writing to QEMU's monitor")?;
    Ok(())
}

/// The next reply or greeting, skipping asynchronous events.
fn read_reply(reader: &mut impl BufRead) -> Result<Value> {
    loop {
        let mut line = String::new();
        if reader
            .read_line(&mut line)
            .context("reading QEMU's monitor")?
            == 0
        {
            bail!("QEMU closed its monitor");
        }
        let message: Value =
            serde_json::from_str(&line).with_context(|| format!("QEMU's monitor sent {line:?}"))?;
        if let Some(error) = message.get("error") {
            bail!("QEMU's monitor answered an error: {error}");
        }
        if message.get("event").is_none() {
            return Ok(message);
        }
    }
}
