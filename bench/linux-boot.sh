#!/usr/bin/env bash
# Emulator overhead of tracing a Linux boot, measured in one run: Debian's armhf kernel
# on -M vexpress-a9 to an initramfs that powers off (firmware/linux-vexpress), made
# deterministic (-icount shift=0,sleep=off, RTC on the virtual clock, -seed). The same
# variants as bench/overhead.sh. Runs alternate; medians.
# bench/linux-boot.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
rounds="${1:-3}"
cargo build --release -q -p mmio-qemu -p mmio-cli
guest=target/linux-guest
bash firmware/linux-vexpress/build.sh "$guest" >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir" "$bench_times"' EXIT
boot=(qemu-system-arm -M vexpress-a9 -m 256 -kernel "$guest/vmlinuz"
      -dtb "$guest/vexpress-v2p-ca9.dtb" -initrd "$guest/initrd.gz" -append console=ttyAMA0
      -display none -audio none -serial null -icount shift=0,sleep=off
      -rtc base=2026-01-01T00:00:00,clock=vm -seed 1)
# The memory map, taken once over QMP the way `mmio-trace qemu` does.
target/release/mmio-trace qemu --out "$dir/first.parquet" --save-mtree "$dir/mtree" \
    -- "${boot[@]}" >/dev/null 2>&1
plugin="target/release/libmmio_trace_qemu.so,out_log=$dir/t.parquet,mtree=$dir/mtree"
for _ in $(seq "$rounds"); do
    bench_variants "$plugin" "$dir" "${boot[@]}"
done
echo "Linux boot ($(cat "$guest/kernel-package")): $(bench_events "$dir/t.parquet") events per run"
bench_report none qemu-trace mmio-trace mmio-all mmio-all-noskip mmio-icount
