"""The daily aggregates (call_days) on SQLite and PostgreSQL: always the sums of their hours (triggers on
call_hours, late records for an old day included), filled from the hours by migration 0008, and the call
report that reads them for whole days equal to the same report computed straight from the hourly rows."""

from __future__ import annotations

import random
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from controller import migrate, reference
from controller.ingest.records import write_batch
from controller.models import CallDay, CallHour, Gateway
from controller.services.report_parts import whole_days
from controller.services.reports import COUNTS, by_month, call_report_data
from protocols import messages
from tests.controller.databases import KINDS, scratch_database

DAY = 86400
START = 1767225600 - 20 * DAY  # 2025-12-12T00:00Z: 40 days across a month and a year's end
DAYS = 40
ROUTES = (("police-102", "mariupol-102", "gsm1"), ("info-505", None, "gsm3"), (None, None, "gsm4"))
OUTCOMES = ("answered", "answered", "abandoned", "failed", "callback", "rejected", "after_hours", "denied")
COUNTED = (*COUNTS, "ring_s")


def calls(gw: str, first_seq: int, starts: list[int], rng: random.Random) -> dict:
    """An events message of call records, one per start."""
    records = []
    for seq, at in enumerate(starts, first_seq):
        route, target, port = rng.choice(ROUTES)
        outcome = rng.choice(OUTCOMES)
        talk = rng.randrange(1, 300) if outcome == "answered" else 0
        records.append(messages.call_record(seq, at, port, "+380671000001", route, outcome, target, 1,
                                            rng.randrange(0, 40), talk, "ok"))
    return messages.events(f"st-{gw}", records)


def store(db, gw: str, first_seq: int, starts: list[int], rng: random.Random) -> None:
    with db.session() as s:
        stats = {"records": 0, "duplicates": 0}
        write_batch(s, [(gw, "events", calls(gw, first_seq, starts, rng))], stats)
        assert stats["records"] == len(starts)


@contextmanager
def seeded(request, tmp_path, start: int, days: int, per_gateway: int, seed: int):
    """A scratch database of request.param with the reference region and `per_gateway` calls on each of its
    four gateways over `days` days from `start`, stored by the ingest writer (db.seqs: each store's next seq)."""
    with scratch_database(request.param, tmp_path, request.node.name) as db:
        db.upgrade()
        with db.session() as s:
            reference.seed(s)
        rng = random.Random(seed)
        db.seqs = {}
        for gw in reference.CITIES:
            starts = sorted(start + rng.randrange(0, days * DAY) for _ in range(per_gateway))
            store(db, gw, 1, starts, rng)
            db.seqs[gw] = len(starts) + 1
        yield db


@pytest.fixture(params=KINDS)
def db(request, tmp_path):
    """The reference region with 40 days of calls on its four gateways."""
    with seeded(request, tmp_path, START, DAYS, per_gateway=300, seed=12) as db:
        yield db


def hour_sums(s, period_of) -> dict[tuple, tuple]:
    """call_hours summed per (gateway, period_of(hour), route, target): (hour rows, counts...)."""
    out: dict[tuple, list] = {}
    for h in s.scalars(select(CallHour)):
        cell = out.setdefault((h.gateway_id, period_of(h.hour), h.route, h.target), [0] * (1 + len(COUNTED)))
        cell[0] += 1
        for i, c in enumerate(COUNTED, 1):
            cell[i] += getattr(h, c)
    return {k: tuple(v) for k, v in out.items()}


