"""Writes a gzip'd newc cpio holding /dev/console, /proc (a mount point), the given
/init and, when given, a kernel module (as /i2c-versatile.ko), without root.
    make_initramfs.py INIT [MODULE] OUT"""
import gzip
import sys


def entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> bytes:
    fields = [1, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    blob = header + name.encode() + b"\0"
    blob += b"\0" * (-len(blob) % 4) + data
    return blob + b"\0" * (-len(blob) % 4)


def main() -> None:
    init_path, *module_paths, out_path = sys.argv[1:]
    with open(init_path, "rb") as f:
        init = f.read()
    archive = (
        entry("dev", 0o040755)
        + entry("dev/console", 0o020600, rdev=(5, 1))
        + entry("proc", 0o040755)
        + entry("init", 0o100755, init)
    )
    for module_path in module_paths:
        with open(module_path, "rb") as f:
            archive += entry("i2c-versatile.ko", 0o100644, f.read())
    archive += entry("TRAILER!!!", 0)
    with open(out_path, "wb") as f:
        f.write(gzip.compress(archive, mtime=0))


main()
