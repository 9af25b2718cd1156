#!/usr/bin/env bash
# Emulator overhead of tracing an x86 boot, measured in one run: SeaBIOS and Debian's
# amd64 kernel on -M pc to an initramfs that powers off (firmware/linux-pc), made
# deterministic (-icount shift=0,sleep=off, RTC on the virtual clock, -seed). The
# plugin records port I/O as well as MMIO there. The same variants as
# bench/overhead.sh; runs alternate; medians.
# bench/x86-boot.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
rounds="${1:-3}"
cargo build --release -q -p mmio-qemu -p mmio-cli
guest=target/linux-pc
bash firmware/linux-pc/build.sh "$guest" >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir" "$bench_times"' EXIT
boot=(qemu-system-x86_64 -M pc -m 512 -kernel "$guest/vmlinuz" -initrd "$guest/initrd.gz"
      -append console=ttyS0 -display none -nic none -serial null
      -icount shift=0,sleep=off -rtc base=2026-01-01T00:00:00,clock=vm -seed 1)
# The memory map, taken once over QMP the way `mmio-trace qemu` does.
target/release/mmio-trace qemu --out "$dir/first.parquet" --save-mtree "$dir/mtree" \
    -- "${boot[@]}" >/dev/null 2>&1
plugin="target/release/libmmio_trace_qemu.so,out_log=$dir/t.parquet,mtree=$dir/mtree"
for _ in $(seq "$rounds"); do
    bench_variants "$plugin" "$dir" "${boot[@]}"
done
ports=$(target/release/mmio-trace show "$dir/t.parquet" 2>/dev/null | grep -c ' io:' || true)
echo "x86 boot ($(cat "$guest/kernel-package")): $(bench_events "$dir/t.parquet") events per run, $ports of them port I/O"
bench_report none qemu-trace mmio-trace mmio-all mmio-icount
