"""Bench: a 32 KiB table on MicroPython (-X heapsize=220K) and on CPython.

Loads a table of many routes and 300 deny prefixes, runs 10,000 decisions
on each interpreter in this one run, and prints heap used after the load on
MicroPython, decisions per second on each, and their ratio. The last line is
`key=value` pairs for CI logs and trend tracking.

    python bench/protocols_bench.py [--decisions 10000] [--heap 220K]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emulator import micropython  # noqa: E402
from hil_tests.tables import big_table  # noqa: E402


def parse(line: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", line)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--decisions", type=int, default=10_000)
    ap.add_argument("--heap", default="220K")
    args = ap.parse_args()

    body = big_table()
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        f.write(body)
    script = REPO / "bench" / "mpy_decide.py"
    mpy = micropython.run(script, f.name, str(args.decisions), heap=args.heap, timeout=900)
    if mpy.returncode != 0:
        print(mpy.stdout, mpy.stderr, file=sys.stderr)
        return 1
    cpy = subprocess.run([sys.executable, str(script), f.name, str(args.decisions)], capture_output=True,
                         text=True, cwd=REPO, env={"PYTHONPATH": str(REPO)}, check=True)
    Path(f.name).unlink()
    m, c = parse(mpy.stdout), parse(cpy.stdout)
    assert m["dial"] == c["dial"], "the two interpreters decided differently"
    heap_used = m["heap_before"] - m["heap_after_load"]
    mpy_rate = args.decisions * 1000 / max(m["decide_ms"], 1)
    cpy_rate = args.decisions * 1000 / max(c["decide_ms"], 1)
    print(f"table: {len(body)} bytes, {m['routes']} routes, 300 deny prefixes")
    print(f"micropython -X heapsize={args.heap}: heap used by the loaded table {heap_used} bytes "
          f"(free after load {m['heap_after_load']}), load {m['load_ms']} ms")
    print(f"micropython: {mpy_rate:,.0f} decisions/s   cpython: {cpy_rate:,.0f} decisions/s   "
          f"ratio cpython/micropython {cpy_rate / mpy_rate:.1f}")
    print(f"table_bytes={len(body)} routes={m['routes']} heap={args.heap} mpy_heap_used={heap_used} "
          f"mpy_heap_free_after_load={m['heap_after_load']} mpy_load_ms={m['load_ms']} "
          f"mpy_decisions_per_s={mpy_rate:.0f} cpy_decisions_per_s={cpy_rate:.0f} "
          f"ratio_cpy_over_mpy={cpy_rate / mpy_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
