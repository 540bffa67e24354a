"""The row of the records table as ingest passes it around (`RecordRow`), rows for record kinds other than
calls (DESIGN §5a/§6), and the columns' widths.

Outbound calls and probes fill the columns that lists and reports read (start time, port, citizen or
target, outcome, ring and talk seconds); every kind keeps the whole record in `data`, bounded.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

from controller.limits import bounded


class RecordRow(NamedTuple):
    """One record as a row of the `records` table, its fields in the table's column order (COLUMNS).

    A tuple, so psycopg's COPY takes it as it is (sqlite3 binds a tuple subclass through a slow path:
    controller.ingest.bulk copies them); rows are named in bulk with `named_rows` (tuple.__new__ on a ready
    tuple: less than half of what the generated constructor costs per row). Between the bridge and the
    writer's process rows go as exact tuples (marshal takes nothing else): controller.ingest.records.
    wire_events makes them, the worker names them on arrival.
    """
    gateway_id: str
    store_id: str
    seq: int
    kind: str
    at: int | None
    port: str | None
    caller: str | None
    route: str | None
    outcome: str | None
    target: str | None
    attempts: int | None
    ring_s: int | None
    talk_s: int | None
    reason: str | None
    option: str | None
    data: str  # the record's JSON text (for a call: what has no column of its own)
    received_at: int


COLUMNS = RecordRow._fields
record_row = partial(tuple.__new__, RecordRow)  # a tuple of COLUMNS' values -> RecordRow


def named_rows(rows: list[tuple]) -> list[RecordRow]:
    """Exact tuples of RecordRow's fields (from wire_events, through marshal) as RecordRows."""
    return list(map(record_row, rows))


# Column widths: a longer value is kept in `data` (up to TEXT_MAX); the column gets a prefix (PostgreSQL
# would refuse it).
WIDTH = {"port": 16, "caller": 32, "route": 48, "outcome": 24, "target": 48, "reason": 32}
KIND_WIDTH = 16
_INT32 = 2**31


def _text(v, width: int) -> str | None:
    return v[:width] if type(v) is str and v else None


def _count(v) -> int | None:
    return v if type(v) is int and 0 <= v < _INT32 else None


def other_row(gw: str, sid: str, r: dict, received: int, dumps) -> tuple:
    """Any other record: kept whole in `data` (bounded); outbound calls and probes (DESIGN §5a) also fill
    the columns their lists and reports read, each value checked here as the decoder may not know them."""
    kind = r["t"][:KIND_WIDTH]
    at = r.get("at") if kind not in ("outbound", "probe") else r.get("start")
    at = at if type(at) is int and -_TIME_LIMIT < at < _TIME_LIMIT else None
    port = caller = outcome = target = ring = talk = None
    if kind in ("outbound", "probe"):
        port, outcome = _text(r.get("port"), WIDTH["port"]), _text(r.get("outcome"), WIDTH["outcome"])
        if kind == "outbound":
            caller = _text(r.get("citizen"), WIDTH["caller"])
            ring, talk = _count(r.get("ring_s")), _count(r.get("talk_s"))
        else:
            target = _text(r.get("target"), WIDTH["target"])
    # RecordRow's fields, as an exact tuple (wire_events)
    return (gw, sid, r["seq"], kind, at, port, caller, None, outcome, target, None, ring, talk, None, None,
            dumps(bounded(r)), received)


_TIME_LIMIT = 2**62
