//! Shared by the fuzz targets: write the input to a file with the format's extension and
//! read every event back through mmio-export's streaming reader.

use std::io::Write;

pub fn read_all(data: &[u8], extension: &str) {
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
