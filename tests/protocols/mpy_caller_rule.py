"""Run on MicroPython by test_caller_packing: random tables decided by routing.decide (caller prefixes in
shared bytearrays, as on a board) against DESIGN §5 steps 1-2 written plainly. Prints the mismatches and
a last line `checked=N mismatches=M pieces=P`."""

import json
import random

from protocols import routing

POOL = ["+38", "+380", "+3805", "+38050", "380", "+7", "+1", "1", "12", "+380501234567890", "3805"]
CALLERS = ["", "+", "+380501112233", "+38", "380501", "+7495", "12", "1", "+38\n+380", "+3805\n", "x+38",
           "+380 50", "+38050\u20ac", "123456789012345678",
           "1b", "12b", "+3a", "+a38", "3805ff", "\xff", "+38+0", "3+8", "+\u0663"]


def by_rule(routes, port, caller, now=None):
    """DESIGN §5 steps 1-2 written plainly (the tests' one oracle): in effect at `now` (None: every route),
    longest prefix, then a named port, then the earlier route."""
    best, key = None, None
    for i, r in enumerate(routes):
        if r["port"] not in (port, "*"):
            continue
        if now is not None and (("from" in r and now < r["from"]) or ("until" in r and now >= r["until"])):
            continue
        prefixes = r.get("caller") or []
        lengths = [len(p) for p in prefixes if caller.startswith(p)]
        if prefixes and not lengths:
            continue
        k = (max(lengths) if lengths else 0, 1 if r["port"] != "*" else 0, -i)
        if key is None or k > key:
            best, key = r["id"], k
    return best


def main():
    random.seed(8)
    checked = bad = pieces = 0
    for _ in range(40):
        routes = []
        for i in range(random.randint(1, 150)):
            r = {"id": "r%d" % i, "port": random.choice(("gsm1", "gsm2", "*")), "targets": ["a"]}
            k = random.choice((0, 1, 1, 2, 5, 30))
            if k:
                r["caller"] = [random.choice(POOL) for _ in range(k)]
            routes.append(r)
        doc = {"schema": 1, "gateway": "gw-pack-1", "version": 1, "tz": "UTC0",
               "targets": {"a": {"number": "+380620000001", "via": ["gsm1"]}}, "routes": routes}
        table = routing.load(json.dumps(doc))
        pieces = max(pieces, len(table.caller_chunks))
        for port in ("gsm1", "gsm2"):
            for caller in CALLERS:
                want, got = by_rule(routes, port, caller), routing.decide(table, port, caller, 0).route
                checked += 1
                if got != want:
                    bad += 1
                    print("MISMATCH", port, repr(caller), got, want)
    print("checked=%d mismatches=%d pieces=%d" % (checked, bad, pieces))


if __name__ == "__main__":  # imported by the CPython tests for by_rule
    main()
