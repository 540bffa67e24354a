"""ROMFS images (MicroPython 1.25+'s read-only, memory-mappable filesystem): write one, read one back.

Written with mpremote's own VfsRomWriter (what `mpremote romfs build` runs); read by `files()`, so a
build, or a flash tool comparing a board's image, can check an image against its manifest.
"""

from __future__ import annotations

from pathlib import Path

HEADER = b"\xd2\xcd\x31"


class RomfsError(ValueError):
    pass


def image_of(root: Path, top: str) -> bytes:
    """`root/top` as a ROMFS image holding `top/`, written by mpremote's own writer (what `mpremote romfs
    build` runs), its entries sorted the same way; the .mpy files are ours, already compiled."""
    from mpremote.romfs import VfsRomWriter

    writer = VfsRomWriter()

    def walk(d: Path) -> None:
        for p in sorted(d.iterdir(), key=lambda p: p.name):
            if p.is_dir():
                writer.opendir(p.name)
                walk(p)
                writer.closedir()
            else:
                writer.mkfile(p.name, p.read_bytes())

    writer.opendir(top)
    walk(root / top)
    writer.closedir()
    return writer.finalise()


def files(image: bytes) -> dict[str, bytes]:
    """Path -> contents of every file in a ROMFS image (the format VfsRomWriter writes), to check one."""
    def uint(i: int) -> tuple[int, int]:
        v = 0
        while True:
            b = image[i]
            v, i = (v << 7) | (b & 0x7F), i + 1
            if not b & 0x80:
                return v, i

    def records(i: int, end: int, prefix: str, out: dict) -> None:
        while i < end:
            kind, i = uint(i)
            size, i = uint(i)
            if kind in (4, 5):  # directory, file: name then nested records
                n, j = uint(i)
                name = image[j:j + n].decode("ascii")
                if kind == 4:
                    records(j + n, i + size, prefix + name + "/", out)
                else:
                    k, j2 = uint(j + n)
                    length, j3 = uint(j2)
                    if k != 2:
                        raise RomfsError(f"ROMFS file {prefix + name}: data kind {k} not understood")
                    if j3 + length > end:
                        raise IndexError
                    out[prefix + name] = image[j3:j3 + length]
            i += size

    if not image.startswith(HEADER):
        raise RomfsError("not a ROMFS image (no d2:cd:31 header)")
    found: dict[str, bytes] = {}
    try:
        size, start = uint(3)
        if start + size > len(image):
            raise IndexError
        records(start, start + size, "", found)
    except (IndexError, UnicodeDecodeError, RecursionError):
        raise RomfsError("ROMFS image cut short or garbled") from None
    return found
