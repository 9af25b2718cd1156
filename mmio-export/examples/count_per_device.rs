//! What a downstream crate writes to read any trace: open it (format by extension),
//! iterate its events, and print how many accesses each device got, reads and writes.
//!
//! `cargo run -p mmio-export --example count_per_device -- trace.parquet`

use std::collections::BTreeMap;

use mmio_core::Access;
use mmio_export::{open_trace, NO_DEVICE};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(path) = std::env::args_os().nth(1) else {
        return Err("usage: count_per_device TRACE (.parquet, .jsonl, .json)".into());
    };
    let mut reader = open_trace(path.as_ref())?;
    // Device id -> (reads, writes).
    let mut counts: BTreeMap<_, (u64, u64)> = BTreeMap::new();
    for event in reader.by_ref() {
        let event = event?;
        let count = counts.entry(event.device).or_default();
        match event.access {
            Access::Write => count.1 += 1,
            Access::Read | Access::Fetch => count.0 += 1,
        }
    }
    println!("{:<24} {:>10} {:>10}", "device", "reads", "writes");
    for (device, (reads, writes)) in counts {
        let name = reader.devices().get(device).map(|d| d.name.to_string());
        println!(
            "{:<24} {reads:>10} {writes:>10}",
            name.as_deref().unwrap_or(NO_DEVICE)
        );
    }
    Ok(())
}
