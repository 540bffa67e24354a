"""Run on MicroPython and on CPython by test_route_columns: a table of routes over several blocks
(protocols.routeset) read back route by route and decided for a grid of calls, one JSON line each, so the
two interpreters' outputs can be compared line for line. The last line is `bytes_per_route=N` (the heap a
table of 742 routes without callers keeps, per route; -1 where gc.mem_alloc is missing)."""

import gc
import json

from protocols import callerset, routing
from protocols.table import TableError

PORTS = ("gsm1", "gsm2", "*")
POOL = ("+38", "+380", "+3805", "+38050", "+7", "1", "12")
CALLERS = ("", "+380501112233", "+3805", "+74951234567", "12345", "+38067")
NOWS = (999, 1000, 1500, 2000, 2500)


def doc(n, seed=8):
    """n routes of every kind the columns hold, decided the same on both interpreters (an LCG, not random)."""
    routes = []
    for i in range(n):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        r = {"id": ("r%d" % i) if i % 7 else ("route.%d_of-%d" % (i, n) + "x" * (i % 30)),
             "port": PORTS[seed % 3], "targets": ["a", "b"][: 1 + (seed >> 3) % 2]}
        k = (seed >> 5) % 4
        if k:
            r["caller"] = [POOL[(seed >> (8 + j)) % len(POOL)] for j in range(k)]
        if (seed >> 12) % 5 == 0:
            r["from"] = 1000
        if (seed >> 15) % 5 == 0:
            r["until"] = 2000
        if (seed >> 18) % 4 == 0:
            r["strategy"] = "round_robin"
        routes.append(r)
    return {"schema": 1, "gateway": "gw-cols-1", "version": 1, "tz": "UTC0",
            "targets": {"a": {"number": "+380620000001", "via": ["gsm1"]},
                        "b": {"number": "+380620000002", "via": ["gsm2"]}}, "routes": routes}


def view(r):
    return [r.id, list(callerset.prefixes(r.callers, r.span)), list(r.targets), r.when and list(r.when),
            r.rest[0], r.rest[2]]


def main():
    table = routing.load(json.dumps(doc(300)))
    print(json.dumps({"routes": len(table.routes), "last": view(table.routes[-1])}))
    for r in table.routes:
        print(json.dumps(view(r)))
    for port in ("gsm1", "gsm2"):
        for caller in CALLERS:
            for now in NOWS:
                d = routing.decide(table, port, caller, now, turn=now)
                print(json.dumps([port, caller, now, d.action, d.route, d.targets, d.reason]))
    dup = doc(300)
    dup["routes"][250]["id"] = dup["routes"][7]["id"]
    try:
        routing.load(json.dumps(dup))
    except TableError as e:
        print(json.dumps([e.path, e.reason]))
    if not hasattr(gc, "mem_alloc"):
        print("bytes_per_route=-1")
        return
    body = bare()
    gc.collect()
    print("bytes_per_route=%d" % kept_per_route(body))


def bare():
    """742 routes without callers: the most routes a 32 KiB table holds (hil_tests.tables.bare_routes_table)."""
    return json.dumps({"schema": 1, "gateway": "gw-cols-1", "version": 1, "tz": "UTC0",
                       "targets": {"a": {"number": "+380620000001", "via": ["gsm1"]}},
                       "routes": [{"id": "r%d" % i, "port": PORTS[i % 2], "targets": ["a"]} for i in range(742)]},
                      separators=(",", ":"))


def kept_per_route(body):
    gc.collect()
    before = gc.mem_alloc()
    table = routing.load(body)
    gc.collect()
    return (gc.mem_alloc() - before) // len(table.routes)

if __name__ == "__main__":  # test_route_columns imports doc and the grids
    main()
