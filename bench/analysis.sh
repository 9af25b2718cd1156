#!/usr/bin/env bash
# Analysis speed: `mmio-trace summary` and `registers` against DuckDB computing the same
# tables from the same Parquet trace, medians of three alternating runs, one ratio per
# command. bench/analysis.sh [EVENTS]   (default 13000000)
# DuckDB from PyPI (scripts/setup-debian.sh), both on every core of the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-13000000}"
cargo build --release -q -p mmio-export --example write_trace
cargo build --release -q -p mmio-cli
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
trace="$dir/trace.parquet"
target/release/examples/write_trace "$trace" "$events" >/dev/null
python3 - "$trace" <<'PY'
import statistics, subprocess, sys, time
import duckdb

trace = sys.argv[1]
# The same tables as mmio-trace's: devices told apart by name and region base, and
# the missing-peripherals section (stubs and unassigned addresses, by 4 KiB page).
summary_sql = f"""
    WITH t AS (SELECT *, coalesce(phys_addr, virt_addr) AS address FROM read_parquet('{trace}'))
    SELECT * FROM (
        SELECT device, address - "offset" AS base, any_value(device_kind),
               count(*) FILTER (WHERE type = 'R') AS reads,
               count(*) FILTER (WHERE type = 'W') AS writes,
               count(DISTINCT "offset") AS registers, count(DISTINCT guest_pc) AS pcs,
               arg_min(guest_pc, seq) AS first_pc, arg_max(guest_pc, seq) AS last_pc,
               min(seq) AS first_seq, max(seq) AS last_seq
        FROM t GROUP BY device, base) devices,
    (SELECT count(*) FROM (
        SELECT device, address // 4096 AS page, count(*) FILTER (WHERE type = 'R'),
               count(*) FILTER (WHERE type = 'W'), count(DISTINCT guest_pc),
               arg_min(guest_pc, seq)
        FROM t WHERE device_kind IN ('unimplemented', 'unassigned') GROUP BY ALL)) missing"""
registers_sql = f"""
    WITH counted AS (
        SELECT device, "offset", value, count(*) AS n,
               count(*) FILTER (WHERE type = 'R') AS reads,
               count(*) FILTER (WHERE type = 'W') AS writes
        FROM read_parquet('{trace}') GROUP BY ALL),
    pcs AS (SELECT device, "offset", list(DISTINCT guest_pc) AS pcs
            FROM read_parquet('{trace}') GROUP BY ALL)
    SELECT c.device, c."offset", sum(reads), sum(writes), count(*) AS values,
           max_by(value, n, 3) AS top, any_value(p.pcs)
    FROM counted c JOIN pcs p USING (device, "offset") GROUP BY ALL"""

def duckdb_run(sql):
    con = duckdb.connect()
    start = time.monotonic()
    con.execute(sql).fetchall()
    return time.monotonic() - start

def ours(*args):
    start = time.monotonic()
    subprocess.run(["target/release/mmio-trace", *args, trace], check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - start

times = {name: [] for name in ["summary", "duckdb summary", "registers", "duckdb registers"]}
for _ in range(3):
    times["summary"].append(ours("summary"))
    times["duckdb summary"].append(duckdb_run(summary_sql))
    times["registers"].append(ours("registers"))
    times["duckdb registers"].append(duckdb_run(registers_sql))
median = {name: statistics.median(t) for name, t in times.items()}
totals = [line for line in subprocess.run(
    ["target/release/mmio-trace", "summary", trace], check=True, capture_output=True,
    text=True).stdout.splitlines() if " events, " in line]
print(f"trace: {totals[0]}")
print(f"{'what':<18} {'median s':>9} {'vs DuckDB':>10}")
for ours_name, theirs in [("summary", "duckdb summary"), ("registers", "duckdb registers")]:
    print(f"{ours_name:<18} {median[ours_name]:>9.2f} {median[ours_name] / median[theirs]:>9.2f}x")
    print(f"{theirs:<18} {median[theirs]:>9.2f}")
PY
