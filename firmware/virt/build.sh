#!/usr/bin/env bash
# Builds the -M virt test firmware: build.sh OUT.elf
set -euo pipefail
here="$(dirname "$0")"
arm-none-eabi-gcc -mcpu=cortex-a15 -marm -O1 -fno-unroll-loops -nostdlib -ffreestanding \
    -Wall -Werror -I "$here/../include" -T "$here/link.ld" "$here/fw.c" -o "$1"
