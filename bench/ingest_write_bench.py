"""Bench: the ingest writer alone (no broker), PostgreSQL's bulk-insert ways side by side, SQLite beside them.

The same batches as bench/controller_bench.py's ingest part (messages of 50 call records, 200 messages
a transaction, --records over --records/500 gateways) go through controller.ingest.write_batch, once
per way of inserting the records on PostgreSQL (controller.ingest.bulk.PG_METHOD): COPY into
`records`; COPY into a staging table then one INSERT .. ON CONFLICT DO NOTHING; psycopg's executemany
(pipeline mode). Each gets a fresh schema, in alternating rounds; then once on a SQLite file. Beside them,
the bridge's side: decoded messages prepared as rows (prepare_events) and handed over to the writer's
process and back (marshal, controller.ingest.worker), records/s. The last line is `key=value` pairs
(records/s, medians).

    python bench/ingest_write_bench.py [--records 100000] [--rounds 3] [--database URL]
"""

from __future__ import annotations

import argparse
import contextlib
import marshal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from controller_bench import fresh_db  # noqa: E402
from fleet import BATCH, events_payloads, gateway_ids  # noqa: E402

from controller.ingest import bulk as ingest_bulk  # noqa: E402
from controller.ingest import worker as ingest_worker  # noqa: E402
from controller.ingest.records import prepare_events, write_batch  # noqa: E402
from controller.models import now  # noqa: E402
from protocols import messages  # noqa: E402

METHODS = ("copy", "staged", "executemany")
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def batches(records: int, per_batch: int = 200) -> list[list[tuple]]:
    """Decoded, prepared events messages in the order a broker would deliver them, 200 a transaction."""
    gws = gateway_ids(max(1, records // 500))
    per_gw = {gw: events_payloads(gw, 500, "s" + gw[-4:]) for gw in gws}
    received, items = now(), []
    for i in range(500 // BATCH):  # round robin over the gateways, as a fleet publishes
        for gw in gws:
            msg = messages.decode("events", per_gw[gw][i][0])
            items.append((gw, "events", prepare_events(gw, msg, received)))
    return [items[i:i + per_batch] for i in range(0, len(items), per_batch)]


def hand_over(records: int) -> float:
    """Records/s the bridge's side takes: rows made (wire_events; prepare_events before it), then each
    message marshalled out and back in and named, as the worker's socket pair carries it (no socket)."""
    from controller.ingest import records as ingest_records
    from controller.ingest import worker

    prepare = getattr(ingest_records, "wire_events", prepare_events)  # what the bridge makes, by version
    named = getattr(worker, "_named", lambda i: i)
    gws = gateway_ids(max(1, records // 500))
    msgs = [(gw, messages.decode("events", p[0])) for gw in gws for p in events_payloads(gw, 500, "s" + gw[-4:])]
    received = now()
    t0 = time.perf_counter()
    for gw, msg in msgs:
        named(marshal.loads(marshal.dumps((gw, "events", prepare(gw, msg, received)))))
    return sum(len(m["records"]) for _, m in msgs) / (time.perf_counter() - t0)


def write_all(db, work: list[list[tuple]]) -> float:
    """Records/s through write_batch, one transaction per batch."""
    stats = dict.fromkeys(("records", "duplicates"), 0)
    paused = getattr(ingest_worker, "collector_paused", contextlib.nullcontext)  # as the writer's process runs
    t0 = time.perf_counter()
    for items in work:
        with paused(), db.session() as s:
            write_batch(s, items, stats)
    elapsed = time.perf_counter() - t0
    assert stats["records"] == sum(len(m[1]) for b in work for _, _, m in b), stats
    return stats["records"] / elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--database", default=PG, help="the PostgreSQL URL (each way gets a fresh schema)")
    args = ap.parse_args()
    work = batches(args.records)
    tmp = Path(tempfile.mkdtemp(prefix="citygate-write-bench-"))
    rates: dict[str, list[float]] = {m: [] for m in METHODS}
    for r in range(args.rounds):
        for method in METHODS:
            ingest_bulk.PG_METHOD = method
            with fresh_db(args.database, tmp, f"w{method}{r}") as db:
                rates[method].append(write_all(db, work))
        print("  round %d: " % (r + 1) + ", ".join(f"{m} {rates[m][-1]:,.0f}/s" for m in METHODS), flush=True)
    ingest_bulk.PG_METHOD = "copy"
    with fresh_db(None, tmp, "sqlite") as db:
        sqlite = write_all(db, work)
    handed = statistics.median(hand_over(args.records) for _ in range(args.rounds))
    med = {m: statistics.median(v) for m, v in rates.items()}
    best = max(med, key=med.get)
    print(f"writer alone, {args.records:,} records in transactions of 200 messages: PostgreSQL "
          + ", ".join(f"{m} {v:,.0f}/s" for m, v in med.items()) + f" (medians of {args.rounds}); "
          f"SQLite {sqlite:,.0f}/s; fastest on PostgreSQL: {best}; the bridge's side (prepare and hand over) "
          f"{handed:,.0f}/s", flush=True)
    print(" ".join([*(f"pg_{m}_per_s={v:.0f}" for m, v in med.items()), f"sqlite_per_s={sqlite:.0f}",
                    f"hand_over_per_s={handed:.0f}",
                    f"pg_fastest={best}"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
