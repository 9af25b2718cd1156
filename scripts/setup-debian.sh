#!/usr/bin/env bash
# Installs what building, tracing and testing need on a fresh Debian bookworm machine:
# QEMU 10.0 from bookworm-backports (TCG plugin API v4) for the architectures the tests
# run (Arm, AArch64, RISC-V, MIPS, PowerPC, x86) with the firmware QEMU loads by default
# (SeaBIOS, iPXE's NIC ROMs), Debian's cross compilers for the test firmware, Debian's
# U-Boot builds for QEMU (real guests the tests trace), glib headers for the PANDA
# plugin, a font for `mmio-trace plot`, the armhf package lists (the Linux guest's
# kernel is Debian's armhf one, see firmware/linux-vexpress/build.sh), and the Python
# consumers (DuckDB, pandas, pyarrow) the tests read traces back with. Recommended
# packages are left out (QEMU's would add its GUI and audio). Safe to run again.
set -euo pipefail

if ! command -v cargo >/dev/null; then
    echo "setup-debian.sh: no Rust toolchain: install Rust >= 1.88 (rustup) first" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# QEMU 10.0 from bookworm-backports: a binary each (the bookworm ones are 7.2).
qemu_packages=(qemu-system-arm qemu-system-x86 qemu-system-mips qemu-system-ppc qemu-system-riscv)
need_backports=()
for binary in qemu-system-arm qemu-system-x86_64 qemu-system-mips qemu-system-ppc qemu-system-riscv64; do
    if ! "$binary" --version 2>/dev/null | grep -q 'version 10\.'; then
        need_backports=("${qemu_packages[@]}")
    fi
done
need_apt=("${need_backports[@]}")
command -v arm-none-eabi-gcc >/dev/null || need_apt+=(gcc-arm-none-eabi)
for compiler in aarch64-linux-gnu riscv64-unknown-elf mips-linux-gnu mipsel-linux-gnu powerpc-linux-gnu; do
    command -v "$compiler-gcc" >/dev/null || need_apt+=("gcc-$compiler")
done
[ -e /usr/lib/u-boot/qemu_arm64/u-boot.bin ] || need_apt+=(u-boot-qemu)
[ -e /usr/share/seabios/bios-256k.bin ] || need_apt+=(seabios)
[ -e /usr/lib/ipxe/qemu/efi-e1000e.rom ] || need_apt+=(ipxe-qemu)
[ -e /usr/lib/arm-none-eabi/newlib ] || need_apt+=(libnewlib-arm-none-eabi)
pkg-config --exists glib-2.0 2>/dev/null || need_apt+=(libglib2.0-dev pkg-config)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)

need_update=false
if ! dpkg --print-foreign-architectures | grep -qx armhf; then
    $SUDO dpkg --add-architecture armhf
    need_update=true
fi

if [ ${#need_apt[@]} -gt 0 ] || $need_update; then
    backports=/etc/apt/sources.list.d/bookworm-backports.sources
    if [ ! -e "$backports" ]; then
        # Same mirror as the machine's own Debian source, so no new host is contacted.
        uris=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
        if [ -z "$uris" ]; then
            uris=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
        fi
        uris=${uris:-http://deb.debian.org/debian}
        $SUDO tee "$backports" >/dev/null <<SRC
Types: deb
URIs: $uris
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    # A mirror caught syncing one index (seen: bookworm-security's armhf list) makes
    # the update fail as a whole though the rest arrived; what is then missing fails
    # below, or in build.sh, with its own message.
    $SUDO apt-get update -q || echo "setup-debian.sh: apt-get update reported errors; going on" >&2
fi

if [ ${#need_apt[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    install=(apt-get install -y -q --no-install-recommends)
    # QEMU must be >= 9.2 for plugin API v4: bookworm itself ships 7.2.
    if [ ${#need_backports[@]} -gt 0 ]; then
        $SUDO "${install[@]}" -t bookworm-backports "${need_backports[@]}"
    fi
    $SUDO "${install[@]}" gcc-arm-none-eabi libnewlib-arm-none-eabi libglib2.0-dev pkg-config \
        fonts-dejavu-core gcc-aarch64-linux-gnu gcc-riscv64-unknown-elf gcc-mips-linux-gnu \
        gcc-mipsel-linux-gnu gcc-powerpc-linux-gnu u-boot-qemu seabios ipxe-qemu
fi

if ! python3 -c 'import duckdb, pandas, pyarrow' 2>/dev/null; then
    requirements="$(dirname "$0")/../requirements-test.txt"
    # Debian's own python3 refuses system-wide pip installs (PEP 668).
    python3 -m pip install -q -r "$requirements" \
        || python3 -m pip install -q --break-system-packages -r "$requirements"
fi

# Real CMSIS-SVD files for the tests: the PyPI sdist of cmsis-svd 0.4 bundles 490
# vendor files; only Nordic's nrf51.svd (the micro:bit's) is kept, in target/svd/.
svd_dir="$(dirname "$0")/../target/svd"
if [ ! -s "$svd_dir/nrf51.svd" ]; then
    mkdir -p "$svd_dir"
    download=$(mktemp -d)
    python3 -m pip download -q --no-deps --no-binary :all: cmsis-svd==0.4 -d "$download"
    tar --no-same-owner -xzf "$download"/cmsis-svd-0.4.tar.gz -C "$download" \
        cmsis-svd-0.4/cmsis_svd/data/Nordic/nrf51.svd
    mv "$download"/cmsis-svd-0.4/cmsis_svd/data/Nordic/nrf51.svd "$svd_dir/nrf51.svd"
    rm -rf "$download"
fi
