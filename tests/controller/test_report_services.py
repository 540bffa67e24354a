"""The report services on SQLite and PostgreSQL: the service level beside the outcomes, a service's year in
local time, its milestones, the scheduled report and the privacy purge (tests/controller/report_data.py)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from controller.models import CallHour, OutboundCall, Record
from controller.services import report_privacy, report_year
from controller.services.errors import FieldError, NotFound
from controller.services.report_local import by_period, local_start, region_zone
from tests.controller.databases import KINDS, scratch_database
from tests.controller.report_data import CALLS, store_calls


@pytest.fixture(scope="module", params=KINDS)
def db(request, tmp_path_factory):
    with scratch_database(request.param, tmp_path_factory.mktemp("db"), "report_services") as db:
        db.upgrade()
        with db.session() as s:
            db.ids = store_calls(s)
        yield db


def test_report_service_level_per_local_day_across_the_clock_change(db):
    with db.session() as s:
        tz = region_zone(s)
        lo, hi = local_start(date(2025, 3, 29), tz), local_start(date(2025, 4, 1), tz)
        data = by_period(s, "city", "day", lo, hi, tz, within_s=20)
        days = {p["period"]: p for p in data["periods"]}
        assert list(days) == ["2025-03-29", "2025-03-30", "2025-03-31"]
        # both calls of 30 March local (one 29 March in UTC), one answered after 25 s of ringing
        assert (days["2025-03-30"]["offered"], days["2025-03-30"]["answered"]) == (2, 1)
        assert days["2025-03-30"]["within"] == 0 and days["2025-03-30"]["service_level"] == 0.0
        assert days["2025-03-29"]["offered"] == 0 and days["2025-03-29"]["service_level"] is None
        assert sorted(r["key"] for r in data["rows"]) == ["Kramatorsk", "Mariupol"]
        # 25 s is within 30
        assert by_period(s, "city", "day", lo, hi, tz, within_s=30)["totals"]["service_level"] == 0.5


def test_report_year_key_figures_of_the_505_line(db):
    with db.session() as s:
        y = report_year.year_figures(s, "505", 2025, within_s=20)
    t = y["totals"]
    assert (t["offered"], t["answered"], t["abandoned"], t["callback"], t["within"]) == (6, 4, 1, 1, 3)
    assert t["answer_ratio"] == round(4 / 6, 4) and t["service_level"] == 0.5
    assert (t["talk_s"], t["avg_talk_s"]) == (200, 50.0)
    assert y["zone"] == "Europe/Kyiv" and y["service"] == {"number": "505", "name": "Citizens' information"}
    assert y["busiest"] == {"month": {"period": "2025-07", "offered": 3}, "day": {"period": "2025-07-15", "offered": 3},
                            "hour": {"period": "10:00", "offered": 3}}
    assert [m["offered"] for m in y["months"]] == [1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0]
    assert {c["key"]: c["offered"] for c in y["cities"]} == {"Kramatorsk": 1, "Mariupol": 3, "Toretsk": 2}
    assert y["callbacks"] == {"requested": 1, "placed": 1, "reached": 1}
    with db.session() as s:  # the call of 1 January 2026 00:30 local is 2026's (2025 in UTC)
        assert report_year.year_figures(s, "505", 2026)["totals"]["offered"] == 1
        assert report_year.year_figures(s, "102", 2025)["totals"]["offered"] == 1
        assert report_year.year_figures(s, "505", 2024)["busiest"]["month"] is None


@pytest.mark.parametrize(("args", "field"), [(("505", 1999), "year"), (("505", "2025"), "year"),
                                             (("", 2025), "service"), (("5" * 200, 2025), "service"),
                                             (("505", 2025, 0), "within_s"), (("505", 2025, 10**9), "within_s")])
def test_report_year_refuses_bad_values_naming_the_field(db, args, field):
    with db.session() as s, pytest.raises(FieldError) as e:
        report_year.year_figures(s, *args)
    assert e.value.field == field


def test_report_year_of_an_unknown_service_is_not_found(db):
    with db.session() as s, pytest.raises(NotFound) as e:
        report_year.year_figures(s, "999", 2025)
    assert e.value.field == "service"


def test_milestones_name_every_nth_call_of_the_service(db):
    with db.session() as s:
        m = report_year.milestones(s, "505", 2)
        answered = report_year.milestones(s, "505", 2, answered=True)
        one = report_year.milestones(s, "505", 1, limit=2)
    assert (m["calls"], m["reached"]) == (7, 3)
    # ordered by start: calls 1, 2, 3, 4, 5, 6, 7 of CALLS (all 505): milestones are the 2nd, 4th, 6th
    assert [(x["n"], x["at"], x["city"], x["gateway"]) for x in m["milestones"]] == [
        (2, CALLS[1][1], "Kramatorsk", "gw-kramatorsk-1"), (4, CALLS[3][1], "Mariupol", "gw-mariupol-1"),
        (6, CALLS[5][1], "Toretsk", "gw-toretsk-1")]
    assert m["milestones"][1]["local"] == "2025-07-15 10:10:00" and m["milestones"][1]["utc"] == "2025-07-15T07:10:00Z"
    assert all("caller" not in x for x in m["milestones"])
    # answered 505 calls: 1, 2, 4, 6, 7
    assert [x["at"] for x in answered["milestones"]] == [CALLS[1][1], CALLS[5][1]] and answered["calls"] == 5
    assert [x["n"] for x in one["milestones"]] == [1, 2] and one["reached"] == 7


@pytest.mark.parametrize(("kwargs", "field"), [({"every": 0}, "every"), ({"every": 10**10}, "every"),
                                               ({"every": "100"}, "every"), ({"every": 5, "limit": 0}, "limit"),
                                               ({"every": 5, "limit": 5000}, "limit")])
def test_milestones_refuse_bad_values_naming_the_field(db, kwargs, field):
    with db.session() as s, pytest.raises(FieldError) as e:
        report_year.milestones(s, "505", **kwargs)
    assert e.value.field == field


def test_privacy_mask_keeps_the_code_and_last_digits():
    assert report_privacy.mask("+380671234502") == "+38067*****02"
    assert report_privacy.mask("0671234502") == "067*****02"
    assert report_privacy.mask("102") == "***"
    assert report_privacy.mask(None) is None and report_privacy.mask("") == ""
    assert report_privacy.masks_for("viewer", True) and not report_privacy.masks_for("operator", True)
    assert not report_privacy.masks_for("viewer", False)
    with pytest.raises(FieldError):
        report_privacy.cutoff(-1)
    assert report_privacy.cutoff(0) is None and report_privacy.cutoff(30, now=100 * 86400) == 70 * 86400


def test_privacy_purge_clears_old_numbers_and_keeps_every_count(db):
    with db.session() as s:
        before = report_year.year_figures(s, "505", 2025)
        hours = s.execute(select(func.sum(CallHour.offered), func.sum(CallHour.answered))).one()
        # from the 2nd call on (the duty's next run starts near its last cutoff), then all before the 4th
        assert report_privacy.purge(s, CALLS[3][1], since=CALLS[1][1]) == {"records": 2, "outbound_requests": 0}
        assert s.scalar(select(Record.caller).where(Record.at == CALLS[0][1])) == CALLS[0][3]
        changed = report_privacy.purge(s, CALLS[3][1])  # every call before 2025-07-15 10:10 local
    assert changed == {"records": 1, "outbound_requests": 0}
    with db.session() as s:
        numbers = dict(s.execute(select(Record.at, Record.caller).where(Record.kind == "call")).all())
        assert [numbers[c[1]] for c in CALLS[:3]] == [None, None, None]
        assert [numbers[c[1]] for c in CALLS[3:]] == [c[3] for c in CALLS[3:]]
        assert report_year.year_figures(s, "505", 2025) == before
        assert s.execute(select(func.sum(CallHour.offered), func.sum(CallHour.answered))).one() == hours
        # then everything: the outbound record and the request of the call-back too
        changed = report_privacy.purge(s, 2**40)
    assert changed == {"records": 6, "outbound_requests": 1}  # 5 calls and the outbound record
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Record).where(Record.caller.is_not(None))) == 0
        out = s.scalars(select(Record).where(Record.kind == "outbound")).one()
        assert "citizen" not in out.data and out.data["outcome"] == "answered"
        assert s.scalars(select(OutboundCall.citizen)).one() == "+38067*****05"
        assert report_year.year_figures(s, "505", 2025) == before
        assert report_privacy.purge(s, 2**40) == {"records": 0, "outbound_requests": 0}
