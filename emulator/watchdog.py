"""The emulated board's hardware watchdog (EmulatedRig(watchdog_ms=N)), as the ESP32's machine.WDT.

The firmware's `gw.hw_unix.WDT.feed()` rewrites one byte of the `feed` file in place; this watches its
mtime from the first feed on. A feed file that stands still for N ms is a hung firmware: the board is
reset as the chip's watchdog would (the process killed, the modems keep their power), a console line
says so, and the `cause` file is left for the next boot, which reports it as "watchdog_reset".
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

POLL_S = 0.1


class Watchdog:
    def __init__(self, workdir: Path, timeout_ms: int):
        self.feed = workdir / "wdt.feed"
        self.cause = workdir / "wdt.cause"
        self.timeout_ms = int(timeout_ms)
        self.resets = 0
        self._bitten: subprocess.Popen | None = None  # the run it reset: the rig boots the board again

    def board_entry(self) -> dict:
        """board.json's "wdt" (read by gw/hw_unix.py)."""
        return {"feed": str(self.feed), "timeout_ms": self.timeout_ms, "cause": str(self.cause)}

    def arm(self) -> None:
        """Before a boot: the new run arms it with its first feed; the cause stays only for the boot after a reset."""
        self.feed.unlink(missing_ok=True)
        if self._bitten is None:
            self.cause.unlink(missing_ok=True)
        self._bitten = None

    def reset_this(self, proc: subprocess.Popen) -> bool:
        """True when `proc` ended because the watchdog reset it."""
        return self._bitten is proc

    def start(self, rig, proc: subprocess.Popen) -> None:
        threading.Thread(target=self._watch, args=(rig, proc), daemon=True).start()

    def _watch(self, rig, proc: subprocess.Popen) -> None:
        limit = self.timeout_ms / 1000
        seen, since = None, time.monotonic()
        while rig.proc is proc and proc.poll() is None:  # ends with the run
            time.sleep(POLL_S)
            try:
                fed = self.feed.stat().st_mtime_ns
            except FileNotFoundError:
                continue  # not armed yet
            if fed != seen:
                seen, since = fed, time.monotonic()
            elif time.monotonic() - since > limit:
                with rig._power_lock:
                    if rig.proc is not proc or proc.poll() is not None:
                        return
                    self.cause.write_text("wdt\n")
                    self._bitten = proc
                    self.resets += 1
                    rig._log(f"=== rig: WATCHDOG RESET: the firmware did not feed it for {limit:g} s ===")
                    os.killpg(proc.pid, signal.SIGKILL)
                return
