"""Writing what gateways report: one batch of decoded messages in one transaction.

Per batch, whatever its size, the records take a handful of statements: the stores' marks and the
records already held above them in two selects, every new record in one bulk insert that skips
stored keys (controller.ingest.bulk: COPY on PostgreSQL, an executemany of `INSERT .. ON CONFLICT
DO NOTHING` on SQLite; the count inserted must match, or another writer got there first and the
batch is written again), the hourly aggregates in one
upsert of increments computed from the new rows only (so they stay exact under duplicates), the
marks in one upsert that never lowers a mark. States and table acks: controller.ingest.states.
Nothing here publishes: the caller does, after commit (DESIGN §6).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from operator import itemgetter

from sqlalchemy.orm import Session

from controller.db import driver_marks
from controller.ingest.alerts import probe_alerts
from controller.ingest.bulk import insert_rows
from controller.ingest.rows import COLUMNS, WIDTH, RecordRow, named_rows, other_row
from controller.ingest.statements import sql as _sql
from controller.ingest.statements import upsert
from controller.ingest.states import apply_states_and_acks
from controller.limits import CODE_MAX, TEXT_MAX, bounded, clip
from controller.models import Alert, Record, now
from protocols import messages

CALL_FIELDS = ("port", "caller", "route", "outcome", "target", "attempts", "ring_s", "talk_s", "reason")

OUTCOMES = messages.OUTCOMES
HOUR = 3600


@dataclass
class Written:
    """What a committed batch asks the bridge to publish."""
    acks: dict[tuple[str, str], int] = field(default_factory=dict)  # (gw, store_id) -> events/ack seq
    republish: list[str] = field(default_factory=list)  # gateways back online with an old table
    results: list[tuple[str, dict]] = field(default_factory=list)  # (gateway, command result)


def write_batch(s: Session, items: list[tuple[str, str, dict | tuple[str, list[RecordRow]]]], stats: dict) -> Written:
    """Store decoded (gateway, kind, message) items; the caller commits, then publishes `Written`.

    An events message may come as decoded or as `prepare_events` made it (the bridge prepares its
    messages before they go to the writer's process: rows are cheaper to pass than dicts).
    """
    out = Written()
    received = now()
    events = [(gw, m if type(m) is tuple else prepare_events(gw, m, received)) for gw, kind, m in items
              if kind == "events"]
    if events:
        out.acks = store_events(s, events, stats)
    others = [(gw, kind, m) for gw, kind, m in items if kind in ("state", "table_ack")]
    if others:
        out.republish = apply_states_and_acks(s, others)
    out.results = [(gw, m) for gw, kind, m in items if kind == "cmd_result"]
    return out


# ---------------------------------------------------------------- records


OPTION_WIDTH = 8  # a menu key is one character (DESIGN §5a); anything longer stays in `data` only
assert COLUMNS == ("gateway_id", "store_id", "seq", "kind", "at", *CALL_FIELDS, "option", "data", "received_at")


def prepare_events(gw: str, msg: dict, received: int) -> tuple[str, list[RecordRow]]:
    """A decoded events message as (store_id, its records as RecordRows)."""
    sid, rows = wire_events(gw, msg, received)
    return sid, named_rows(rows)


def wire_events(gw: str, msg: dict, received: int) -> tuple[str, list[tuple]]:
    """prepare_events' rows as exact tuples (RecordRow's fields, in order): what the bridge hands to the
    writer's process, which names them again (controller.ingest.worker). marshal takes exact tuples only,
    and the bridge only builds and sends rows: named there, they cost a third more (0.3 us a record)."""
    sid = msg["store_id"]
    return sid, [_row(gw, sid, r, received) for r in msg["records"]]


class Raced(RuntimeError):
    """Another writer stored some of this batch's records meanwhile: write the batch again."""


_CALL_VALUES = itemgetter("start", *CALL_FIELDS)
_CALL_KEYS = frozenset(("seq", "t", "start", *CALL_FIELDS))
_WIDTHS = tuple((COLUMNS.index(f), w) for f, w in WIDTH.items())


