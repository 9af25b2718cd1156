#!/usr/bin/env bash
# By hand, not in CI (CI cannot install PANDA): our PANDA plugin against PANDA's own
# mmio_trace plugin on the Linux guest's boot (firmware/linux-vexpress), wall time and
# peak RSS: no plugin, upstream (PANDA JSON), ours writing Parquet, ours writing PANDA
# JSON. Runs alternate; medians, ratios to no plugin.
#   PANDA_BUILD=/path/to/panda/build/arm-softmmu bench/panda-boot.sh [ROUNDS]
# PANDA_BUILD is an arm-softmmu build directory of panda-re/panda with PANDA's
# mmio_trace plugin built (README, "Using with PANDA"); this script builds nothing of it.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
panda_build="${PANDA_BUILD:?set PANDA_BUILD to a PANDA arm-softmmu build directory}"
panda="$panda_build/panda-system-arm"
[ -x "$panda" ] || { echo "no $panda" >&2; exit 1; }
[ -f "$panda_build/panda/plugins/panda_mmio_trace.so" ] || {
    echo "PANDA's own mmio_trace plugin is not built in $panda_build" >&2; exit 1; }
cargo build --release -q -p mmio-panda
guest=target/linux-guest
bash firmware/linux-vexpress/build.sh "$guest" >/dev/null
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# PANDA finds a plugin by name under $PANDA_DIR/arm-softmmu/panda/plugins before its
# own directory: ours goes there, under the upstream plugin's name.
mkdir -p "$dir/ours/arm-softmmu/panda/plugins"
cp target/release/libpanda_mmio_trace.so "$dir/ours/arm-softmmu/panda/plugins/panda_mmio_trace.so"
export QEMU_AUDIO_DRV=none
boot=("$panda" -M vexpress-a9 -m 256 -kernel "$guest/vmlinuz"
      -dtb "$guest/vexpress-v2p-ca9.dtb" -initrd "$guest/initrd.gz" -append console=ttyAMA0
      -display none -serial null -icount shift=0,sleep=off
      -rtc base=2026-01-01T00:00:00,clock=vm)
results="$dir/results"
run() {
    local name=$1
    shift
    /usr/bin/time -f "$name %e %M" -a -o "$results" "$@" >/dev/null 2>&1
}
for _ in $(seq "$rounds"); do
    run none "${boot[@]}"
    run upstream "${boot[@]}" -panda "mmio_trace:out_log=$dir/upstream.json"
    run ours-parquet env PANDA_DIR="$dir/ours" PANDA_LIB="$panda_build/libpanda-arm.so" \
        "${boot[@]}" -panda "mmio_trace:out_log=$dir/ours.parquet"
    run ours-json env PANDA_DIR="$dir/ours" PANDA_LIB="$panda_build/libpanda-arm.so" \
        "${boot[@]}" -panda "mmio_trace:out_log=$dir/ours.json"
done
python3 - "$results" "$dir" <<'PY'
import json, statistics, subprocess, sys
runs = {}
for line in open(sys.argv[1]):
    name, seconds, rss_kib = line.split()
    runs.setdefault(name, []).append((float(seconds), int(rss_kib)))
base = statistics.median(s for s, _ in runs["none"])
print(f"{'run':<13} {'median s':>9} {'vs none':>8} {'peak RSS MiB':>13}  runs")
for name in ["none", "upstream", "ours-parquet", "ours-json"]:
    seconds = statistics.median(s for s, _ in runs[name])
    rss = statistics.median(r for _, r in runs[name]) / 1024
    print(f"{name:<13} {seconds:>9.2f} {seconds / base:>7.2f}x {rss:>13.1f}  {len(runs[name])}")
upstream = len(json.load(open(f"{sys.argv[2]}/upstream.json")))
ours = subprocess.run(["target/release/mmio-trace", "summary", f"{sys.argv[2]}/ours.parquet"],
                      capture_output=True, text=True).stdout
print(f"events: upstream {upstream}, ours {ours.split(' events,')[0].split()[-1]}")
PY
