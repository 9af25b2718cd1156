//! The two JSON formats, byte for byte. `golden/sample.json` was written by hand from
//! the upstream PANDA plugin's layout (`[`, objects joined by `,` + newline, `]`,
//! `{ "key": "0x…", … }` with 8 hex digits on a 32-bit target).

mod common;

use common::{sample, write};

fn check(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let (devices, events) = sample();
    write(&path, &devices, &events);
    let got = std::fs::read_to_string(&path).unwrap();
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name.replace("t.", "sample."));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(got, want, "{name} differs from {}", golden.display());
}

#[test]
fn panda_json_matches_the_upstream_layout() {
    check("t.json");
}

#[test]
fn json_lines_matches_the_golden_file() {
    check("t.jsonl");
}
