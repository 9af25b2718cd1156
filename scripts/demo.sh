#!/usr/bin/env bash
# The main job on the bundled default: install what is missing, build the plugin and
# the CLI, build the demo firmware (firmware/lm3s6965evb), trace it under QEMU into
# demo-trace.parquet and print the per-device summary.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-debian.sh
cargo build --release -q -p mmio-qemu -p mmio-cli
mkdir -p target/demo
firmware/lm3s6965evb/build.sh target/demo/fw.elf

target/release/mmio-trace qemu --out demo-trace.parquet -- \
    qemu-system-arm -M lm3s6965evb -kernel target/demo/fw.elf -nographic \
    -semihosting-config enable=on,target=native