def day_sums(s) -> dict[tuple, tuple]:
    """What call_days must hold."""
    return hour_sums(s, lambda hour: hour // DAY * DAY)


def days_held(s) -> dict[tuple, tuple]:
    return {(d.gateway_id, d.day, d.route, d.target): (d.hours, *(getattr(d, c) for c in COUNTED))
            for d in s.scalars(select(CallDay))}


def from_hours(s, group: str, interval: str, lo: int | None, hi: int | None) -> list[dict]:
    """The call report's rows computed here, straight from every hourly row: the figures to equal."""
    city = {g.id: g.city.name if g.city else None for g in s.scalars(select(Gateway))}
    cells: dict[tuple, dict] = {}
    for h in s.scalars(select(CallHour)):
        if (lo is not None and h.hour < lo) or (hi is not None and h.hour >= hi):
            continue
        key = {"gateway": h.gateway_id, "route": h.route or None, "target": h.target or None,
               "city": city.get(h.gateway_id)}[group]
        start = h.hour // 3600 * 3600 if interval == "hour" else h.hour // DAY * DAY
        cell = cells.setdefault((key, start), {"key": key, "start": start, **dict.fromkeys(COUNTS, 0)})
        for c in COUNTS:
            cell[c] += getattr(h, c)
    rows = list(cells.values())
    return by_month(rows) if interval == "month" else rows


def report(s, group: str, interval: str, lo: int | None, hi: int | None) -> list[dict]:
    rows = call_report_data(s, group, interval, lo, hi)["rows"]
    return [{k: r[k] for k in ("key", "start", *COUNTS)} for r in rows]


def ordered(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["start"], str(r["key"])))


WINDOWS = [
    (None, None),                                    # everything
    (START, START + DAYS * DAY),                     # whole days only
    (START + 5 * 3600, START + 31 * DAY + 7 * 3600),  # partial days at both edges, over the month's end
    (START + 19 * DAY + 23 * 3600, START + 21 * DAY),  # one hour of a day, then one whole day
    (START + 3 * DAY + 3600, START + 3 * DAY + 9 * 3600),  # inside one day: hours only
    (START + 10 * DAY + 3600, None),                 # open end
    (None, START + 12 * DAY + 3600),                 # open start
]


def check_report(db) -> None:
    with db.session() as s:
        for lo, hi in WINDOWS:
            for group in ("city", "gateway", "route", "target"):
                for interval in ("day", "month", "hour"):
                    assert ordered(report(s, group, interval, lo, hi)) == ordered(from_hours(
                        s, group, interval, lo, hi)), (group, interval, lo, hi)


def test_call_days_are_the_sums_of_their_hours_and_the_report_equals_the_hours(db):
    with db.session() as s:
        assert days_held(s) == day_sums(s) and days_held(s)
    check_report(db)


