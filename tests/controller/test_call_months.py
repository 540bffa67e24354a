"""The monthly aggregates (call_months) on SQLite and PostgreSQL: always the sums of their hours and of the
call records behind them, whatever writes the hours (the ingest writer, late records for an old month, by
hand: changed, moved across months in one statement, deleted), filled from the hours by migration 0009;
and the call report that reads whole months there (days and hours at the edges) equal to the same report
summed straight from the hourly rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from controller import migrate
from controller.models import CallHour, CallMonth, Record
from controller.services.report_parts import Part, plan, whole_months
from controller.services.reports import COUNTS
from protocols.messages import OUTCOMES
from tests.controller.databases import KINDS, scratch_database
from tests.controller.test_call_days import from_hours, hour_sums, migrate_down, ordered, report, seeded, store

DAY = 86400
START = 1763596800  # 2025-11-20T00:00Z: 100 days over four months and a year's end
DAYS = 100
DEC, JAN, FEB, MAR = 1764547200, 1767225600, 1769904000, 1772323200  # first seconds of those months (UTC)
DATE_MAX = 253402300799
COUNTED = (*COUNTS, "ring_s")
HOURS_SQL = ("INSERT INTO call_hours (gateway_id, hour, route, target, offered, answered, abandoned, failed, "
             "rejected, after_hours, callback, denied, talk_s, ring_s) "
             "VALUES (:g, :h, :r, '', 2, 1, 1, 0, 0, 0, 0, 0, 30, 8)")


def month_of(hour: int) -> int:
    """The month key migration 0009 gives an hour: its UTC month, or (no date) its day as SQL divides."""
    if 0 <= hour <= DATE_MAX:
        t = datetime.fromtimestamp(hour, UTC)
        return int(datetime(t.year, t.month, 1, tzinfo=UTC).timestamp())
    return -(-hour // DAY) * DAY if hour < 0 else hour // DAY * DAY


@pytest.fixture(params=KINDS)
def db(request, tmp_path):
    """The reference region with 100 days of calls on its four gateways."""
    with seeded(request, tmp_path, START, DAYS, per_gateway=400, seed=9) as db:
        yield db


def month_sums(s) -> dict[tuple, tuple]:
    """What call_months must hold."""
    return hour_sums(s, month_of)


def months_held(s) -> dict[tuple, tuple]:
    return {(m.gateway_id, m.month, m.route, m.target): (m.hours, *(getattr(m, c) for c in COUNTED))
            for m in s.scalars(select(CallMonth))}


def record_sums(s) -> dict[tuple, tuple]:
    """The call records counted per (gateway, month, route, target): the counts call_months must hold."""
    out: dict[tuple, list] = {}
    for r in s.scalars(select(Record).where(Record.kind == "call")):
        cell = out.setdefault((r.gateway_id, month_of(r.at // 3600 * 3600), r.route or "", r.target or ""),
                              [0] * len(COUNTED))
        cell[0] += 1
        cell[1 + OUTCOMES.index(r.outcome)] += 1
        cell[-2] += r.talk_s
        cell[-1] += r.ring_s
    return {k: tuple(v) for k, v in out.items()}


WINDOWS = [
    (None, None),                                  # everything
    (DEC, FEB),                                    # whole months only
    (START + 5 * 3600, FEB + 19 * DAY + 7 * 3600),  # ragged hours, days, then months, then days and hours
    (START + 5 * DAY, FEB + 9 * DAY),              # whole days around whole months
    (DEC + 2 * DAY, DEC + 20 * DAY + 3600),        # inside one month: days and hours only
    (JAN - 3600, JAN + DAY),                       # one hour of a month, then one whole day
    (DEC + 5 * 3600, JAN + 25 * DAY + 3600),       # months less the hours and days outside the window
    (DEC + 2 * DAY, FEB - 3 * DAY),                # months less whole days at both ends
    (START + 10 * DAY + 3600, None),               # open end
    (None, FEB + 12 * DAY + 3600),                 # open start
]


def check_report(db) -> None:
    with db.session() as s:
        for lo, hi in WINDOWS:
            for group in ("city", "gateway", "route", "target"):
                for interval in ("month", "day"):
                    assert ordered(report(s, group, interval, lo, hi)) == ordered(from_hours(
                        s, group, interval, lo, hi)), (group, interval, lo, hi)


def check_months(db) -> None:
    with db.session() as s:
        held = months_held(s)
        assert held == month_sums(s) and held
        assert {k: v[1:] for k, v in held.items()} == record_sums(s)


def test_call_months_are_the_sums_of_their_hours_and_records_and_the_report_equals_the_hours(db):
    check_months(db)
    with db.session() as s:
        assert {m for (_, m, _, _) in months_held(s)} == {START - 19 * DAY, DEC, JAN, FEB}
    check_report(db)


def test_late_records_for_an_old_month_reach_the_months_and_the_report(db):
    rng = random.Random(4)
    # into an hour already counted, a new hour of an old month, and a month that had no calls at all
    with db.session() as s:
        old_hour = s.scalar(select(CallHour.hour).where(CallHour.gateway_id == "gw-toretsk-1", CallHour.hour >= DEC)
                            .order_by(CallHour.hour).limit(1))
    empty_month = 1756684800  # 2025-09-01T00:00Z
    late = sorted([old_hour + 60, DEC + 17 * DAY + 23 * 3600 + 5, empty_month + 3 * DAY + 7200])
    store(db, "gw-toretsk-1", db.seqs["gw-toretsk-1"], late, rng)
    check_months(db)
    with db.session() as s:
        assert s.scalar(select(CallMonth.hours).where(CallMonth.month == empty_month)) == 1
    check_report(db)


def test_hours_changed_moved_or_deleted_by_hand_keep_the_months_equal(db):
    with db.session() as s:
        hours = sorted(s.scalars(select(CallHour.hour).where(CallHour.gateway_id == "gw-mariupol-1")).all())
        conn = s.connection()
        conn.execute(text("UPDATE call_hours SET offered = offered + 5, talk_s = talk_s + 50 "
                          "WHERE gateway_id = 'gw-mariupol-1' AND hour = :h"), {"h": hours[0]})
        # one hour moved into the next month; then every hour of a gateway moved in one statement, across
        # months, ten years on; then all of January's hours deleted
        conn.execute(text("UPDATE call_hours SET hour = hour + 31 * 86400 WHERE gateway_id = 'gw-mariupol-1' "
                          "AND hour = :h"), {"h": hours[len(hours) // 2]})
        conn.execute(text("UPDATE call_hours SET hour = hour + 315360000 WHERE gateway_id = 'gw-sloviansk-1'"))
        conn.execute(text("DELETE FROM call_hours WHERE hour >= :a AND hour < :b"), {"a": JAN, "b": FEB})
    with db.session() as s:
        held = months_held(s)
        assert held == month_sums(s)
        assert JAN not in {m for (_, m, _, _) in held}
        assert {m for (g, m, _, _) in held if g == "gw-sloviansk-1"} == {
            month_of(h + 315360000) for h in range(START, START + DAYS * DAY, 3600)}
    check_report(db)
    with db.session() as s:
        s.execute(text("DELETE FROM call_hours"))
        s.commit()
        assert not months_held(s)


def test_hours_that_are_no_date_are_kept_under_their_day(db):
    """A stored start may be any time: before 1970 or after 9999 an hour is summed under its day, as
    call_days does, and the report still equals its hours."""
    far = [10413792000 + 5 * 3600, 10413792000 + 40 * DAY]  # 2300
    store(db, "gw-sloviansk-1", db.seqs["gw-sloviansk-1"], far, random.Random(3))
    with db.session() as s:
        for hour in (DATE_MAX + 1 - 3600, DATE_MAX + 1, 2**62 // 3600 * 3600, -3600, -2 * DAY - 3600):
            s.execute(text(HOURS_SQL), {"g": "gw-hand", "h": hour, "r": "r1"})
        s.commit()
        held = months_held(s)
        assert held == month_sums(s)
        assert held[("gw-hand", DATE_MAX + 1, "r1", "")][0] == 1
        assert held[("gw-hand", -2 * DAY, "r1", "")][0] == 1
        s.execute(text("DELETE FROM call_hours WHERE gateway_id = 'gw-hand' AND hour < 0"))
        s.commit()
    with db.session() as s:
        for lo, hi in [(None, None), (START, far[1] + 60 * DAY), (START + 3600, None), (DEC, None)]:
            for group in ("city", "gateway"):
                assert ordered(report(s, group, "month", lo, hi)) == ordered(from_hours(s, group, "month", lo, hi))


def test_the_report_reads_whole_months_from_call_months(db):
    """What the monthly rows hold is what a window of whole months reports (the fast path is the one taken)."""
    assert whole_months(START + 5 * DAY, FEB + 9 * DAY) == (DEC, FEB)
    with db.session() as s:
        s.execute(text("UPDATE call_months SET offered = offered + 1000 WHERE month = :m"), {"m": JAN})
        # by hand, past the triggers: the months no longer equal their hours, and the report says so
        rows = report(s, "gateway", "month", START + 3600, FEB + 3 * DAY)
        assert {r["start"] for r in rows if r["offered"] > 1000} == {JAN}
        rows = report(s, "gateway", "day", JAN, FEB)  # days still come from the days
        assert all(r["offered"] < 1000 for r in rows)
        s.rollback()


def test_whole_months_of_a_window():
    assert whole_months(DEC, FEB) == (DEC, FEB)
    assert whole_months(DEC + DAY, FEB) == (JAN, FEB)
    assert whole_months(DEC + DAY, FEB - DAY) == (JAN, JAN)  # no whole month, but two partly covered
    assert whole_months(DEC + DAY, JAN - DAY) is None
    assert whole_months(DAY, None) == (31 * DAY, None)  # open start: from February 1970 on
    assert whole_months(START, MAR + 4 * DAY) == (DEC, MAR)
    assert whole_months(DEC, 10**15) == (DEC, 253399622400)  # the days after 9999-12 from the days
    assert whole_months(10**15, None) is None


def test_a_partly_covered_month_is_read_the_cheaper_way():
    """Inside the window (its days and hours) or its month row less what lies outside: fewer days read."""
    assert plan(START + 5 * 3600, FEB + 19 * DAY + 7 * 3600, "month") == [
        Part("months", DEC, MAR), Part("days", START + DAY, DEC), Part("hours", START + 5 * 3600, START + DAY),
        Part("days", FEB + 20 * DAY, MAR, -1), Part("hours", FEB + 19 * DAY + 7 * 3600, FEB + 20 * DAY, -1)]
    assert plan(DEC + 2 * DAY, FEB - 3 * DAY, "month") == [
        Part("months", DEC, FEB), Part("days", DEC, DEC + 2 * DAY, -1), Part("days", FEB - 3 * DAY, FEB, -1)]
    assert plan(DEC + 2 * DAY, FEB - 3 * DAY, "day") == [Part("days", DEC + 2 * DAY, FEB - 3 * DAY)]
    assert plan(None, None, "month") == [Part("months", 31 * DAY, None), Part("days", DAY, 31 * DAY),
                                         Part("hours", None, DAY)]


def test_a_key_with_calls_only_outside_the_window_is_no_row(db):
    """A month row less the hours outside the window can leave nothing of a key: it is not reported."""
    with db.session() as s:
        for hour in (DEC, DEC + 3600, FEB + 27 * DAY):
            s.execute(text(HOURS_SQL), {"g": "gw-edges", "h": hour, "r": "r-edges"})
        s.commit()
        lo, hi = DEC + 5 * 3600, FEB + 20 * DAY
        for group in ("gateway", "route"):
            rows = report(s, group, "month", lo, hi)
            assert "gw-edges" not in {r["key"] for r in rows} and "r-edges" not in {r["key"] for r in rows}
            assert ordered(rows) == ordered(from_hours(s, group, "month", lo, hi))


@pytest.mark.parametrize("kind", KINDS)
def test_migration_0009_fills_call_months_from_the_hours_already_there(kind, tmp_path):
    with scratch_database(kind, tmp_path, "call_months_fill") as db:
        migrate.upgrade(db, "0008")
        with db.engine.begin() as conn:
            for gw, hour, route in [("gw-a", DEC + 3600, "r1"), ("gw-a", DEC + 20 * DAY, "r1"),
                                    ("gw-a", JAN + 7200, "r1"), ("gw-b", DEC + 3600, ""),
                                    ("gw-b", DATE_MAX + 1, ""), ("gw-b", -DAY - 3600, "")]:
                conn.execute(text(HOURS_SQL), {"g": gw, "h": hour, "r": route})
        db.upgrade()
        with db.session() as s:
            held = months_held(s)
            assert held == month_sums(s)
            assert held[("gw-a", DEC, "r1", "")][:3] == (2, 4, 2)
            assert ("gw-b", -DAY, "", "") in held
        migrate_down(db, "0008")
        with db.engine.connect() as conn:  # down again: the table and its triggers are gone, hours still write
            conn.execute(text("UPDATE call_hours SET offered = 3"))
            assert "call_months" not in set(conn.dialect.get_table_names(conn))
