"""A MicroPython board over its serial console, for `citygate flash` and `citygate check`.

mpremote is used as a library (its SerialTransport: raw REPL, raw-paste mode), not as a subprocess:
one connection carries every step (probe, hashes, writes, verification, reset), so the running firmware
is interrupted once, progress is known byte by byte, and each failure is caught as an exception and told
in the technician's words instead of parsed out of another program's output.

Every error is a `BoardError` whose `exit_code` says which kind of mistake it is (see EXIT).
"""

from __future__ import annotations

import base64
import json
import time

from controller.serialterm import PortError, open_port

EXIT = {"failed": 1, "bundle": 2, "port": 3, "not_micropython": 4, "mismatch": 5, "space": 6}
BANNER = b"fw ready"  # the firmware's boot line: "[0] gateway gw-x up: profile ..., fw ready"
BOOT_FAILED = (b"Traceback (most recent call last)", b"no device config on flash")
WRITE_CHUNK = 3072  # bytes per exec: 4 KiB of base64, well inside a small board's heap
RAW_REPL_TIMEOUT_S = 6


class BoardError(Exception):
    """`kind` is a key of EXIT; the message says what is wrong and what to do."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.exit_code = kind, EXIT[kind]


PROBE = r"""
import sys, os, gc, json
def _j(p):
    try:
        with open(p) as f:
            d = json.load(f)
        return d if isinstance(d, dict) else None
    except Exception:
        return None
r = {"platform": sys.platform, "mpy": getattr(sys.implementation, "_mpy", None), "version": sys.version,
     "machine": getattr(sys.implementation, "_machine", ""), "cwd": os.getcwd()}
try:
    s = os.statvfs(os.getcwd())
    r["block"], r["free"], r["size"] = s[0], s[0] * s[3], s[0] * s[2]
except Exception:
    r["block"], r["free"], r["size"] = 4096, None, None
try:
    import vfs
    r["romfs"] = vfs.rom_ioctl(1) if hasattr(vfs, "rom_ioctl") else 0
except Exception:
    r["romfs"] = 0
c = _j("config.json")
r["config"] = {"id": c.get("id"), "profile": c.get("profile")} if c else None
r["fw"] = _j("fw.json")
if sys.platform == "linux" and len(sys.argv) > 1:
    b = _j(sys.argv[1])
    r["hardware_profile"] = b.get("profile") if b else None
gc.collect()
r["heap_free"] = gc.mem_free()
print(json.dumps(r))
"""

HASHES = r"""
import hashlib, binascii, json
def _h(p):
    try:
        h, b = hashlib.sha256(), bytearray(512)
        with open(p, "rb") as f:
            while True:
                n = f.readinto(b)
                if not n:
                    break
                h.update(memoryview(b)[:n])
        return binascii.hexlify(h.digest()).decode()
    except OSError:
        return None
