//! Number and string formatting shared by the two JSON writers: into a reused buffer,
//! no allocation per event.

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
