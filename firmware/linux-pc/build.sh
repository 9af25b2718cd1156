#!/usr/bin/env bash
# Builds the x86 Linux guest for `-M pc`: Debian's amd64 kernel (the package
# linux-image-amd64 depends on, fetched with apt-get download) and an initramfs whose
# only program says it was reached and powers the machine off.
#   build.sh OUTDIR   ->   OUTDIR/{vmlinuz, initrd.gz, kernel-package}
# The kernel is downloaded once per OUTDIR.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)

if [ ! -f "$out/vmlinuz" ]; then
    package=$(apt-cache depends linux-image-amd64 2>/dev/null \
        | awk '/Depends: linux-image-/ {print $2; exit}')
    if [ -z "$package" ]; then
        echo "build.sh: apt knows no linux-image-amd64 (run apt-get update)" >&2
        exit 1
    fi
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && apt-get download -q "$package" 2>/dev/null)
    # The kernel alone, not its 400 MB of modules.
    dpkg-deb --fsys-tarfile "$work"/*.deb | tar -x -C "$work" --wildcards './boot/vmlinuz-*'
    cp "$work"/boot/vmlinuz-* "$out/vmlinuz"
    echo "$package" > "$out/kernel-package"
fi
gcc -nostdlib -static -no-pie -o "$out/init" "$here/init.S"
python3 "$here/../linux-vexpress/make_initramfs.py" "$out/init" "$out/initrd.gz"
