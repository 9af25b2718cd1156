#!/usr/bin/env bash
# Emulator overhead of tracing, measured in one run: the same deterministic guest work
# (-icount shift=0,sleep=off) with no plugin, with QEMU's own memory_region_ops trace
# log, with the mmio-trace plugin writing Parquet, and with it counting instructions
# (icount=on). Runs alternate and the medians are compared.
# bench/overhead.sh [REPEAT] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
repeat="${1:-20000}"
rounds="${2:-3}"
cargo build --release -q -p mmio-qemu
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
firmware/lm3s6965evb/build.sh "$dir/fw.elf" -DREPEAT="$repeat"
mtree=crates/mmio-core/tests/fixtures/lm3s6965evb.mtree
base=(qemu-system-arm -M lm3s6965evb -kernel "$dir/fw.elf" -display none -serial null
      -semihosting-config enable=on,target=native -icount shift=0,sleep=off)
run() { # name, extra args...
    local name=$1; shift
    local start=$EPOCHREALTIME
    "${base[@]}" "$@" 2>/dev/null
    echo "$name $start $EPOCHREALTIME" >> "$dir/times"
}
for _ in $(seq "$rounds"); do
    run none
    run qemu-trace -trace memory_region_ops_read -trace memory_region_ops_write -D "$dir/qemu.log"
    run mmio-trace -plugin "target/release/libmmio_trace_qemu.so,out_log=$dir/t.parquet,mtree=$mtree"
    run mmio-icount -plugin "target/release/libmmio_trace_qemu.so,out_log=$dir/i.parquet,mtree=$mtree,icount=on"
done
events=$(target/release/mmio-trace summary "$dir/t.parquet" 2>/dev/null | grep ' events, ' | cut -d' ' -f1 || true)
python3 - "$dir/times" "$events" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    name, start, end = line.split()
    times.setdefault(name, []).append(float(end) - float(start))
base = statistics.median(times["none"])
print(f"events per run: {sys.argv[2] or '?'}")
print(f"{'run':<12} {'median s':>9} {'vs none':>8}")
for name in ["none", "qemu-trace", "mmio-trace", "mmio-icount"]:
    m = statistics.median(times[name])
    print(f"{name:<12} {m:>9.3f} {m / base:>7.2f}x")
PY
