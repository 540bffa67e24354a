"""MicroPython's own start-up on a flashable emulated board (runs on the unix port, not on CPython).

What an ESP32's port does before any user code: mount the flash's LittleFS, make it the working
directory with its lib/ on sys.path, then run main.py from the flash if there is one; after a soft
reset in the raw REPL (`repl` argument) main.py is skipped, as a board skips it. With `-i` the REPL
follows, so a board with MicroPython and nothing else (a blank board) waits there to be flashed.

    micropython -i board_boot.py board.json FIRMWARE_SOURCE_DIR [repl]

The block device is the firmware's own `gw.blockdev` (from the source tree, standing in for the port's
flash driver); it is dropped from sys.modules afterwards, so the firmware on the flash imports its own
copy. The unix port cannot mount at "/": the flash is /flash, and the working directory, so a relative
path (what mpremote and `citygate flash` use) lands on it as "/" does on an ESP32.

Where it differs from an ESP32 (what `citygate flash` and `check` meet): no ROMFS partition (the unix port
has no vfs.rom_ioctl, so `flash --romfs` is refused as on a board without one); a hardware watchdog only
when the rig emulates one (EmulatedRig(watchdog_ms=...): the flashed firmware's gw/hw_unix.WDT arms it with
its first feed, and nothing at this REPL feeds it, where an ESP32 resets ~30 s after its firmware is
interrupted unless fed, as flash and check do on an ESP32); the board knows
its profile (sys.argv[1], board.json), where a blank ESP32 knows none until config.json is flashed.
"""

import json
import os
import sys

_board, _src, _repl_only = sys.argv[1], sys.argv[2], len(sys.argv) > 3
with open(_board) as _f:
    _fl = json.load(_f)["flash"]
sys.path.insert(0, _src)
from gw import blockdev as _bd  # noqa: E402

_bd.mount(_bd.FileBlockDev(_fl["image"], block_size=_fl.get("block_size", 4096), blocks=_fl.get("blocks", 256),
                           ctl_path=_fl.get("ctl"), stats_path=_fl.get("stats")), "/flash")
for _m in list(sys.modules):
    if _m == "gw" or _m.startswith("gw."):
        del sys.modules[_m]
sys.path[:] = ["", ".frozen", "/flash/lib"]
os.chdir("/flash")
sys.argv[:] = ["main.py", _board]  # the firmware's main.py: the emulated hardware is described by board.json
del _f, _fl, _bd, _m, _src, _board
if not _repl_only:
    try:
        os.stat("main.py")
        _main = True
    except OSError:
        _main = False
    if _main:
        del _main, _repl_only
        exec(open("main.py").read(), {"__name__": "__main__"})
    else:
        print("boot: no main.py on the flash")
