#!/usr/bin/env bash
# Builds the -M ppce500 test firmware: build.sh OUT.elf [-DNAME...]
set -euo pipefail
here="$(dirname "$0")"
out="$1"
shift
powerpc-linux-gnu-gcc -mcpu=8548 -msoft-float -O1 -fno-unroll-loops -nostdlib -ffreestanding \
    -fno-pic -mno-sdata -G0 -static -no-pie -Wl,--build-id=none -Wall -Werror "$@" \
    -T "$here/link.ld" "$here/fw.c" -o "$out"
