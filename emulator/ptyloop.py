"""One background thread that serves every emulated UART: ptys, a wake-up pipe and a timer heap.

The emulated devices (modems, FXO lines) keep the master side of a pty and hand the
slave path to the firmware. A single thread waits on all masters with `selectors`
(no busy loop: the timeout is the next timer, at most 0.5 s) and runs every callback
and timer with the shared lock held, so the devices and the operator need no locks of
their own. Code on other threads takes the same lock and calls `kick()` after
changing something the thread should act on (new output, a new timer).
"""

from __future__ import annotations

import heapq
import itertools
import os
import selectors
import threading
import time
import tty

OUT_MAX = 64 * 1024  # bytes kept for a firmware that does not read its UART
IN_MAX = 4096  # bytes of a command line without its CR


class Timer:
    """A callback due later; `cancel()` before it runs and it never does."""

    __slots__ = ("fn", "args", "done")

    def __init__(self, fn, args):
        self.fn, self.args, self.done = fn, args, False

    def cancel(self) -> None:
        self.done = True


class Pty:
    """A pty pair: the firmware opens `path`; we read and write the master, without blocking.

    Output waits in a bounded buffer while the firmware does not read (the oldest bytes go,
    counted in `dropped`); input is cut into lines at CR or LF.
    """

    def __init__(self):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no line discipline echo before the firmware opens it
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.outbuf = bytearray()
        self.inbuf = bytearray()
        self.dropped = 0

    def write(self, data: bytes) -> None:
        self.outbuf += data
        if len(self.outbuf) > OUT_MAX:
            self.dropped += len(self.outbuf) - OUT_MAX
            del self.outbuf[:len(self.outbuf) - OUT_MAX]
        self.flush()

    def flush(self) -> None:
        while self.outbuf:
            try:
                n = os.write(self.master, self.outbuf)
            except (BlockingIOError, OSError):
                return
            del self.outbuf[:n]

    def read(self) -> bytes | None:
        """What the firmware wrote since the last read (None if nothing could be read)."""
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, OSError):
            return None

    def lines(self):
        """Complete lines in the input buffer, taken one at a time: a handler that clears the
        buffer between two (a modem restarting) ends the iteration."""
        while True:
            cut = min((i for i in (self.inbuf.find(b"\r"), self.inbuf.find(b"\n")) if i >= 0), default=-1)
            if cut < 0:
                return
            raw = bytes(self.inbuf[:cut])
            del self.inbuf[:cut + 1]
            yield raw

    def drop_overlong_line(self) -> None:
        """A line without its end longer than IN_MAX is noise: forget it."""
        if len(self.inbuf) > IN_MAX:
            self.inbuf.clear()

    def clear(self) -> None:
        self.inbuf.clear()
        self.outbuf.clear()

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


class PtyLoop:
    """The thread; `lock` is held around everything it runs. Close it with `close()`."""

    def __init__(self, name: str = "gsmnet"):
        self.lock = threading.RLock()
        self.stopped = False
        self._ptys: list[Pty] = []
        self._timers: list = []
        self._seq = itertools.count()
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def register(self, pty: Pty, on_readable) -> None:
        """Serve `pty` from now on: on_readable() when the firmware wrote, flushes when it reads (lock held)."""
        self._ptys.append(pty)
        self._sel.register(pty.master, selectors.EVENT_READ, (pty, on_readable))

    def after(self, delay: float, fn, *args) -> Timer:
        """Run fn(*args) on the thread after `delay` s (lock held)."""
        timer = Timer(fn, args)
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), timer))
        return timer

    def kick(self) -> None:
        """Wake the thread up: new output to flush or a new timer to wait for."""
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def close(self) -> None:
        """Stop the thread (set `stopped` under the lock first to finish work before it), close every pty."""
        with self.lock:
            self.stopped = True
        self.kick()
        self._thread.join(5)
        for pty in self._ptys:
            pty.close()
        self._sel.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _run(self):
        while True:
            with self.lock:
                if self.stopped:
                    return
                for pty in self._ptys:
                    want = selectors.EVENT_READ | (selectors.EVENT_WRITE if pty.outbuf else 0)
                    key = self._sel.get_key(pty.master)
                    if key.events != want:
                        self._sel.modify(pty.master, want, key.data)
                timeout = 0.5
                if self._timers:
                    timeout = max(0.0, min(timeout, self._timers[0][0] - time.monotonic()))
            events = self._sel.select(timeout)
            with self.lock:
                if self.stopped:
                    return
                for key, mask in events:
                    if key.data is None:
                        try:
                            os.read(self._wake_r, 4096)
                        except BlockingIOError:
                            pass
                        continue
                    pty, on_readable = key.data
                    if mask & selectors.EVENT_READ:
                        on_readable()
                    if mask & selectors.EVENT_WRITE:
                        pty.flush()
                self._run_due_timers()

    def _run_due_timers(self):
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.done:
                timer.done = True
                timer.fn(*timer.args)
