//! Shared by the fuzz targets: write the input to a file with the format's extension and
//! read every event back through mmio-export's streaming reader.

use std::io::Write;

pub fn read_all(data: &[u8], extension: &str) {
    // libfuzzer-sys aborts on every panic, even one the reader catches (the Parquet
    // reader turns the parquet crate's panics on corrupt pages into errors). Keep the
    // message but not the abort: a panic escaping the reader still aborts the run.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    });
    let Ok(mut file) = tempfile::Builder::new()
        .suffix(&format!(".{extension}"))
        .tempfile()
    else {
        return;
    };
    if file.write_all(data).is_err() {
        return;
    }
    if let Ok(reader) = mmio_export::open_trace(file.path()) {
        for event in reader {
            if event.is_err() {
                break;
            }
        }
    }
}
