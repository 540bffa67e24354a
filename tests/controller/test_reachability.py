"""Routes that another route keeps from their calls: the README's night route, refused and warned."""

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from controller import reference
from controller.cli import app
from controller.compiler import latest_table
from controller.reachability import shadows, when
from controller.settings import get_settings
from protocols import routing
from tests.controller.databases import scratch_database

runner = CliRunner()
KYIV_2PM, KYIV_11PM = 1469444400, 1469476800  # 2016-07-25 14:00 and 23:00 in Kyiv (after the switch-over)


@pytest.fixture
def db(tmp_path, monkeypatch):
    with scratch_database("sqlite", tmp_path) as database:
        database.upgrade()
        with database.session() as s:
            reference.seed(s)
        monkeypatch.setenv("CITYGATE_DATABASE_URL", database.url)
        get_settings.cache_clear()
        yield database
    get_settings.cache_clear()


def run(db, *args):
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


NIGHT = ("route", "add", "--city", "Toretsk", "--service", "102", "--name", "police-night", "--target",
         "mariupol-reserve", "--hours", "1234567,22:00,06:00")


def test_a_night_route_whose_after_hours_takes_every_call_is_refused_naming_both(db):
    result = run(db, *NIGHT, "--after-hours", "callback")
    assert result.exit_code != 0, result.output
    out = " ".join(result.output.split())
    assert "police-102 is never reached: police-night takes every call" in out, out
    with db.session() as s:
        assert latest_table(s, "gw-toretsk-1") is None, "nothing compiled"


def test_the_readmes_night_route_only_covers_the_night(db):
    result = run(db, *NIGHT)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert ("police-102 does not get its calls every day and on 2016-08-24 00:00-06:00, 22:00-24:00: police-night "
            "takes them") in out, "the police line is open on holidays, so the night route takes those nights too"
    with db.session() as s:
        table = routing.load(latest_table(s, "gw-toretsk-1").body)
    night = next(r for r in table.routes if r.id == "police-night")
    assert night.after_hours == ("next", None), "beside police-102 the new route yields to it by default"
    day = routing.decide(table, "gsm1", "+380624711111", KYIV_2PM)
    assert (day.action, day.route, day.targets[0]) == ("dial", "police-102", "mariupol-102")
    night_call = routing.decide(table, "gsm1", "+380624711111", KYIV_11PM)
    assert (night_call.action, night_call.route, night_call.targets) == ("dial", "police-night", ["mariupol-reserve"])


def test_reference_tables_have_no_shadowed_route():
    for gw in reference.CITIES:
        assert shadows(routing.load(reference.table(gw))) == [], gw


def test_an_earlier_route_with_the_same_callers_shadows_a_later_one_only_while_it_is_open():
    doc = {"schema": 1, "gateway": "gw-a-1", "version": 1, "issued_at": 1700000000, "tz": "UTC0",
           "targets": {"a": {"number": "+3801", "via": ["gsm2"]}, "b": {"number": "+3802", "via": ["gsm2"]}},
           "routes": [{"id": "office", "port": "gsm1", "hours": [{"days": "12345", "start": "09:00", "end": "17:00"}],
                       "targets": ["a"], "after_hours": {"action": "next"}},
                      {"id": "vip", "port": "gsm1", "caller": ["+38050"], "targets": ["b"]},
                      {"id": "always", "port": "gsm1", "targets": ["b"]},
                      {"id": "star", "port": "*", "targets": ["b"]}]}
    found = {sh.route: sh for sh in shadows(routing.load(json.dumps(doc)))}
    assert set(found) == {"always"}, "vip has a longer prefix; star serves the ports no route names"
    assert found["always"].by == ["office"] and not found["always"].never
    assert found["always"].when == "Mon,Tue,Wed,Thu,Fri 09:00-17:00"


def test_when_groups_days_and_dates():
    spans = [(d, 0, 360) for d in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")] + [("2016-08-24", 0, 1440)]
    assert when(spans) == "every day 00:00-06:00; on 2016-08-24 00:00-24:00"


def test_impact_preview_before_the_rollout(db):
    """route add shows which decisions change; `rollout impact` shows the same before anything is published."""
    from controller.compiler import compile_all
    from controller.models import Gateway

    with db.session() as s:
        compile_all(s)
        for gw in s.scalars(select(Gateway)):
            gw.desired_version = 1  # as published by a rollout
    result = run(db, *NIGHT)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    night = ("Toretsk 102 (gsm1) every day and on 2016-08-24 00:00-06:00, 22:00-24:00: dial mariupol-102, "
             "mariupol-reserve → dial mariupol-reserve")
    assert night in out, out
    assert "14:00" not in out.split("what this changes")[1], "the day is unchanged"
    result = run(db, "rollout", "impact", "--json")
    assert result.exit_code == 0, result.output
    changes = json.loads(result.stdout)
    assert list(changes) == ["gw-toretsk-1"], "only Toretsk's table changed"
    assert [c["text"] for c in changes["gw-toretsk-1"]] == [night]
    result = run(db, "rollout", "impact", "--gateway", "gw-mariupol-1")
    assert result.exit_code == 0 and "no routing decision changes" in result.output
