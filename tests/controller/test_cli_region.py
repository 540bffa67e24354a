"""`citygate service | city | centre | deny | holiday | calendar`: the region service from the command line on
a seeded SQLite database; a bad value names the field as the API does and exits 2; edits recompile."""

import json

from typer.testing import CliRunner

from controller.cli import app
from controller.compiler import latest_table
from tests.controller.test_cli_admin import db  # noqa: F401  (the seeded database fixture)

runner = CliRunner()
ENV = {"COLUMNS": "200"}


def run(*args):
    return runner.invoke(app, list(args), env=ENV)


def _table(db, gateway="gw-mariupol-1") -> dict:  # noqa: F811
    with db.session() as s:
        return json.loads(latest_table(s, gateway).body)


def test_a_fresh_city_takes_a_gateway(db):  # noqa: F811
    r = run("city", "add", "Siversk", "--zone", "Europe/Kyiv")
    assert r.exit_code == 0, r.output
    assert "Siversk" in [c["name"] for c in json.loads(run("city", "list", "--json").output)]
    r = run("gateway", "add", "gw-siversk-1", "--city", "Siversk", "--port", "gsm1=102", "--out", "gsm2")
    assert r.exit_code == 0, r.output
    assert run("city", "remove", "Siversk").exit_code == 2, "a city with a gateway stays"
    r = run("city", "set", "Siversk", "--zone", "Mars/Olympus")
    assert r.exit_code == 2 and "cities.zone" in r.output


def test_services_add_set_remove(db):  # noqa: F811
    assert run("service", "add", "1550", "--name", "Hotline", "--open-on-holidays").exit_code == 0
    svc = {s["number"]: s for s in json.loads(run("service", "list", "--json").output)}["1550"]
    assert svc == {"number": "1550", "name": "Hotline", "closed_on_holidays": False}
    assert run("service", "set", "1550", "--name", "Hot line").exit_code == 0
    assert "Hot line" in run("service", "list", "--csv").output
    r = run("service", "add", "1550", "--name", "Again")
    assert r.exit_code == 2 and "services.number" in r.output, "a duplicate number is a conflict naming the field"
    r = run("service", "add", "12ab", "--name", "X")
    assert r.exit_code == 2 and "services.number" in r.output and "E.164" in r.output
    assert run("service", "remove", "1550").exit_code == 0
    r = run("service", "remove", "102")
    assert r.exit_code == 2 and "services.id" in r.output and "in use" in r.output


def test_centres_errors_name_the_field_and_the_split_shows(db):  # noqa: F811
    for args, field in ((["--number", "+380626000111", "--capacity", "-1"], "centres.capacity"),
                        (["--number", "not-a-number"], "centres.number"),
                        (["--number", "+380626000111", "--ring-timeout", "0"], "centres.ring_timeout_s")):
        r = run("centre", "add", "siversk-hall", *args)
        assert r.exit_code == 2 and field in r.output, (args, r.output)
    assert run("deny", "add", "+3806260", "--note", "test").exit_code == 0
    r = run("centre", "add", "siversk-hall", "--number", "+380626000111")
    assert r.exit_code == 2 and "centres.number" in r.output and "+3806260" in r.output
    assert run("deny", "remove", "+3806260").exit_code == 0
    r = run("centre", "add", "siversk-hall", "--number", "+380626000111", "--capacity", "4", "--name", "Hall")
    assert r.exit_code == 0, r.output
    rows = {c["code"]: c for c in json.loads(run("centre", "list", "--json").output)}
    assert rows["siversk-hall"]["capacity"] == 4 and rows["siversk-hall"]["shares"] == {}, "nobody dials it yet"
    dialled = [c for c in rows.values() if c["shares"]]
    assert dialled and all(sum(c["shares"].values()) <= max(c["capacity"], len(c["shares"])) for c in dialled)
    before = _table(db)["targets"]["mariupol-102"]["max_calls"]
    r = run("centre", "set", "mariupol-102", "--capacity", "40")
    assert r.exit_code == 0, r.output
    split = {c["code"]: c for c in json.loads(run("centre", "list", "--json").output)}["mariupol-102"]
    assert split["capacity"] == 40 and sum(split["shares"].values()) == 40
    after = _table(db)["targets"]["mariupol-102"]["max_calls"]
    assert after == split["shares"]["gw-mariupol-1"] > before, "the edit recompiled the gateways that dial it"
    r = run("centre", "remove", "mariupol-102")
    assert r.exit_code == 2 and "centres.code" in r.output and "in use" in r.output
    assert run("centre", "remove", "siversk-hall").exit_code == 0
    assert run("centre", "set", "nowhere", "--capacity", "1").exit_code == 2


def test_deny_prefix_is_compiled_into_every_table(db):  # noqa: F811
    assert run("deny", "add", "+99", "--note", "test prefix").exit_code == 0
    assert "+99" in _table(db)["deny"]
    r = run("deny", "add", "7")
    assert r.exit_code == 2 and "deny-prefixes.prefix" in r.output
    assert [d["prefix"] for d in json.loads(run("deny", "list", "--json").output)].count("+99") == 1
    assert run("deny", "remove", "+99").exit_code == 0
    assert "+99" not in _table(db)["deny"]


def test_holidays_in_calendars(db):  # noqa: F811
    assert run("holiday", "add", "2026-07-21", "--calendar", "Mariupol").exit_code == 0
    assert run("holiday", "add", "2026-01-01").exit_code == 0
    cals = {c["calendar"]: c["dates"] for c in json.loads(run("calendar", "list", "--json").output)}
    assert "2026-07-21" in cals["Mariupol"] and "2026-01-01" in cals["region"]
    assert "2026-07-21" in sum(_table(db)["calendars"].values(), []), "the city's gateways were recompiled"
    assert "2026-07-21" not in sum(_table(db, "gw-toretsk-1")["calendars"].values(), [])
    r = run("holiday", "add", "2026-02-30", "--calendar", "Mariupol")
    assert r.exit_code == 2 and "holidays.date" in r.output
    r = run("holiday", "add", "2026-03-01", "--calendar", "Atlantis")
    assert r.exit_code == 2 and "holidays.calendar" in r.output
    r = run("holiday", "add", "2026-07-21", "--calendar", "Mariupol")
    assert r.exit_code == 2 and "holidays.date" in r.output, "the same day twice"
    assert "2026-07-21" in run("holiday", "list", "--csv").output
    assert run("holiday", "remove", "2026-07-21", "--calendar", "Mariupol").exit_code == 0
    assert run("holiday", "remove", "2026-07-21", "--calendar", "Mariupol").exit_code == 2
