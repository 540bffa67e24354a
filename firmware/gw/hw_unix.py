"""Hardware layer of the emulated board (MicroPython unix port).

`board.json` (written by the rig) says where things are:
`{"profile", "flash": {"image", "blocks", "block_size", "ctl", "stats"},
  "ports": {"gsm1": {"kind": "gsm", "dev": "/dev/pts/N"}, ...}, "provision": {...device config...}}`.
"""

import json
import sys


class Hardware:
    platform = "unix"

    def __init__(self, board_path):
        with open(board_path) as f:
            self.board = json.load(f)
        self.profile = self.board["profile"]
        self.wdt_fed = 0

    def mount_flash(self):
        """Mount the file-backed LittleFS image; returns the store's root path."""
        from gw import blockdev

        fl = self.board["flash"]
        dev = blockdev.FileBlockDev(fl["image"], block_size=fl.get("block_size", 4096),
                                    blocks=fl.get("blocks", 256), ctl_path=fl.get("ctl"),
                                    stats_path=fl.get("stats"))
        return blockdev.mount(dev, "/flash")

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

    def wdt_feed(self):
        self.wdt_fed += 1

    def reset(self):
        """A reboot: the rig restarts the process when it exits with code 3."""
        print("HW reset")
        sys.exit(3)
