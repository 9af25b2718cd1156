#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, the Rust tests (unit, property, and
# end-to-end tests under real qemu-system-arm on firmware built from firmware/),
# the Python consumer tests (DuckDB, pandas, pyarrow), the benchmarks in quick mode and
# the fuzzers for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-debian.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
mkdir -p target
cargo test --workspace 2>&1 | tee target/test-output.txt

# Benchmarks in quick mode: they must build and run; their numbers are not asserted
# (docs/PERFORMANCE.md has the measured ones and how to rerun them).
cargo bench -q -p mmio-core --bench recorder -- --quick
cargo bench -q -p mmio-export --bench writers -- --quick
cargo bench -q -p mmio-panda --bench callback -- --quick
bash bench/writers.sh 100000
bash bench/overhead.sh 20 1
bash bench/linux-boot.sh 1

# Fuzz the three trace readers for a bounded time (any crash fails this script and is
# kept under fuzz/regressions/ to be replayed by every later run).
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz --locked
bash fuzz/run.sh 20

# One closing line for the whole run (the fuzzers and benches print after the tests).
awk '/^test result:/ { passed += $4; failed += $6 }
     END { printf "tests: %d passed, %d failed\n", passed, failed }' target/test-output.txt
