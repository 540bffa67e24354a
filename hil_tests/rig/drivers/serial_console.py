"""The board's console on a serial line (any pyserial URL): every line kept in memory and written to a log file."""

from __future__ import annotations

import threading
from pathlib import Path

import serial

from hil_tests.rig import base

MAX_LINES = 200_000  # kept in memory; the log file has them all
MAX_LINE = 4096  # a line without its end longer than this is cut


class SerialConsole(base.Console):
    def __init__(self, url: str, baudrate: int, log_path: Path):
        self.url, self.baudrate, self.log_path = url, baudrate, Path(log_path)
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._port = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def open(self) -> SerialConsole:
        self._port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.1)
        self._log = self.log_path.open("a", buffering=1, errors="replace")
        self._thread = threading.Thread(target=self._read, name=f"console {self.url}", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        pending = bytearray()
        while not self._stop.is_set():
            try:
                data = self._port.read(4096)
            except (serial.SerialException, OSError, TypeError) as e:  # unplugged, or closed under us
                if not self._stop.is_set():
                    self._add(f"=== rig: console read failed: {e} ===")
                return
            if not data:
                continue
            pending += data
            while True:
                cut = pending.find(b"\n")
                if cut < 0:
                    break
                self._add(bytes(pending[:cut]).decode(errors="replace").rstrip("\r"))
                del pending[:cut + 1]
            if len(pending) > MAX_LINE:
                self._add(bytes(pending).decode(errors="replace"))
                pending.clear()

    def _add(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)
            if len(self._lines) > MAX_LINES:
                del self._lines[:len(self._lines) - MAX_LINES]
            self._log.write(line + "\n")

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def note(self, text: str) -> None:
        """A rig event in the console's timeline (power on/off), as the emulated rig logs it."""
        self._add(f"=== rig: {text} ===")

    def write(self, data: bytes) -> None:
        self._port.write(data)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._port is not None:
            self._port.close()
            self._log.close()
            self._port = None