print(json.dumps([_h(p) for p in %s]))
"""


class Board:
    """`with Board(port) as b: b.enter(); info = b.probe()`: the board's REPL through mpremote."""

    def __init__(self, port: str, baud: int = 115200):
        from mpremote.transport_serial import SerialTransport

        try:  # pyserial's own error tells a missing port from a busy one; mpremote's says only "failed"
            open_port(port, baud).close()
        except PortError as e:
            raise BoardError("port", str(e)) from None
        try:
            self.t = SerialTransport(port, baudrate=baud)
        except Exception as e:
            raise BoardError("port", f"cannot open {port}: {e}") from None
        self.t.serial.timeout = 0.2  # reads of the console (restart, watch) never block for long
        self.port = port
        self.seen = b""  # console output read past the boot banner: watch() looks at it first
        self.wdt_ms: int | None = None  # an ESP32's watchdog keeps running once main is interrupted

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.t.close()
        except Exception:
            pass

    def enter(self, soft_reset: bool) -> None:
        """Interrupt what runs (Ctrl-C) and enter the raw REPL; `soft_reset`: a fresh interpreter, main.py
        not run (what mpremote does); without it the firmware's objects stay for inspection."""
        from mpremote.transport import TransportError

        try:
            if not self._answers_raw_repl():  # mpremote's own wait never ends while a device keeps talking
                raise TransportError(f"nothing like a raw REPL in {RAW_REPL_TIMEOUT_S} s")
            self.t.enter_raw_repl(soft_reset=soft_reset, timeout_overall=RAW_REPL_TIMEOUT_S)
        except (TransportError, OSError) as e:
            raise BoardError("not_micropython", f"{self.port} does not answer as a MicroPython board (no raw "
                             f"REPL after Ctrl-C, Ctrl-A: {e}); check the port, the baud rate, and that "
                             "MicroPython is installed on the board (esptool)") from None

    def _answers_raw_repl(self) -> bool:
        """Ctrl-C, Ctrl-A, and the raw REPL's banner within RAW_REPL_TIMEOUT_S, whatever else the port sends."""
        s = self.t.serial
        s.write(b"\r\x03\r\x01")  # as mpremote: one Ctrl-C
        got, deadline = b"", time.monotonic() + RAW_REPL_TIMEOUT_S
        while time.monotonic() < deadline:
            got = (got + s.read(s.in_waiting or 1))[-512:]
            if b"raw REPL; CTRL-B to exit" in got:
                return True
        return False

    def run(self, code: str, timeout: float = 30) -> str:
        from mpremote.transport import TransportError

        try:
            out, err = self.t.exec_raw(code, timeout=timeout)
        except (TransportError, OSError) as e:
            raise BoardError("failed", f"the board stopped answering on {self.port}: {e}") from None
        if err:
            raise BoardError("failed", "the board refused a command: "
                             + err.decode(errors="replace").strip()[-400:])
        return out.decode(errors="replace")

    def json(self, code: str):
        out = self.run(code).strip().splitlines()
        try:
            return json.loads(out[-1])
        except (IndexError, ValueError):
            raise BoardError("not_micropython", f"{self.port}: unexpected answer {out[-3:]!r}") from None

    def probe(self) -> dict:
        info = self.json(PROBE)
        if not isinstance(info, dict) or not isinstance(info.get("mpy"), int):
            raise BoardError("not_micropython", f"{self.port}: a MicroPython without sys.implementation._mpy "
                             "(older than 1.19): install MicroPython 1.29")
        if info["platform"] == "esp32":  # once interrupted, the firmware's watchdog would reset the board
            self.wdt_ms = 30000
            self.run(f"from machine import WDT\n_wdt = WDT(timeout={self.wdt_ms})\n_wdt.feed()")
        return info

    def feed(self) -> None:
        if self.wdt_ms:
            self.run("_wdt.feed()")

    def hashes(self, paths: list[str]) -> dict[str, str | None]:
        got = self.json(HASHES % json.dumps(paths))
        return dict(zip(paths, got, strict=True))

    def makedirs(self, dirs: list[str]) -> None:
        if dirs:
            self.run("import os\nfor d in %s:\n try:\n  os.mkdir(d)\n except OSError:\n  pass" % json.dumps(dirs))

    def write(self, path: str, data: bytes, progress=None) -> None:
        """Write `path`.tmp in pieces, then rename it onto `path` (never remove first)."""
        tmp = path + ".tmp"
        self.run("from binascii import a2b_base64\n_f = open(%s, 'wb')" % json.dumps(tmp))
        for off in range(0, len(data), WRITE_CHUNK):
            piece = base64.b64encode(data[off:off + WRITE_CHUNK]).decode()
            self.run(f"_f.write(a2b_base64('{piece}'))")
            if progress:
                progress(min(off + WRITE_CHUNK, len(data)))
        self.run("_f.close()\nimport os\nos.rename(%s, %s)" % (json.dumps(tmp), json.dumps(path)))
        if progress:
            progress(len(data))

    def remove(self, path: str) -> None:
        self.run("import os\ntry:\n os.remove(%s)\nexcept OSError:\n pass" % json.dumps(path))

    def restart(self, timeout: float = 90) -> str:
        """Leave the raw REPL and soft-reset from the friendly one, so main.py runs; returns the boot
        banner once the firmware prints it, or raises with what the board printed instead."""
        self.t.exit_raw_repl()
        self.t.read_until(1, b">>> ", timeout=5)
        self.t.serial.write(b"\x04")
        got, deadline = b"", time.monotonic() + timeout
        while time.monotonic() < deadline:
            got += self.t.serial.read(self.t.serial.in_waiting or 1)
            if BANNER in got:
                end = got.index(BANNER) + len(BANNER)
                self.seen = got[end:]
                return got[:end].decode(errors="replace").splitlines()[-1].strip()
            if any(b in got for b in BOOT_FAILED) and got.endswith(b">>> "):
                break
        tail = got.decode(errors="replace").strip().splitlines()[-12:]
        raise BoardError("failed", "the firmware did not boot (no 'fw ready' line); the board printed:\n  "
                         + "\n  ".join(tail))

    def watch(self, tokens: tuple[bytes, ...], seconds: float) -> bool:
        """Read the console without interrupting anything, until every token showed or `seconds` pass."""
        left, tail, deadline = set(tokens), self.seen, time.monotonic() + seconds
        left = {t for t in left if t not in tail}
        while left and time.monotonic() < deadline:
            tail = (tail + self.t.serial.read(self.t.serial.in_waiting or 1))[-4096:]
            left = {t for t in left if t not in tail}
        return not left
