#!/usr/bin/env bash
# Builds the AArch64 -M virt test firmware: build.sh OUT.elf [-DNAME...]
set -euo pipefail
here="$(dirname "$0")"
out="$1"
shift
# -mstrict-align: with the MMU off every data access is Device memory, where an
# unaligned access faults; -mgeneral-regs-only: FP/SIMD is trapped (CPACR_EL1.FPEN=0).
aarch64-linux-gnu-gcc -mcpu=cortex-a57 -mgeneral-regs-only -mstrict-align -O1 \
    -fno-unroll-loops -fno-pic -static -nostdlib -ffreestanding -Wall -Werror \
    -Wl,--build-id=none,--no-warn-rwx-segments -I "$here" "$@" -T "$here/link.ld" "$here/start.S" "$here/fw.c" \
    -o "$out"
