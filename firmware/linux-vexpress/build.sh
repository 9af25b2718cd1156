#!/usr/bin/env bash
# Builds the Linux guest for `-M vexpress-a9`: Debian's armhf kernel (the package
# linux-image-armmp depends on, fetched with apt; needs the armhf architecture, which
# scripts/setup-debian.sh adds) with its Versatile Express device tree, and an
# initramfs whose only program says it was reached and powers the board off (after
# loading the kernel module of the board's DVI I2C controller, i2c-versatile.ko, and
# copying /proc/kallsyms to the host through semihosting when given `-- /HOST_FILE`).
#   build.sh OUTDIR   ->   OUTDIR/{vmlinuz, vexpress-v2p-ca9.dtb, i2c-versatile.ko, initrd.gz}
# The kernel is downloaded once per OUTDIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)

if [ ! -f "$out/vmlinuz" ] || [ ! -f "$out/vexpress-v2p-ca9.dtb" ] \
    || [ ! -f "$out/i2c-versatile.ko" ]; then
    package=$(apt-cache depends linux-image-armmp:armhf 2>/dev/null \
        | awk '/Depends: linux-image-/ {print $2; exit}')
    if [ -z "$package" ]; then
        echo "build.sh: apt knows no linux-image-armmp:armhf; run scripts/setup-debian.sh (it adds the armhf architecture)" >&2
        exit 1
    fi
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && apt-get download -q "$package" 2>/dev/null)
    dpkg-deb -x "$work"/*.deb "$work/root"
    cp "$work"/root/boot/vmlinuz-* "$out/vmlinuz"
    cp "$work"/root/usr/lib/linux-image-*/vexpress-v2p-ca9.dtb "$out/"
    module=$(find "$work/root" -name 'i2c-versatile.ko*' | head -n 1)
    case "$module" in
        *.ko) cp "$module" "$out/" ;;
        "") echo "build.sh: $package holds no i2c-versatile module" >&2; exit 1 ;;
        *) echo "build.sh: $module is compressed; init loads only a plain .ko" >&2; exit 1 ;;
    esac
    echo "$package" > "$out/kernel-package"
fi
arm-none-eabi-gcc -nostdlib -static -Wl,-Ttext=0x10000 -o "$out/init" "$here/init.S"
python3 "$here/make_initramfs.py" "$out/init" "$out/i2c-versatile.ko" "$out/initrd.gz"
