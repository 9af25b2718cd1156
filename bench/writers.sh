#!/usr/bin/env bash
# Writer throughput, bytes per event and peak memory, one process per format and size
# (so each peak RSS is that run's own). bench/writers.sh [EVENTS...]
# Default sizes: 1e6 and 1e7 events. Prints one table.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000)
cargo build --release -q -p mmio-export --example write_trace
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
printf '%-10s %12s %14s %12s %14s\n' format events "events/s" "bytes/event" "peak RSS MiB"
for n in "${sizes[@]}"; do
    for ext in parquet jsonl json; do
        line=$(target/release/examples/write_trace "$dir/t.$ext" "$n")
        python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print("%-10s %12d %14.0f %12.2f %14.1f" % (sys.argv[2], r["events"], r["events_per_second"], r["bytes_per_event"], r["peak_rss_mib"]))
' "$line" "$ext"
        rm -f "$dir/t.$ext"
    done
done
