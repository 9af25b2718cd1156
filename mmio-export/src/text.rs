//! What the two JSON formats share: number and string formatting into reused buffers
//! (no allocation per event) for the writers, numbered lines for the readers.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::ExportError;

/// A text trace read a line at a time, for errors that name the file and line.
pub(crate) struct LineSource<R> {
    path: PathBuf,
    input: R,
    line: String,
    number: u64,
}

impl<R: BufRead> LineSource<R> {
    pub fn new(path: &Path, input: R) -> Self {
        LineSource {
            path: path.to_path_buf(),
            input,
            line: String::new(),
            number: 0,
        }
    }

    /// Reads the next line into [`LineSource::current`]; `None` at the end.
    pub fn advance(&mut self) -> Option<Result<(), ExportError>> {
        self.line.clear();
        self.number += 1;
        match self.input.read_line(&mut self.line) {
            Ok(0) => None,
            Ok(_) => Some(Ok(())),
            Err(e) => Some(Err(ExportError::io(&self.path, "read failed", e))),
        }
    }

    /// The line last read, with its newline if it had one.
    pub fn current(&self) -> &str {
        &self.line
    }

    pub fn number(&self) -> u64 {
        self.number
    }

    /// An error about the current line.
    pub fn error(&self, message: impl Into<String>) -> ExportError {
        ExportError::BadLine {
            path: self.path.clone(),
            line: self.number,
            message: message.into(),
        }
    }
}

/// Appends `s` as a JSON string literal (quotes included).
pub fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &byte in s.as_bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

pub fn push_u64(out: &mut Vec<u8>, value: u64) {
    let mut buffer = itoa::Buffer::new();
    out.extend_from_slice(buffer.format(value).as_bytes());
}

/// Appends `"0x…"` with at least `digits` lowercase hex digits.
pub fn push_hex_string(out: &mut Vec<u8>, value: u64, digits: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buffer = [b'0'; 16];
    let mut len = 0;
    let mut rest = value;
    while rest != 0 || len == 0 {
        buffer[15 - len] = HEX[(rest & 0xf) as usize];
        rest >>= 4;
        len += 1;
    }
    out.extend_from_slice(b"\"0x");
    for _ in len..digits {
        out.push(b'0');
    }
    out.extend_from_slice(&buffer[16 - len..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_json_strings() {
        let mut out = Vec::new();
        push_json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\nd\\u0001é\""
        );
    }

    #[test]
    fn pads_hex_to_the_word_width() {
        let mut out = Vec::new();
        push_hex_string(&mut out, 0x4000_c000, 8);
        push_hex_string(&mut out, 0, 8);
        push_hex_string(&mut out, u64::MAX, 8);
        push_hex_string(&mut out, 0x1f, 16);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"0x4000c000\"\"0x00000000\"\"0xffffffffffffffff\"\"0x000000000000001f\""
        );
    }
}
