"""The firmware an emulated board runs: the ROMFS image of `citygate firmware build --profile emulated`.

A real board runs its code from flash (.mpy files, or a ROMFS image executed in place) and keeps its
heap for data; compiling the sources on the board needs large unbroken pieces of heap that a small
board does not have. So the emulated board runs the same build, made once per content of firmware/
and protocols/ and kept in a cache, shared by every rig and process (a lock makes one build at a time).
`CITYGATE_BOARD_CODE=source` runs the sources instead (to debug with line-exact tracebacks).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path

from emulator.micropython import REPO

SOURCES = ("firmware", "protocols")


def from_source() -> bool:
    return os.environ.get("CITYGATE_BOARD_CODE", "build") == "source"


def _fingerprint() -> str:
    """A hash of every firmware and protocols source file: a new image whenever one changes."""
    h = hashlib.sha256()
    for top in SOURCES:
        for path in sorted((REPO / top).rglob("*.py")):
            h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("CITYGATE_BUILD_CACHE") or Path(tempfile.gettempdir()) / "citygate-firmware")


def image() -> Path:
    """The ROMFS image of the current sources, built now if the cache has none."""
    from controller.firmware_build import ROMFS_NAME, build

    out = cache_dir() / _fingerprint()
    target = out / ROMFS_NAME
    if target.exists():
        return target
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same image
        if not target.exists():
            build(out, profile="emulated")
    return target