def test_late_records_for_an_old_day_reach_the_days_and_the_report(db):
    rng = random.Random(7)
    with db.session() as s:
        old_hour = s.scalar(select(CallHour.hour).where(CallHour.gateway_id == "gw-toretsk-1")
                            .order_by(CallHour.hour).limit(1))
        before = s.scalar(select(CallDay.offered).where(CallDay.gateway_id == "gw-toretsk-1",
                                                        CallDay.day == old_hour // DAY * DAY).limit(1))
    assert before is not None
    # late: one call into an hour already counted (its row is updated), one into a new hour of that old day,
    # and one on a day that had no calls at all
    empty_day = START - 3 * DAY
    late = [old_hour + 60, old_hour // DAY * DAY + 23 * 3600 + 10, empty_day + 7200]
    store(db, "gw-toretsk-1", db.seqs["gw-toretsk-1"], late, rng)
    with db.session() as s:
        assert days_held(s) == day_sums(s)
        assert s.scalar(select(CallDay.hours).where(CallDay.day == empty_day)) == 1
        total = call_report_data(s, "gateway", "day", empty_day, empty_day + DAY)["totals"]
        assert [(t["key"], t["offered"]) for t in total] == [("gw-toretsk-1", 1)]
    check_report(db)


def test_hours_changed_moved_or_deleted_by_hand_keep_the_days_equal(db):
    with db.session() as s:
        hours = sorted(s.scalars(select(CallHour.hour).where(CallHour.gateway_id == "gw-mariupol-1")).all())
        conn = s.connection()
        # an hour's counts changed in place, one moved to another day, one day's hours all deleted
        conn.execute(text("UPDATE call_hours SET offered = offered + 5, talk_s = talk_s + 50 "
                          "WHERE gateway_id = 'gw-mariupol-1' AND hour = :h"), {"h": hours[0]})
        conn.execute(text("UPDATE call_hours SET hour = hour + 9 * 86400 WHERE gateway_id = 'gw-mariupol-1' "
                          "AND hour = :h"), {"h": hours[len(hours) // 2]})
        gone = hours[-1] // DAY * DAY
        conn.execute(text("DELETE FROM call_hours WHERE hour >= :a AND hour < :b"), {"a": gone, "b": gone + DAY})
    with db.session() as s:
        assert days_held(s) == day_sums(s)
        assert not s.scalars(select(CallDay).where(CallDay.day == gone)).all()
    check_report(db)


def test_the_report_reads_whole_days_from_call_days(db):
    """What the daily rows hold is what a whole-day window reports (so the fast path is the one taken)."""
    first, end = whole_days(START + 3600, START + 3 * DAY)
    assert (first, end) == (START + DAY, START + 3 * DAY)
    with db.session() as s:
        s.execute(text("UPDATE call_days SET offered = offered + 1000 WHERE day = :d"), {"d": START + DAY})
        # by hand, past the triggers: the days no longer equal their hours, and the report says so
        rows = report(s, "gateway", "day", START + 3600, START + 3 * DAY)
        tampered = [r for r in rows if r["start"] == START + DAY]
        assert tampered and all(r["offered"] > 1000 for r in tampered)
        s.rollback()


@pytest.mark.parametrize("kind", KINDS)
def test_migration_0008_fills_call_days_from_the_hours_already_there(kind, tmp_path):
    with scratch_database(kind, tmp_path, "call_days_fill") as db:
        migrate.upgrade(db, "0007")
        with db.engine.begin() as conn:
            for gw, hour, route in [("gw-a", START + 3600, "r1"), ("gw-a", START + 7200, "r1"),
                                    ("gw-a", START + DAY, "r1"), ("gw-b", START + 3600, "")]:
                conn.execute(text("INSERT INTO call_hours (gateway_id, hour, route, target, offered, answered, "
                                  "abandoned, failed, rejected, after_hours, callback, denied, talk_s, ring_s) "
                                  "VALUES (:g, :h, :r, '', 2, 1, 1, 0, 0, 0, 0, 0, 30, 8)"),
                             {"g": gw, "h": hour, "r": route})
        db.upgrade()
        with db.session() as s:
            held = days_held(s)
            assert held == day_sums(s)
            assert held[("gw-a", START, "r1", "")][:3] == (2, 4, 2)
        migrate_down(db, "0007")
        with db.engine.connect() as conn:  # down again: the table and its triggers are gone, hours still write
            conn.execute(text("UPDATE call_hours SET offered = 3"))
            assert "call_days" not in set(conn.dialect.get_table_names(conn))


def migrate_down(db, to: str) -> None:
    from alembic import command

    cfg = migrate.config(db.url)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, to)


def test_whole_days_of_a_window():
    assert whole_days(None, None) == (DAY, None)
    assert whole_days(START, START + DAY) == (START, START + DAY)
    assert whole_days(START + 1, START + 2 * DAY - 1) == (None, None)
    assert whole_days(-5 * DAY, 3 * DAY) == (DAY, 3 * DAY)  # day 0 and before: from the hours
    assert datetime.fromtimestamp(START, UTC).strftime("%Y-%m-%d") == "2025-12-12"


def test_calls_centuries_apart_are_still_summed_per_month(db):
    """More months than a CASE is built for (a stored start may be any time): the days go up one by one."""
    far = 10413792000 + 5 * 3600  # 2300-01-01T05:00Z
    store(db, "gw-sloviansk-1", db.seqs["gw-sloviansk-1"], [far, far + 40 * DAY], random.Random(3))
    with db.session() as s:
        assert days_held(s) == day_sums(s)
        for lo, hi in [(None, None), (START, far + 60 * DAY), (START + 3600, None)]:
            for group in ("city", "gateway"):
                assert ordered(report(s, group, "month", lo, hi)) == ordered(from_hours(s, group, "month", lo, hi))
