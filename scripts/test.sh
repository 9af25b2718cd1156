#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, the Rust tests (unit, property, and
# end-to-end tests under real qemu-system-arm on firmware built from firmware/),
# the Python consumer tests (DuckDB, pandas, pyarrow), and the benchmarks in quick mode.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-debian.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace

# Benchmarks in quick mode: they must build and run; their numbers are not asserted
# (docs/PERFORMANCE.md has the measured ones and how to rerun them).
cargo bench -q -p mmio-core --bench recorder -- --quick
cargo bench -q -p mmio-export --bench writers -- --quick
bash bench/writers.sh 100000
bash bench/overhead.sh 20 1

# Fuzz the three trace readers for a bounded time (any crash fails this script and is
# kept under fuzz/regressions/ to be replayed by every later run).
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz --locked
bash fuzz/run.sh 20
