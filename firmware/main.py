"""Board entry point: `micropython main.py board.json [firmware.romfs]` on the unix port; /main.py on an ESP32.

The flash and its block buffers come first, before any other code is imported:
a module's bytecode and a 4 KiB block buffer each need one unbroken piece of
heap, and the heap is only unbroken at the start.
"""

import sys

if len(sys.argv) > 2:  # emulated: the code in a ROMFS image, as a board with a ROMFS partition runs it
    import os

    import vfs

    _rom = bytearray(os.stat(sys.argv[2])[6])  # one piece, while the heap is still unbroken
    with open(sys.argv[2], "rb") as _f:
        _f.readinto(_rom)
    vfs.mount(vfs.VfsRom(_rom), "/rom")
    sys.path.insert(0, "/rom/lib")
    del _f

if len(sys.argv) > 1:
    from gw.hw_unix import Hardware

    hw = Hardware(sys.argv[1])
else:
    import json

    from gw.hw_esp32 import Hardware

    with open("/config.json") as f:
        hw = Hardware(json.load(f).get("profile", "esp32-2gsm"))
root = hw.mount_flash()

from gw import app  # noqa: E402

app.run(hw, root)
