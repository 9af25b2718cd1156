//! Any bytes given to the json reader: errors are fine, panics escaping it are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mmio_fuzz::read_all;

fuzz_target!(|data: &[u8]| {
    read_all(data, "json");
});
