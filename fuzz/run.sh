#!/usr/bin/env bash
# Runs each fuzz target for a bounded time: fuzz/run.sh [SECONDS]  (default 30).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); libFuzzer wants nightly features, which
# RUSTC_BOOTSTRAP=1 enables on the stable toolchain. Inputs that crashed are kept in
# fuzz/regressions/<target>/ and replayed by every run. A fixed seed makes CI's short
# run explore the same way each time; run longer, or with another -seed, to dig further.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
export RUSTC_BOOTSTRAP=1
for target in read_json_lines read_panda_json read_parquet; do
    mkdir -p "corpus/$target" "regressions/$target"
    cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true
    # Replay the regressions first, then explore.
    if compgen -G "regressions/$target/*" >/dev/null; then
        cargo fuzz run "$target" "regressions/$target"/* -- -runs=0
    fi
    cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" \
        -artifact_prefix="regressions/$target/" -seed=1
done
