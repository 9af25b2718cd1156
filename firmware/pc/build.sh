#!/usr/bin/env bash
# Builds the -M pc / -M q35 test firmware (a 32-bit multiboot ELF): build.sh OUT.elf [-DNAME...]
# Plain Debian gcc and binutils (amd64) are enough: -m32 with -nostdlib -ffreestanding
# needs no gcc-multilib (no 32-bit libc or libgcc is linked, <stdint.h> is gcc's own).
set -euo pipefail
here="$(dirname "$0")"
out="$1"
shift
gcc -m32 -march=i686 -ffreestanding -nostdlib -fno-pic -fno-pie -static -O1 -fno-unroll-loops \
    -fno-asynchronous-unwind-tables -Wl,--build-id=none \
    -Wall -Werror -I "$here" "$@" -T "$here/link.ld" "$here/fw.c" -o "$out"
