#!/usr/bin/env bash
# Emulator overhead of tracing the MMIO-heavy test firmware (lm3s6965evb), measured in
# one run: the same deterministic guest work (-icount shift=0,sleep=off) with no
# plugin, with QEMU's own memory_region_ops trace log, and with the mmio-trace plugin
# writing Parquet: as it ships (instrument=last), with every instruction instrumented
# (instrument=all), also without skipping stack and literal accesses
# (skip_sp_pc=off), and counting instructions (icount=on). Runs alternate; medians.
# bench/overhead.sh [REPEAT] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
repeat="${1:-20000}"
rounds="${2:-3}"
cargo build --release -q -p mmio-qemu -p mmio-cli
dir=$(mktemp -d)
trap 'rm -rf "$dir" "$bench_times"' EXIT
firmware/lm3s6965evb/build.sh "$dir/fw.elf" -DREPEAT="$repeat"
plugin="target/release/libmmio_trace_qemu.so,out_log=$dir/t.parquet,mtree=mmio-frontend/tests/fixtures/lm3s6965evb.mtree"
guest=(qemu-system-arm -M lm3s6965evb -kernel "$dir/fw.elf" -display none -serial null
       -semihosting-config enable=on,target=native -icount shift=0,sleep=off)
for _ in $(seq "$rounds"); do
    bench_variants "$plugin" "$dir" "${guest[@]}"
done
echo "lm3s6965evb firmware, REPEAT=$repeat: $(bench_events "$dir/t.parquet") events per run"
bench_report none qemu-trace mmio-trace mmio-all mmio-all-noskip mmio-icount
