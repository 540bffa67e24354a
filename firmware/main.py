"""Board entry point: `micropython main.py board.json` on the unix port; /main.py on an ESP32.

The flash and its block buffers come first, before any other code is imported:
a module's bytecode and a 4 KiB block buffer each need one unbroken piece of
heap, and the heap is only unbroken at the start.
"""

import sys

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
