"""The emulated board's serial console, reached like a USB-UART board's: a pty that a user, mpremote or pyserial opens.

Two kinds of pty:

* `BoardLine`, one per boot: the micropython process's stdin, stdout and stderr. The rig keeps its master,
  reads every byte the board prints (`lines()`) and feeds it what the console sends (`write()`).
* `SerialConsole`, one for the rig's life: its slave path (`path`) is the board's serial port. It stays while
  the board loses power, as a USB-UART adapter stays plugged: output just stops, and after power on the boot
  log comes again. Board output goes to it only while someone has it open (nothing queues up for a later
  reader, nothing blocks); a slow reader loses bytes, as with a UART.

Ctrl-C. The unix port reads its REPL in raw mode (no ISIG) and runs code (main.py, a REPL line, a raw-REPL
block) in the terminal's original mode, where a terminal's line discipline makes Ctrl-C a SIGINT to its
foreground process, which MicroPython turns into KeyboardInterrupt. The board's pty is not the process's
controlling terminal (on a board only Ctrl-C is special, not Ctrl-Z or Ctrl-\\), so `BoardLine` plays that
part: while code runs and the process catches SIGINT, a Ctrl-C byte becomes SIGINT; the other bytes wait
(bounded) until the REPL reads again, as a board's UART buffer keeps them, instead of being echoed or flushed
by the cooked tty. Output: the firmware prints "\\n" and the REPL "\\r\\n"; a board's stdout sends "\\r\\n" for
both, so the console does too (the board pty's ONLCR is off, so the REPL's own "\\r\\n" stay single).
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import termios
import threading
import tty
from collections.abc import Callable, Iterator

HELD_MAX = 4096  # bytes kept for the REPL while code runs (a board's UART receive buffer); the rest is lost
LINE_MAX = 65536  # a console "line" without a newline is logged in pieces of this size
CTRL_C = b"\x03"


def _nonblocking(fd: int) -> None:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


def _write_some(fd: int, data: bytes) -> None:
    """Write what the pty takes now; the rest is lost (an overrun), nobody waits."""
    try:
        os.write(fd, data)
    except OSError:
        pass


class BoardLine:
    """The board end of the serial line for one boot: a pty whose slave the micropython process gets."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        attrs = termios.tcgetattr(self.slave)
        attrs[1] &= ~termios.ONLCR  # the REPL writes "\r\n" itself; SerialConsole adds the "\r" print() leaves out
        termios.tcsetattr(self.slave, termios.TCSANOW, attrs)
        _nonblocking(self.master)
        self.pid: int | None = None
        self.interrupted = False  # a Ctrl-C from the console reached the running code
        self.repl: str | None = None  # "friendly" or "raw" once the board shows a REPL
        self._held = bytearray()
        self._lock = threading.Lock()

    def started(self, pid: int) -> None:
        self.pid = pid
        os.close(self.slave)  # the process holds it now; its exit ends lines() with EIO

    def close(self) -> None:
        with self._lock:
            if self.master >= 0:
                os.close(self.master)
                self.master = -1

    def _code_runs(self) -> bool:
        """ISIG on: the process is not reading its REPL (which turns ISIG off) but running code."""
        try:
            return bool(termios.tcgetattr(self.master)[3] & termios.ISIG)
        except termios.error:
            return False

    def _catches_sigint(self) -> bool:
        """The unix port catches SIGINT only while code runs; outside, SIGINT would kill it."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for row in f:
                    if row.startswith("SigCgt:"):
                        return bool(int(row.split()[1], 16) >> (signal.SIGINT - 1) & 1)
        except (OSError, ValueError):
            return False
        return False

    def write(self, data: bytes) -> None:
        """Bytes from the console: to the REPL if it reads, else kept for it; Ctrl-C interrupts running code."""
        with self._lock:
            if self.master < 0:
                return  # no power: what is sent is lost
            if not self._code_runs():
                self._flush_held()
                _write_some(self.master, data)
                return
            parts = data.split(CTRL_C)
            for i, part in enumerate(parts):
                self._hold(part)
                if i < len(parts) - 1:
                    if self.pid is not None and self._catches_sigint():
                        self.interrupted = True
                        try:
                            os.killpg(self.pid, signal.SIGINT)
                        except ProcessLookupError:
                            pass
                    else:
                        self._hold(CTRL_C)  # the REPL gets it as a key, as on a board

    def _hold(self, data: bytes) -> None:
        self._held += data[:HELD_MAX - len(self._held)]

    def _flush_held(self) -> None:
        if self._held:
            _write_some(self.master, bytes(self._held))
            self._held.clear()

    def pump(self) -> bool:
        """Hand kept bytes to the REPL once it reads; True while some are still kept."""
        with self._lock:
            if self.master < 0 or not self._held:
                return False
            if not self._code_runs():
                self._flush_held()
            return bool(self._held)

    def lines(self, forward: Callable[[bytes], None]) -> Iterator[str]:
        """Every console line the board prints, until its process is gone; each line's bytes go to
        `forward` before the line is yielded (a partial line, like a prompt, is forwarded at once)."""
        partial = b""
        while True:
            try:
                select.select([self.master], [], [])
                data = os.read(self.master, 4096)
            except BlockingIOError:
                continue
            except (OSError, ValueError):  # EIO: the process closed its end (it is gone)
                break
            if not data:
                break
            pos = 0
            while (nl := data.find(b"\n", pos)) >= 0:
                forward(data[pos:nl + 1])
                text, partial = partial + data[pos:nl], b""
                yield text.decode(errors="replace").rstrip("\r")
                pos = nl + 1
            forward(data[pos:])
            partial += data[pos:]
            if len(partial) > LINE_MAX:
                text, partial = partial, b""
                yield text.decode(errors="replace")
        if partial:
            yield partial.decode(errors="replace").rstrip("\r")


class SerialConsole:
    """The board's serial port: a raw pty for the rig's life; `show()` board output, input goes to `write`."""

    def __init__(self, write: Callable[[bytes], None], pump: Callable[[], bool]):
        self.master, slave = os.openpty()
        tty.setraw(slave)  # a USB-UART's bytes: no echo, no line editing; kept while the master lives
        self.path = os.ttyname(slave)
        os.close(slave)
        _nonblocking(self.master)
        self._write, self._pump = write, pump
        self._last = b"\n"
        self._out_lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"console-{self.path}", daemon=True)
        self._thread.start()

    def attached(self) -> bool:
        """Someone has the port open (a pty master reports HUP while nobody has its slave open)."""
        p = select.poll()
        p.register(self.master, select.POLLIN)
        return not any(ev & select.POLLHUP for _, ev in p.poll(0))

    def show(self, data: bytes) -> None:
        """Board output to whoever has the port open, "\\n" sent as "\\r\\n"; lost if nobody has."""
        if not data:
            return
        with self._out_lock:
            if self.master < 0:
                return
            out = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            if self._last == b"\r" and data.startswith(b"\n"):
                out = out[1:]
            self._last = data[-1:]
            if self.attached():
                _write_some(self.master, out)

    def _run(self) -> None:
        while True:
            holding = self._pump()
            attached = self.attached()
            fds = [self._wake_r, self.master] if attached else [self._wake_r]
            ready, _, _ = select.select(fds, [], [], 0.02 if holding else 0.1 if not attached else 0.5)
            if self._wake_r in ready:
                return
            if self.master in ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:  # the user closed the port meanwhile
                    continue
                self._write(data)

    def close(self) -> None:
        if self.master < 0:
            return
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        with self._out_lock:
            os.close(self.master)
            self.master = -1
        os.close(self._wake_r)
        os.close(self._wake_w)