def _row(gw: str, sid: str, r: dict, received: int, dumps=json.dumps) -> tuple:
    """The record as an exact tuple of RecordRow's fields (plain values, as marshal and the driver take them).

    A call record's `data` keeps only what has no column (the firmware's `tries`, say), so the
    common record is not serialised twice; `record_as_sent` puts it back together.
    """
    if r["t"] != "call":
        return other_row(gw, sid, r, received, dumps)
    # decode checked every field; only the free-text caller and reason can be wider than their columns
    caller, reason = r["caller"], r["reason"]
    if len(r) == len(_CALL_KEYS) and len(reason) <= _REASON_WIDTH and (caller is None or len(caller) <= _CALLER_WIDTH):
        return (gw, sid, r["seq"], "call", *_CALL_VALUES(r), None, "{}", received)
    extra = {k: bounded(v) for k, v in r.items() if k not in _CALL_KEYS}
    option = extra.get("option")
    if type(option) is str and 0 < len(option) <= OPTION_WIDTH:  # a menu call (DESIGN §5a): reports group by it
        del extra["option"]
    else:
        option = None
    row = [gw, sid, r["seq"], "call", *_CALL_VALUES(r), option, None, received]
    for i, width in _WIDTHS:
        v = row[i]
        if type(v) is str and len(v) > width:  # the column gets a prefix, `data` the value (to TEXT_MAX)
            row[i] = v[:width]
            extra[COLUMNS[i]] = v[:TEXT_MAX]
    row[-2] = dumps(extra)
    return tuple(row)


_REASON_WIDTH, _CALLER_WIDTH = WIDTH["reason"], WIDTH["caller"]


def record_as_sent(rec: Record) -> dict:
    """A stored record as the gateway sent it (call records: the columns and what `data` kept)."""
    if rec.kind != "call":
        return dict(rec.data)
    out = {"seq": rec.seq, "t": "call", "start": rec.at, **{f: getattr(rec, f) for f in CALL_FIELDS}}
    if rec.option is not None:
        out["option"] = rec.option
    out.update(rec.data or {})
    return out


def _held(s: Session, stores: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, dict[int, tuple]]]:
    """Per store: its mark and the records stored above it (out-of-order arrivals), in two selects.

    Both are driven by a VALUES list of the batch's stores, the second with each store's mark, so
    each store is one index seek on (gateway_id, store_id, seq > mark): an IN of row values made
    SQLite scan the whole records table once per batch. Written as SQL text: SQLAlchemy compiles
    a VALUES construct again for every batch.
    """
    keys = sorted(stores)
    conn = s.connection()
    p, _ = driver_marks(s)
    marks = dict.fromkeys(keys, 0)
    sql = (f"WITH batch_stores (g, sid) AS (VALUES {', '.join([f'({p}, {p})'] * len(keys))}) "
           "SELECT m.gateway_id, m.store_id, m.acked_seq FROM batch_stores b "
           "JOIN store_marks m ON m.gateway_id = b.g AND m.store_id = b.sid")
    for g, sid, seq in conn.exec_driver_sql(sql, tuple(x for key in keys for x in key)):
        marks[(g, sid)] = seq
    out = {key: (mark, {}) for key, mark in marks.items()}
    sql = (f"WITH batch_marks (g, sid, m) AS (VALUES {', '.join([f'({p}, {p}, CAST({p} AS BIGINT))'] * len(keys))}) "
           "SELECT r.gateway_id, r.store_id, r.seq, r.kind, r.data FROM batch_marks b "
           "JOIN records r ON r.gateway_id = b.g AND r.store_id = b.sid AND r.seq > b.m")
    for g, sid, seq, kind, data in conn.exec_driver_sql(sql, tuple(x for k in keys for x in (*k, marks[k]))):
        if kind == "dropped" and isinstance(data, str | bytes):
            data = json.loads(data)
        out[(g, sid)][1][seq] = (kind, data if kind == "dropped" else None)
    return out


def _covered(kind: str, data: dict | None) -> tuple[int, int] | None:
    """The seqs a `dropped` record stands for, as an interval (first, last): never expanded, it may
    span 10^8 seqs."""
    if kind != "dropped" or not data:
        return None
    first, last = data.get("first_seq"), data.get("last_seq")
    if type(first) is not int or type(last) is not int or last < first:
        return None
    return first, last


