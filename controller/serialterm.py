"""A board's serial console from a terminal (`citygate console`): pyserial, raw passthrough, a log file.

Any port pyserial's `serial_for_url` opens works: /dev/ttyUSB0, an emulated board's /dev/pts/N,
rfc2217://host:port, socket://host:port. The terminal is put in raw mode so every key (Ctrl-C for the
REPL included) goes to the board; Ctrl-] leaves. What the board sends is shown and appended to the log as
it arrives, byte for byte. The port is locked (flock, as mpremote does) so two programs never share it.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import termios
import threading
import tty
from typing import BinaryIO

import serial

LEAVE = b"\x1d"  # Ctrl-]
READ_MAX = 4096


class PortError(Exception):
    """The port cannot be used; the message says why in a user's words."""


def open_port(url: str, baud: int = 115200) -> serial.SerialBase:
    try:
        return serial.serial_for_url(url, baudrate=baud, timeout=0.1, exclusive=True)
    except serial.SerialException as e:
        code = e.errno
        if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            raise PortError(f"no such port: {url}") from e
        if code in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY):
            raise PortError(f"port busy: {url} is open in another program (mpremote, another console)") from e
        if code == errno.EACCES:
            raise PortError(f"no permission to open {url} (on Linux: the dialout group)") from e
        raise PortError(f"cannot open {url}: {e}") from e
    except (ValueError, OSError) as e:  # a bad URL or baud rate; a socket:// that refuses
        raise PortError(f"cannot open {url}: {e}") from e


class Terminal:
    """Bytes from `keys` (a file descriptor) go to the port until Ctrl-] or end of input; the port's
    bytes go to `screen` and `log`."""

    def __init__(self, port: serial.SerialBase, keys: int, screen: BinaryIO, log: BinaryIO | None = None):
        self.port, self.keys, self.screen, self.log = port, keys, screen, log
        self.lost: str | None = None  # why the port went away, if it did
        self._stop = threading.Event()

    def _pump_port(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.port.read(min(max(self.port.in_waiting, 1), READ_MAX))
            except (serial.SerialException, OSError) as e:
                self.lost = str(e) or type(e).__name__
                self._stop.set()
                return
            if data:
                self.screen.write(data)
                self.screen.flush()
                if self.log is not None:
                    self.log.write(data)
                    self.log.flush()

    def run(self) -> None:
        reader = threading.Thread(target=self._pump_port, name="console-port", daemon=True)
        reader.start()
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self.keys], [], [], 0.2)
                if not ready:
                    continue
                data = os.read(self.keys, READ_MAX)
                if not data:
                    break  # end of input
                leave = data.find(LEAVE)
                if leave >= 0:
                    data = data[:leave]
                if data:
                    self.port.write(data)
                if leave >= 0:
                    break
        finally:
            self._stop.set()
            reader.join(5)


def run_console(url: str, baud: int = 115200, log_path: str | None = None) -> str | None:
    """The interactive console on this process's stdin/stdout; returns why the port was lost, if it was."""
    log = open(log_path, "ab") if log_path else None
    try:
        port = open_port(url, baud)
    except BaseException:
        if log is not None:
            log.close()
        raise
    keys = sys.stdin.fileno()
    saved = termios.tcgetattr(keys) if os.isatty(keys) else None
    try:
        if saved is not None:
            tty.setraw(keys)  # before the banner: keys typed once it shows go to the board as they are
        sys.stderr.write(f"--- {url} at {baud} baud; Ctrl-] leaves" + (f"; log: {log_path}" if log_path else "")
                         + " ---\r\n")
        sys.stderr.flush()
        term = Terminal(port, keys, sys.stdout.buffer, log)
        term.run()
    finally:
        if saved is not None:
            termios.tcsetattr(keys, termios.TCSADRAIN, saved)
        port.close()
        if log is not None:
            log.close()
    sys.stderr.write("\r\n--- left " + url + (f" (port lost: {term.lost})" if term.lost else "") + " ---\n")
    return term.lost
