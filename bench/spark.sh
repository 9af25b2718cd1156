#!/usr/bin/env bash
# Reads an mmio-trace dataset (directories of rotated Parquet parts from two runs) with
# Apache Spark in local mode and runs the summary query: what a cluster user would do.
# Not run in CI (pyspark is a 300+ MiB download and Spark needs a JVM): run by hand,
#   bench/spark.sh [EVENTS]      (default 3000000: two runs of EVENTS and EVENTS/2)
# Needs Java 17+ (Debian: openjdk-17-jre-headless); installs pyspark from PyPI into
# target/spark-venv. Prints the Spark schema (how our unsigned columns map) and the
# per-run, per-device counts next to mmio-trace's own.
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-3000000}"
command -v java >/dev/null || { echo "spark.sh: needs Java 17+ (apt-get install openjdk-17-jre-headless)" >&2; exit 2; }
venv=target/spark-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import pyspark' 2>/dev/null || "$venv/bin/pip" install -q pyspark
cargo build --release -q -p mmio-export --example write_trace
cargo build --release -q -p mmio-cli
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Two runs (each file gets its own random run id), rotated into parts of 500k events.
target/release/examples/write_trace "$dir/one.parquet" "$events" >/dev/null
target/release/examples/write_trace "$dir/two.parquet" "$((events / 2))" >/dev/null
target/release/mmio-trace convert "$dir/one.parquet" "$dir/traces/board=bench/one/" --rotate 500k
target/release/mmio-trace convert "$dir/two.parquet" "$dir/traces/board=bench/two/" --rotate 500k
echo "mmio-trace summary of the dataset:"
target/release/mmio-trace summary "$dir/traces" | tail -n 1
"$venv/bin/python" - "$dir/traces" <<'PY'
import sys, time
from pyspark.sql import SparkSession

root = sys.argv[1]
spark = (SparkSession.builder.master("local[2]").appName("mmio-trace")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
print(f"Spark {spark.version}")
start = time.monotonic()
trace = spark.read.option("recursiveFileLookup", "false").parquet(root)
print("schema (Parquet type -> Spark type):")
for field in trace.schema.fields:
    print(f"  {field.name:<12} {field.dataType.simpleString()}")
trace.createOrReplaceTempView("trace")
rows = spark.sql("""
    SELECT run, board, device, type, count(*) AS n, max(value) AS max_value
    FROM trace GROUP BY run, board, device, type ORDER BY run, device, type
""").collect()
elapsed = time.monotonic() - start
for row in rows:
    print(f"  {row.run}  {row.board}  {row.device:<14} {row.type}  {row.n:>9}  max value {row.max_value}")
total = spark.sql("SELECT count(*) AS n, count(DISTINCT run) AS runs FROM trace").first()
print(f"{total.n} events in {total.runs} runs; schema + summary query {elapsed:.1f} s")
spark.stop()
PY
