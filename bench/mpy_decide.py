"""Load a table and time decisions; runs on MicroPython and on CPython.

usage: mpy_decide.py TABLE_FILE N
prints one line: `heap_before=.. heap_after_load=.. load_ms=.. decisions=.. decide_ms=.. routes=..`
"""

import gc
import sys
import time

from protocols import routing

PORTS = ("gsm1", "gsm2", "fxo1", "gsm9")


def ticks_ms():
    if hasattr(time, "ticks_ms"):
        return time.ticks_ms()
    return int(time.perf_counter() * 1000)


def main(path, n):
    gc.collect()
    free0 = gc.mem_free() if hasattr(gc, "mem_free") else -1
    t0 = ticks_ms()
    with open(path, "rb") as f:
        body = f.read()
    table = routing.load(body)
    del body
    gc.collect()
    load_ms = ticks_ms() - t0
    free1 = gc.mem_free() if hasattr(gc, "mem_free") else -1
    seed = 12345
    actions = {}
    t0 = ticks_ms()
    for i in range(n):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        caller = "+380" + str(50 + seed % 50) + str(seed % 10) + "1234567"
        now = 1780000000 + (seed % 31536000)
        d = routing.decide(table, PORTS[i % 4], caller, now, busy={"centre-01": 5}, turn=i)
        actions[d.action] = actions.get(d.action, 0) + 1
    decide_ms = ticks_ms() - t0
    gc.collect()
    free2 = gc.mem_free() if hasattr(gc, "mem_free") else -1
    print("heap_before=%d heap_after_load=%d heap_after_decide=%d load_ms=%d "
          "decisions=%d decide_ms=%d routes=%d dial=%d"
          % (free0, free1, free2, load_ms, n, decide_ms, len(table.routes), actions.get("dial", 0)))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
