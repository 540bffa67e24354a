"""The fault suite's figures as a table: `python bench/fault_figures.py [--run]`.

tests/faults/ writes one entry per scenario and setup to build/faults/figures.json (calls made, records
expected, stored, duplicated, lost, counted as dropped); this prints them as a Markdown table for the
README, then one `key=value` line of totals. `--run` runs the suite first (pytest tests/faults)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "build" / "faults" / "figures.json"
COLUMNS = [("scenario", "scenario"), ("setup", "setup"), ("calls_made", "calls made"), ("expected", "records expected"),
           ("cut", "cut by power"), ("stored", "stored"), ("duplicated", "duplicated"), ("lost", "lost"),
           ("counted", "counted as dropped"), ("hourly", "in hourly aggregates"), ("seconds", "s")]


def table(entries: list[dict]) -> str:
    rows = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for e in entries:
        cells = [str(e.get(key, "")) for key, _ in COLUMNS]
        if e.get("note"):
            cells[0] += f" ({e['note']})"
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="run pytest tests/faults first")
    args = ap.parse_args()
    took = None
    if args.run:
        FIGURES.unlink(missing_ok=True)
        t0 = time.monotonic()
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults"],
                               cwd=REPO)
        took = time.monotonic() - t0
        if code not in (0, 1):
            return code
    try:
        data = json.loads(FIGURES.read_text())
    except (OSError, ValueError) as e:
        print(f"no figures at {FIGURES} ({e}); run pytest tests/faults or this script with --run", file=sys.stderr)
        return 2
    entries = sorted(data.values(), key=lambda e: (e["scenario"], e["setup"]))
    print(table(entries))
    kept = [e for e in entries if not e.get("note")]
    totals = {k: sum(e.get(k, 0) for e in kept) for k in ("calls_made", "stored", "duplicated", "lost", "counted")}
    tail = f" suite_s={took:.0f}" if took is not None else ""
    print(f"scenarios={len(kept)} " + " ".join(f"{k}={v}" for k, v in totals.items()) + tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
