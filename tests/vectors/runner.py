"""Run the contract's test vectors on whichever interpreter imports this.

The same file runs under CPython (imported by pytest) and under the real
`micropython` binary (as a script). Vector files are `*.json` in this
folder: `{"cases": [{"name": ..., "op": ..., ...}, ...]}`. Each `op` is
handled by a function in one of the `ops_*.py` modules beside this file,
which returns None when the case passes and raises `VectorFailure` (or any
exception) when it does not.

Usage on MicroPython, from the repository root:
    micropython tests/vectors/runner.py [FILTER]
prints `FAIL name: why` for each failure and ends with the line
`vectors: N passed, M failed`.
"""

import json
import os
import sys

HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."


class VectorFailure(Exception):
    pass


def expect(cond, message):
    if not cond:
        raise VectorFailure(message)


def _ops():
    import ops_messages
    import ops_routing
    import ops_tz

    table = {}
    for mod in (ops_routing, ops_tz, ops_messages):
        table.update(mod.OPS)
    return table


def cases():
    """Every vector of every file, as (file, case) pairs, in a stable order."""
    out = []
    for name in sorted(os.listdir(HERE)):
        if not name.endswith(".json"):
            continue
        with open(HERE + "/" + name) as f:
            doc = json.load(f)
        for case in doc["cases"]:
            case["_doc"] = doc  # lets a case name a table shared by its file
            out.append((name, case))
    return out


def run_case(case, ops=None):
    """Run one vector; raise on failure."""
    ops = ops or _ops()
    op = ops.get(case["op"])
    if op is None:
        raise VectorFailure("unknown op " + repr(case["op"]))
    op(case)


def main(argv):
    sys.path.insert(0, HERE)
    only = argv[1] if len(argv) > 1 else ""
    ops = _ops()
    passed = failed = 0
    for fname, case in cases():
        name = fname[:-5] + "::" + case["name"]
        if only and only not in name:
            continue
        try:
            run_case(case, ops)
            passed += 1
        except Exception as e:
            failed += 1
            print("FAIL " + name + ": " + type(e).__name__ + ": " + str(e))
    print("vectors: " + str(passed) + " passed, " + str(failed) + " failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
