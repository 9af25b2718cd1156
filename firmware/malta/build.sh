#!/usr/bin/env bash
# Builds the -M malta test firmware: build.sh OUT.elf be|el [-DNAME...]
#   be  big-endian, for qemu-system-mips;  el  little-endian, for qemu-system-mipsel
set -euo pipefail
here="$(dirname "$0")"
out="$1"
case "$2" in
be) cc=mips-linux-gnu-gcc ;;
el) cc=mipsel-linux-gnu-gcc ;;
*) echo "build.sh OUT.elf be|el [-DNAME...]" >&2; exit 2 ;;
esac
shift 2
"$cc" -march=mips32r2 -mno-abicalls -fno-pic -G0 -O1 -fno-unroll-loops -nostdlib \
    -ffreestanding -static -no-pie -Wl,--build-id=none -Wall -Werror "$@" \
    -T "$here/link.ld" "$here/fw.c" -o "$out"
