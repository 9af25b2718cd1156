//! A QMP client, just enough to ask QEMU for its memory map (`info mtree -f` through
//! `human-monitor-command`): the wrapper's dump before the guest runs, and the
//! plugin's refresh while it runs, over a monitor socket of its own.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use thiserror::Error;

/// Why a QMP exchange failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QmpError {
    /// The socket cannot be reached, read or written.
    #[error("QEMU's monitor at {}", path.display())]
    Io {
        /// The monitor's socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// QEMU closed the monitor.
    #[error("QEMU closed its monitor at {}", path.display())]
    Closed {
        /// The monitor's socket.
        path: PathBuf,
    },
    /// A line that is no QMP message, or an `error` reply.
    #[error("QEMU's monitor at {} answered {answer}", path.display())]
    Answer {
        /// The monitor's socket.
        path: PathBuf,
        /// What it sent.
        answer: String,
    },
}

/// A connected monitor, past the capabilities negotiation.
pub struct Qmp {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects to the QMP socket at `path`; every reply must come within `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp, QmpError> {
        let io = |source| QmpError::Io {
            path: path.to_path_buf(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(io)?;
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        let mut qmp = Qmp {
            path: path.to_path_buf(),
            reader: BufReader::new(stream.try_clone().map_err(io)?),
            writer: stream,
        };
        qmp.reply()?; // The greeting.
        qmp.execute(&json!({"execute": "qmp_capabilities"}))?;
        Ok(qmp)
    }

    /// Sends one command and returns its reply.
    pub fn execute(&mut self, command: &Value) -> Result<Value, QmpError> {
        writeln!(self.writer, "{command}").map_err(|source| QmpError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.reply()
    }

    /// The text an HMP command prints (`info mtree -f`).
    pub fn human(&mut self, command_line: &str) -> Result<String, QmpError> {
        let reply = self.execute(&json!({
            "execute": "human-monitor-command",
            "arguments": {"command-line": command_line}
        }))?;
        match reply.get("return").and_then(Value::as_str) {
            Some(text) => Ok(text.to_string()),
            None => Err(QmpError::Answer {
                path: self.path.clone(),
                answer: reply.to_string(),
            }),
        }
    }

    /// The next reply or greeting, skipping asynchronous events.
    fn reply(&mut self) -> Result<Value, QmpError> {
        loop {
            let mut line = String::new();
            let read = self
                .reader
                .read_line(&mut line)
                .map_err(|source| QmpError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            if read == 0 {
                return Err(QmpError::Closed {
                    path: self.path.clone(),
                });
            }
            let answer = || QmpError::Answer {
                path: self.path.clone(),
                answer: line.trim().to_string(),
            };
            let message: Value = serde_json::from_str(&line).map_err(|_| answer())?;
            if message.get("error").is_some() {
                return Err(answer());
            }
            if message.get("event").is_none() {
                return Ok(message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    /// A monitor that greets, accepts the capabilities and answers `info mtree -f`.
    #[test]
    fn asks_for_the_memory_map_and_skips_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let monitor = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            writeln!(
                writer,
                r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#
            )
            .unwrap();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.contains("qmp_capabilities"));
            writeln!(writer, r#"{{"return": {{}}}}"#).unwrap();
            line.clear();
            reader.read_line(&mut line).unwrap();
            assert!(line.contains("info mtree -f"));
            writeln!(writer, r#"{{"event": "RESUME", "data": {{}}}}"#).unwrap();
            writeln!(writer, r#"{{"return": "FlatView #0\n"}}"#).unwrap();
            line.clear();
            reader.read_line(&mut line).unwrap();
            writeln!(
                writer,
                r#"{{"error": {{"class": "GenericError", "desc": "no"}}}}"#
            )
            .unwrap();
        });
        let mut qmp = Qmp::connect(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(qmp.human("info mtree -f").unwrap(), "FlatView #0\n");
        let error = qmp.human("info nothing").unwrap_err();
        assert!(
            matches!(&error, QmpError::Answer { answer, .. } if answer.contains("GenericError")),
            "{error}"
        );
        monitor.join().unwrap();
    }

    #[test]
    fn a_missing_socket_is_named() {
        let error = Qmp::connect(Path::new("/nonexistent/qmp.sock"), Duration::from_secs(1))
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("/nonexistent/qmp.sock"),
            "{error}"
        );
    }
}
