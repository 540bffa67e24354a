"""Run on MicroPython (and CPython) by test_caller_nibbles: load a table file, print what the loaded table
keeps of the heap (MicroPython) and the route each of a fixed list of calls takes.

usage: mpy_caller_heap.py TABLE_FILE; last line `kept=N routes=r0,r1,...` (kept: -1 on CPython)"""

import gc
import sys

from protocols import routing

CALLERS = ("+3800000", "+380003912", "+3806439", "+38064400", "+38", "3800000", "+380010", "", "+3802739",
           "+38050391234567", "+380a3912")


def _load(path):
    with open(path, "rb") as f:
        return routing.load(f.read())


def main(path):
    warm = routing.load('{"schema":1,"gateway":"gw-pack-1","version":1,"tz":"UTC0","targets":{},"routes":[]}')
    del warm  # the modules a load imports on its way are not the table's
    gc.collect()
    before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    table = _load(path)  # in a call of its own: no stale reference to the body is left in this frame
    gc.collect()
    kept = gc.mem_alloc() - before if hasattr(gc, "mem_alloc") else -1
    chosen = []
    for port in ("gsm1", "gsm2"):
        for caller in CALLERS:
            chosen.append(str(routing.decide(table, port, caller, 0).route))
    print("kept=%d routes=%s" % (kept, ",".join(chosen)))


if __name__ == "__main__":
    main(sys.argv[1])
