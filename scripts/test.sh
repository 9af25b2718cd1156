#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, docs, the Rust tests (unit, property, and
# end-to-end tests under real qemu-system-arm on firmware built from firmware/),
# the Python consumer tests (DuckDB, pandas, pyarrow), the benchmarks in quick mode and
# the fuzzers for a bounded time. Prints how long each step took, slowest first.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
times=target/step-times.txt
: > "$times"

# step NAME COMMAND...: runs COMMAND and records its wall time under NAME.
step() {
    local name=$1 start=$SECONDS
    shift
    "$@"
    echo "$((SECONDS - start)) $name" >> "$times"
}

step setup bash scripts/setup-debian.sh

step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
step doc env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps -q
run_tests() { cargo test --workspace --no-fail-fast 2>&1 | tee target/test-output.txt; }
step tests run_tests

# Benchmarks in quick mode: they must build and run; their numbers are not asserted
# (docs/PERFORMANCE.md has the measured ones and how to rerun them).
step bench-recorder cargo bench -q -p mmio-core --bench recorder -- --quick
step bench-writers cargo bench -q -p mmio-export --bench writers -- --quick
step bench-panda-callback cargo bench -q -p mmio-panda --bench callback -- --quick
step bench-writers-script bash bench/writers.sh 100000
step bench-overhead bash bench/overhead.sh 20 1
step bench-linux-boot bash bench/linux-boot.sh 1
step bench-x86-boot bash bench/x86-boot.sh 1
step bench-analysis bash bench/analysis.sh 200000

# Fuzz the three trace readers for a bounded time (any crash fails this script and is
# kept under fuzz/regressions/ to be replayed by every later run).
command -v cargo-fuzz >/dev/null || step install-cargo-fuzz cargo install -q cargo-fuzz --locked
step fuzz bash fuzz/run.sh 20

echo "step times (s), slowest first, $((SECONDS)) s in all:"
sort -rn "$times"

# One closing line for the whole run (the fuzzers and benches print after the tests).
awk '/^test result:/ { passed += $4; failed += $6 }
     END { printf "tests: %d passed, %d failed\n", passed, failed }' target/test-output.txt
