"""Run on MicroPython and on CPython by test_closed_dates: a table body file (argv[1]) is loaded and asked
whether each date of a list (argv[2], one a line) closes each route, one JSON line per date, so the two
interpreters' answers can be compared line for line. The last line is `kept=N`: the heap the loaded
table keeps (-1 where gc.mem_alloc is missing)."""

import gc
import json
import sys

from protocols import routing, tz
from protocols.routeset import CLOSED


def main(body_path, dates_path):
    with open(body_path, "rb") as f:
        body = f.read()
    with open(dates_path) as f:
        dates = [line.strip() for line in f if line.strip()]
    gc.collect()
    before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    table = routing.load(body)
    del body
    gc.collect()
    kept = gc.mem_alloc() - before if hasattr(gc, "mem_alloc") else -1
    for d in dates:
        row = []
        for i in range(len(table.routes)):
            own = table.routes.rest_at(i)[CLOSED]
            row.append(1 if d in (table.closed if own is None else own) else 0)
        noon = tz.days_from_civil(int(d[:4]), int(d[5:7]), int(d[8:])) * 86400 + 12 * 3600  # 14:00 in EET
        got = routing.decide(table, "gsm1", "+380931112233", noon).as_dict()
        print(json.dumps({"date": d, "closed": row, "decision": [got[k] for k in sorted(got)]}))
    print("kept=%d" % kept)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
