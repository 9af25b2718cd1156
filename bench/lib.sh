# Shared by the emulator benchmarks (sourced): timed runs recorded by name, then
# medians compared with a baseline, so every ratio comes from one run of the script.
#   bench_run NAME COMMAND...      runs COMMAND (its output discarded), records its time
#   bench_variants PLUGIN DIR GUEST...  one round: GUEST alone, with QEMU's trace log
#                                  (into DIR), and with PLUGIN (a -plugin argument) as
#                                  shipped (instrument=last), with instrument=all, with
#                                  instrument=all,skip_sp_pc=off and with icount=on
#   bench_report BASELINE NAME...  prints each NAME's median and its ratio to BASELINE
#   bench_events TRACE             the number of events in a trace
bench_times=$(mktemp)
trap 'rm -f "$bench_times"' EXIT

bench_run() {
    local name=$1
    shift
    local start=$EPOCHREALTIME
    "$@" >/dev/null 2>&1
    echo "$name $start $EPOCHREALTIME" >> "$bench_times"
}

bench_variants() {
    local plugin=$1 dir=$2
    shift 2
    bench_run none "$@"
    bench_run qemu-trace "$@" -trace memory_region_ops_read \
        -trace memory_region_ops_write -D "$dir/qemu.log"
    bench_run mmio-trace "$@" -plugin "$plugin"
    bench_run mmio-all "$@" -plugin "$plugin,instrument=all"
    bench_run mmio-all-noskip "$@" -plugin "$plugin,instrument=all,skip_sp_pc=off"
    bench_run mmio-icount "$@" -plugin "$plugin,icount=on"
}

bench_events() {
    target/release/mmio-trace summary "$1" 2>/dev/null | awk '/ events, / {print $1}'
}

bench_report() {
    python3 - "$bench_times" "$@" <<'PY'
import statistics, sys
times = {}
for line in open(sys.argv[1]):
    name, start, end = line.split()
    times.setdefault(name, []).append(float(end) - float(start))
names = sys.argv[2:]
base = statistics.median(times[names[0]])
print(f"{'run':<14} {'median s':>9} {'vs ' + names[0]:>9}  runs")
for name in names:
    m = statistics.median(times[name])
    print(f"{name:<14} {m:>9.3f} {m / base:>8.2f}x  {len(times[name])}")
PY
}
