#!/usr/bin/env bash
# Builds the demo/test firmware: build.sh OUT.elf [-DFOREVER] [-DREPEAT=N] ...
# (the demo, the integration tests and the benchmarks all call this script).
set -euo pipefail
here="$(dirname "$0")"
out="$1"
shift
arm-none-eabi-gcc -mcpu=cortex-m3 -mthumb -O1 -fno-unroll-loops -nostdlib -ffreestanding \
    -Wall -Werror -I "$here/../include" "$@" -T "$here/link.ld" "$here/fw.c" -o "$out"
