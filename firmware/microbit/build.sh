#!/usr/bin/env bash
# Builds the -M microbit test firmware: build.sh OUT.elf [COMPILER FLAGS...]
set -euo pipefail
here="$(dirname "$0")"
out="$1"
shift
arm-none-eabi-gcc -mcpu=cortex-m0 -mthumb -O1 -fno-unroll-loops -nostdlib -ffreestanding \
    -Wall -Werror -I "$here/../include" "$@" -T "$here/link.ld" "$here/fw.c" -o "$out"
