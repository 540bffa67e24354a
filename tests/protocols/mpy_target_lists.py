"""Run on MicroPython and on CPython by test_target_lists: routes' target lists packed as target indexes
(protocols.targetlists) read back and decided, one JSON line each, so the two interpreters' outputs can be
compared line for line. The last line is `distinct_bytes_per_route=N`: the heap a table of 529 routes each
with its own target list (hil_tests.tables.distinct_routes_table) keeps, per route (-1 where gc.mem_alloc
is missing)."""

import gc
import json

from protocols import routing

NOW = 1000


def doc(n_targets, n_routes, seed=5):
    """Routes whose lists are short, long (more than a shared run holds), empty (a menu), repeated and
    parts of others, over `n_targets` targets (more than 256: two bytes an index). An LCG, not random."""
    tids = ["t%d" % i for i in range(n_targets)]
    routes = []
    for i in range(n_routes):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        kind = seed % 6
        if kind == 0 and routes and "targets" in routes[-1]:
            ids = routes[-1]["targets"][1:] or routes[-1]["targets"]  # a part of the list before
        elif kind == 1:
            ids = [tids[(seed >> 4) % n_targets] for _ in range(64 + (seed >> 9) % 8)]  # long, repeating
        else:
            ids = [tids[(seed >> (4 + 3 * j)) % n_targets] for j in range(1 + (seed >> 20) % 4)]
        r = {"id": "r%d" % i, "port": "gsm1", "caller": ["+38%d" % i], "targets": ids}
        if (seed >> 24) % 2:
            r["strategy"] = "round_robin"
        if (seed >> 26) % 9 == 0:
            del r["targets"]
            r["menu"] = "m"
        routes.append(r)
    return {"schema": 1, "gateway": "gw-lists-1", "version": 1, "tz": "UTC0",
            "targets": dict((t, {"number": "+38062%03d" % k, "via": ["gsm1"], "max_calls": k % 3})
                            for k, t in enumerate(tids)),
            "menus": {"m": {"prompt": "p", "default": "1", "options": {"1": {"targets": ["t1"]}}}},
            "routes": routes}


SIZES = ((3, 40), (200, 60), (270, 80))  # one byte an index (one block of ids, two); two bytes


def main():
    for n_targets, n_routes in SIZES:
        d = doc(n_targets, n_routes)
        table = routing.load(json.dumps(d))
        for i in range(n_routes):
            r = table.routes[i]
            d_ = routing.decide(table, "gsm1", "+38%d" % i, NOW, busy={"t0": 1, "t3": 0}, turn=i, keys="1")
            print(json.dumps([r.id, list(r.targets), d_.action, d_.targets]))
    if not hasattr(gc, "mem_alloc"):
        print("distinct_bytes_per_route=-1")
        return
    body = distinct()
    gc.collect()
    print("distinct_bytes_per_route=%d" % kept_per_route(body))


def distinct():
    """hil_tests.tables.distinct_routes_table, made here (that module is CPython's): 529 routes, each its
    own list of one to three of sixteen targets."""
    ids = "abcdefghijklmnop"
    routes = []
    for i in range(529):
        r = {"id": "r%d" % i, "port": ("gsm1", "gsm2", "fxo1")[i % 3],
             "targets": [ids[(i + 1) % 16], ids[(i // 16) % 16], ids[(i // 256) % 16]][:1 + i % 3]}
        if i % 2:
            r["strategy"] = "round_robin"
        routes.append(r)
    return json.dumps({"schema": 1, "gateway": "gw-lists-1", "version": 1, "tz": "UTC0",
                       "targets": dict((t, {"number": "+3806200000%02d" % (k + 1), "via": [("gsm1", "gsm2")[k % 2]]})
                                       for k, t in enumerate(ids)),
                       "routes": routes}, separators=(",", ":"))


def kept_per_route(body):
    gc.collect()
    before = gc.mem_alloc()
    table = routing.load(body)
    gc.collect()
    return (gc.mem_alloc() - before) // len(table.routes)


if __name__ == "__main__":
    main()
