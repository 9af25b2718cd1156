"""Writes a gzip'd newc cpio holding /dev/console, /proc (a mount point) and the given
/init, without root."""
import gzip
import sys


def entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> bytes:
    fields = [1, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    blob = header + name.encode() + b"\0"
    blob += b"\0" * (-len(blob) % 4) + data
    return blob + b"\0" * (-len(blob) % 4)


def main() -> None:
    init_path, out_path = sys.argv[1], sys.argv[2]
    with open(init_path, "rb") as f:
        init = f.read()
    archive = (
        entry("dev", 0o040755)
        + entry("dev/console", 0o020600, rdev=(5, 1))
        + entry("proc", 0o040755)
        + entry("init", 0o100755, init)
        + entry("TRAILER!!!", 0)
    )
    with open(out_path, "wb") as f:
        f.write(gzip.compress(archive, mtime=0))


main()