def advance(mark: int, seqs: set[int], spans: list[tuple[int, int]]) -> int:
    """The highest seq below which nothing is missing: from `mark`, through stored seqs one by one
    and through `dropped` intervals at a jump (work: the seqs held plus the intervals, whatever
    the intervals' width)."""
    spans = sorted(s for s in spans if s[1] > mark)
    i, new = 0, mark
    while True:
        while new + 1 in seqs:
            new += 1
        reach = new
        while i < len(spans) and spans[i][0] <= new + 1:
            reach = max(reach, spans[i][1])
            i += 1
        if reach == new:
            return new
        new = reach


def store_events(s: Session, events: list[tuple[str, tuple[str, list[RecordRow]]]],
                 stats: dict) -> dict[tuple[str, str], int]:
    """Insert new records once (each message as `prepare_events` made it); returns the new mark of
    every store the batch touched."""
    held = _held(s, {(gw, sid) for gw, (sid, _) in events})
    rows = []
    stored = {key: set(h) for key, (_, h) in held.items()}  # seqs in the table, or in this batch
    covered: dict[tuple, list[tuple[int, int]]] = {key: [] for key in held}  # what `dropped` records cover
    dups = 0
    for gw, (sid, recs) in events:
        key = (gw, sid)
        mark, there = held[key][0], stored[key]
        seqs = [r.seq for r in recs]
        if seqs[0] > mark and there.isdisjoint(seqs):  # all new: decode checked that seqs increase
            there.update(seqs)
        else:
            new = []
            for r, seq in zip(recs, seqs, strict=True):
                if seq <= mark or seq in there:  # stored already, or twice in this batch
                    dups += 1
                else:
                    there.add(seq)
                    new.append(r)
            recs = new
        rows += recs
        for r in recs:
            if r.kind == "dropped":
                span = _covered("dropped", json.loads(r.data))
                if span:
                    covered[key].append(span)
    if rows:
        inserted = insert_rows(s, "records", COLUMNS, rows, _sql(s, "records"))  # COPY on PostgreSQL
        if inserted != len(rows):
            raise Raced(f"{len(rows) - inserted} of {len(rows)} records were stored by another writer")
    stats["duplicates"] += dups
    stats["records"] += len(rows)
    _add_hours(s, rows)
    probes, outbound = [], []
    for r in rows:
        kind = r.kind
        if kind == "call":
            continue
        if kind == "alarm":
            a = json.loads(r.data)
            s.add(Alert(gateway_id=r.gateway_id, code=clip(a.get("code", "alarm"), CODE_MAX),
                        detail=clip(a.get("detail", "")), created_at=a.get("at") or r.received_at))
        elif kind == "probe" and r.target and r.outcome:
            probes.append((r.gateway_id, r.target, r.outcome))
        elif kind == "outbound":
            outbound.append((r.gateway_id, json.loads(r.data)))
    if probes:  # failed probes in a row open an alert, a good one resolves it
        probe_alerts(s, probes)
    if outbound:  # the operator's call ended: its request (and call-back) learn how
        from controller.services.outbound import settle_records
        settle_records(s, outbound)
    out, changed = {}, []
    for key, (mark, before) in held.items():
        spans = covered[key] + [span for kind, data in before.values() if (span := _covered(kind, data))]
        new = advance(mark, stored[key], spans)
        out[key] = new
        if new > mark:
            changed.append((key[0], key[1], new))
    if changed:
        upsert(s, "marks", changed)
    return out


HOUR_COUNTS = messages.HOUR_COUNTS
_OUTCOME_AT = {o: i + 1 for i, o in enumerate(OUTCOMES)}


def _add_hours(s: Session, rows: list[RecordRow]) -> None:
    """Fold new call records into the hourly aggregates (per gateway, UTC hour, route, target); their
    daily sums follow by trigger (call_days, migration 0008)."""
    cells: dict[tuple, list[int]] = {}
    talk, ring = len(HOUR_COUNTS) - 2, len(HOUR_COUNTS) - 1
    for r in rows:
        if r.kind != "call":
            continue
        # decode checked route and target: ids that fit their columns, or null
        key = (r.gateway_id, r.at // HOUR * HOUR, r.route or "", r.target or "")
        c = cells.get(key)
        if c is None:
            c = cells[key] = [0] * len(HOUR_COUNTS)
        c[0] += 1
        c[_OUTCOME_AT[r.outcome]] += 1
        c[talk] += r.talk_s
        c[ring] += r.ring_s
    if cells:  # in key order: two writers adding to the same hours lock them in the same order
        upsert(s, "hours", [(*k, *cells[k]) for k in sorted(cells)])

