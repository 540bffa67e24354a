"""Hardware layer of the emulated board (MicroPython unix port).

`board.json` (written by the rig) says where things are:
`{"profile", "flash": {"image", "blocks", "block_size", "ctl", "stats"},
  "ports": {"gsm1": {"kind": "gsm", "dev": "/dev/pts/N", "timings": {...}}, ...},
  "provision": {...device config...}, "wdt": {"feed", "timeout_ms", "cause"}}`.

The watchdog (`"wdt"`, optional) is the rig's: `WDT.feed()` rewrites one byte of the `feed` file, and
the rig restarts a board whose file goes unchanged for `timeout_ms`, leaving the `cause` file for the
next boot to find (`wdt_reset`, as `machine.reset_cause() == machine.WDT_RESET` on an ESP32).
A module's reset line (`reset_port`) is a console line the rig acts on (`HW port_reset <port>`).
"""

import json
import os
import sys


class WDT:
    """machine.WDT of the emulated board: a feed is one byte written in place (its mtime is what the rig watches)."""

    def __init__(self, path, timeout_ms):
        self.timeout_ms = timeout_ms
        self._f = open(path, "wb")
        self.feed()

    def feed(self):
        self._f.seek(0)
        self._f.write(b"f")


class Hardware:
    platform = "unix"

    def __init__(self, board_path):
        with open(board_path) as f:
            self.board = json.load(f)
        self.profile = self.board["profile"]
        self.wdt_fed = 0
        self.wdt_reset = False  # this boot follows a watchdog reset
        w = self.board.get("wdt")
        self._wdt = None
        if w:
            try:
                os.remove(w["cause"])
                self.wdt_reset = True
            except OSError:
                pass
            self._wdt = WDT(w["feed"], w["timeout_ms"])

    def mount_flash(self):
        """Mount the file-backed LittleFS image; returns the store's root path."""
        from gw import blockdev

        fl = self.board["flash"]
        if fl.get("mounted"):  # a flashable board: its boot (emulator/board_boot.py) mounted it already
            return fl["mounted"]
        dev = blockdev.FileBlockDev(fl["image"], block_size=fl.get("block_size", 4096),
                                    blocks=fl.get("blocks", 256), ctl_path=fl.get("ctl"),
                                    stats_path=fl.get("stats"))
        return blockdev.mount(dev, "/flash")

    def store_options(self):
        """Store settings the rig may shrink for a test (`"store": {"max_records": N}`); {} on a real board."""
        return self.board.get("store") or {}

    def provision(self):
        """Device config offered by the rig for a board whose flash has none yet."""
        return self.board.get("provision")

    def open_line(self, port):
        from gw.uart_unix import open_pty

        return open_pty(self.board["ports"][port]["dev"])

    def port_kind(self, port):
        return self.board["ports"][port]["kind"]

    def ports(self):
        return list(self.board["ports"])

    def bridge(self, a, b):
        print("HW bridge %s %s" % (a, b))

    def unbridge(self, a, b):
        print("HW unbridge %s %s" % (a, b))

    def line_timings(self, port):
        """Driver timings the rig shortens for a test (ms attributes of the line); {} on a real board."""
        return self.board["ports"][port].get("timings") or {}

    async def reset_port(self, port):
        """Pulse the reset line of a port's module: the rig power-cycles the emulated module."""
        print("HW port_reset %s" % port)

    def wdt_feed(self):
        self.wdt_fed += 1
        if self._wdt is not None:
            self._wdt.feed()

    def reset(self):
        """A reboot: the rig restarts the process when it exits with code 3."""
        print("HW reset")
        sys.exit(3)
