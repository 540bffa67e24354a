"""What the firmware's code takes of the heap on the unix port (run by bench/firmware_bench.py, on MicroPython).

    micropython -X heapsize=<profile heap> code_heap.py <firmware.romfs>

Does what firmware/main.py does (the ROMFS image read into one bytearray, mounted with vfs.VfsRom), then
imports the modules an emulated esp32-2gsm board has imported once it is up (the GSM driver, the link
with the table loader, the flash and UART layers of the unix port) and prints one JSON line: the image's
bytes (on a board: the ROMFS partition, not heap), the heap the imports took (function, class and module
objects, their dicts, interned names: what executing the code in place still allocates), and the modules.
"""

import gc
import json
import os
import sys

import vfs

BOOT = ("gw.hw_unix", "gw.app", "gw.gsm", "gw.link", "gw.blockdev", "gw.uart_unix")


def used():
    gc.collect()
    return gc.mem_alloc()


before = set(sys.modules)
a0 = used()
rom = bytearray(os.stat(sys.argv[1])[6])
with open(sys.argv[1], "rb") as f:
    f.readinto(rom)
vfs.mount(vfs.VfsRom(rom), "/rom")
sys.path.insert(0, "/rom/lib")
a1 = used()
for name in BOOT:
    __import__(name)
a2 = used()
print(json.dumps({"image": a1 - a0, "image_size": len(rom), "code": a2 - a1,
                  "modules": sorted(m for m in sys.modules if m not in before)}))
