"""What the firmware's scenario tests share: run a script of tests/firmware/mpy/ on the real MicroPython
(firmware/ on its path), one JSON line a scenario, and hand back {name: result}."""

from __future__ import annotations

import json

from emulator import micropython


def run_scenarios(script: str, names: list[str], heap: str) -> dict[str, dict]:
    """Every scenario of `names` run by tests/firmware/mpy/`script` on a heap of `heap`; a failed run, or a
    scenario missing or extra, fails here."""
    proc = micropython.run(f"tests/firmware/mpy/{script}", *names, heap=heap,
                           extra_path=[micropython.REPO / "firmware"], timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    out = {}
    for line in proc.stdout.splitlines():
        d = json.loads(line)
        out[d["name"]] = d
    assert set(out) == set(names)
    return out


def only_record(results: dict[str, dict], name: str) -> dict:
    """The one record scenario `name` left."""
    recs = results[name]["records"]
    assert len(recs) == 1, recs
    return recs[0]
