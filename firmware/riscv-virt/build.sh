#!/usr/bin/env bash
# Builds the RISC-V -M virt test firmware: build.sh OUT.elf 32|64 [-DNAME...]
#   32  rv32imac / ilp32, for qemu-system-riscv32
#   64  rv64imac / lp64,  for qemu-system-riscv64
# (_zicsr: binutils >= 2.38 wants the CSR instructions named as an extension.)
set -euo pipefail
here="$(dirname "$0")"
out="$1"
xlen="$2"
shift 2
case "$xlen" in
32) arch=rv32imac_zicsr abi=ilp32 ;;
64) arch=rv64imac_zicsr abi=lp64 ;;
*) echo "usage: $0 OUT.elf 32|64 [-DNAME...]" >&2; exit 2 ;;
esac
riscv64-unknown-elf-gcc -march="$arch" -mabi="$abi" -mcmodel=medany -O1 -fno-unroll-loops \
    -nostdlib -ffreestanding -Wall -Werror "$@" -T "$here/link.ld" "$here/fw.c" -o "$out"
