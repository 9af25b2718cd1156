#!/usr/bin/env bash
# Builds the -M virt test firmware: build.sh OUT.elf [-DNAME...]
#   -DCFI_QUERY  also query the CFI flash (see fw.c)
set -euo pipefail
here="$(dirname "$0")"
out="$1"
shift
arm-none-eabi-gcc -mcpu=cortex-a15 -marm -O1 -fno-unroll-loops -nostdlib -ffreestanding \
    -Wall -Werror -I "$here/../include" "$@" -T "$here/link.ld" "$here/fw.c" -o "$out"
