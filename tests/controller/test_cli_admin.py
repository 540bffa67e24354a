"""The admin commands (gateway, route, rollout, report) on a seeded SQLite database."""

import csv
import hashlib
import io
import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from controller import reference
from controller.cli import app
from controller.db import Database
from controller.ingest.records import write_batch
from controller.models import CallHour, Gateway, Record, RolloutTarget, SecretAudit
from controller.rollouts import start_rollout
from controller.settings import get_settings
from protocols import messages

runner = CliRunner()
ENV = {"COLUMNS": "250"}
DAY = 1469404800  # 2016-07-25 00:00 UTC


@pytest.fixture
def db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'citygate.db'}"
    monkeypatch.setenv("CITYGATE_DATABASE_URL", url)
    monkeypatch.setenv("CITYGATE_BROKER", "embedded")
    get_settings.cache_clear()
    database = Database(url)
    database.upgrade()
    with database.session() as s:
        reference.seed(s)
    yield database
    get_settings.cache_clear()


def run(*args):
    return runner.invoke(app, list(args), env=ENV)


def test_gateway_add_list_show_bundle(db):
    result = run("gateway", "add", "gw-pokrovsk-1", "--city", "Kramatorsk", "--profile", "esp32-wrover-4gsm",
                 "--port", "gsm1=102", "--port", "gsm3=505", "--out", "gsm2")
    assert result.exit_code == 0, result.output
    with db.session() as s:
        gw = s.get(Gateway, "gw-pokrovsk-1")
        key = gw.key_hex
        assert gw.profile == "esp32-wrover-4gsm" and gw.out_ports == ["gsm2"]
        assert {link.port: link.service.number for link in gw.services} == {"gsm1": "102", "gsm3": "505"}
    assert key in result.output and "MQTT password" in result.output
    with db.session() as s:
        trail = [(a.gateway_id, a.action, a.actor[:4]) for a in s.scalars(select(SecretAudit))]
    assert trail == [("gw-pokrovsk-1", "register", "cli:")]  # the hand-out is on the secret audit

    result = run("gateway", "list")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "gw-pokrovsk-1" in line)
    cells = [c.strip() for c in line.split("│")[1:-1]]
    assert cells[:5] == ["gw-pokrovsk-1", "Kramatorsk", "no", "never", "1"]  # compiled version 1 at registration
    assert all(gid in result.output for gid in reference.CITIES)
    assert key not in result.output

    result = run("gateway", "show", "gw-pokrovsk-1")
    assert result.exit_code == 0, result.output
    assert "esp32-wrover-4gsm" in result.output and "gsm3" in result.output and "505" in result.output

    result = runner.invoke(app, ["gateway", "bundle", "gw-pokrovsk-1", "--broker", "mqtt://10.0.0.5:1883"], env=ENV)
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)
    assert config == {"id": "gw-pokrovsk-1", "broker": "mqtt://10.0.0.5:1883", "user": "gw-pokrovsk-1",
                      "profile": "esp32-wrover-4gsm"}  # no secret: reading it again gives nobody the key
    assert "--rotate" in result.stderr


def test_gateway_bundle_rotate_hands_out_new_secrets_once_and_audits(db):
    with db.session() as s:
        old = s.get(Gateway, "gw-toretsk-1").key_hex
    result = runner.invoke(app, ["gateway", "bundle", "gw-toretsk-1", "--rotate", "--broker", "mqtt://10.0.0.5:1883"],
                           env=ENV)
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)
    assert set(config) == {"id", "broker", "user", "profile", "key", "password"} and config["key"] != old
    with db.session() as s:
        gw = s.get(Gateway, "gw-toretsk-1")
        assert gw.key_hex == config["key"]
        assert gw.password_sha256 == hashlib.sha256(config["password"].encode()).hexdigest()
        trail = [(a.gateway_id, a.action, a.actor) for a in s.scalars(select(SecretAudit))]
    assert trail == [("gw-toretsk-1", "bundle", trail[0][2])] and trail[0][2].startswith("cli:")
    again = json.loads(runner.invoke(app, ["gateway", "bundle", "gw-toretsk-1", "--broker", "mqtt://10.0.0.5:1883"],
                                      env=ENV).stdout)
    assert "key" not in again and "password" not in again


def test_gateway_list_and_show_read_a_state_of_the_wrong_types(db):
    with db.session() as s:
        gw = s.get(Gateway, "gw-kramatorsk-1")
        gw.state = {"online": True, "outbox": "lots", "heap_min_free": [1],
                    "ports": {"gsm1": {"kind": "gsm", "csq": "strong"}, "gsm3": "up"}}
        gw.last_seen = 2**40  # no date: shown as the number
    result = run("gateway", "list")
    assert result.exit_code == 0, result.output
    assert "gw-kramatorsk-1" in result.output and "lots" not in result.output
    result = run("gateway", "show", "gw-kramatorsk-1")
    assert result.exit_code == 0, result.output
    assert str(2**40) in result.output and "strong" not in result.output


def test_report_calls_shows_calls_whose_start_is_no_date(db):
    with db.session() as s:
        for seq, at in enumerate((2**40, -(2**40)), 1):
            s.add(Record(gateway_id="gw-toretsk-1", store_id="odd", seq=seq, kind="call", at=at, route="police-102",
                         outcome="answered", target="mariupol-102", talk_s=10, data={}))
            s.add(CallHour(gateway_id="gw-toretsk-1", hour=at // 3600 * 3600, route="police-102",
                           target="mariupol-102", offered=1, answered=1, talk_s=10))
    for extra in ([], ["--csv"], ["--interval", "month"], ["--from", "1"]):
        result = run("report", "calls", "--group", "gateway", *extra)
        assert result.exit_code == 0, (extra, result.output)
        assert "gw-toretsk-1" in result.output


def test_gateway_errors_name_what_to_fix(db):
    result = run("gateway", "add", "gw-mariupol-1", "--city", "Mariupol")
    assert result.exit_code == 2 and "gateways.id" in result.output and "already registered" in result.output
    result = run("gateway", "add", "gw-new-1", "--city", "Atlantis")
    assert result.exit_code == 2 and "gateways.city" in result.output and "Atlantis" in result.output
    result = run("gateway", "add", "GW!", "--city", "Mariupol")
    assert result.exit_code == 2 and "gateways.id" in result.output
    result = run("gateway", "add", "citygate-controller", "--city", "Mariupol")  # the controller's MQTT account
    assert result.exit_code == 2 and "gateways.id" in result.output and "reserved" in result.output
    result = run("gateway", "add", "gw-new-1", "--city", "Mariupol", "--port", "gsm1:102")
    assert result.exit_code == 2 and "--port" in result.output
    result = run("gateway", "add", "gw-new-1", "--city", "Mariupol", "--port", "gsm1=999")
    assert result.exit_code == 2 and "gateways.services.gsm1" in result.output
    result = run("gateway", "show", "gw-nowhere")
    assert result.exit_code == 2 and "gw-nowhere" in result.output
    result = run("gateway", "bundle", "gw-mariupol-1", "--broker", "http://x")
    assert result.exit_code == 2 and "broker" in result.output
    with db.session() as s:
        assert s.get(Gateway, "gw-new-1") is None and s.get(Gateway, "citygate-controller") is None


def test_route_add_compiles_the_gateways_it_reaches(db):
    result = run("gateway", "list")
    assert result.exit_code == 0
    result = run("route", "add", "--city", "Sloviansk", "--service", "505", "--name", "info-505-weekend",
                 "--target", "info-505", "--target", "mariupol-reserve", "--hours", "67,10:00,14:00",
                 "--fallback", "forward:mariupol-102", "--after-hours", "reject",
                 "--from", "2016-08-01T00:00", "--until", "2016-09-01T00:00+03:00")
    assert result.exit_code == 0, result.output
    assert "gw-sloviansk-1" in result.output and "gateways recompiled" in result.output
    with db.session() as s:
        from controller.compiler import latest_table

        doc = json.loads(latest_table(s, "gw-sloviansk-1").body)
        route = next(r for r in doc["routes"] if r["id"] == "info-505-weekend")
        assert route["targets"] == ["info-505", "mariupol-reserve"] and route["port"] == "gsm3"
        assert route["hours"] == [{"days": "67", "start": "10:00", "end": "14:00"}]
        assert route["fallback"] == {"action": "forward", "target": "mariupol-102"}
        assert route["after_hours"] == {"action": "reject"}
        assert route["from"] == 1470009600 and route["until"] == 1472677200
        assert latest_table(s, "gw-mariupol-1") is None  # other cities untouched
    result = run("route", "list", "--city", "Sloviansk")
    assert result.exit_code == 0, result.output
    assert "info-505-weekend" in result.output and "67 10:00-14:00" in result.output
    assert "Mariupol" not in result.output


@pytest.mark.parametrize("args, field", [
    (["--target", "info-505", "--hours", "1234567,09:00,25:00"], "routes.hours[0].end"),
    (["--target", "nowhere-centre"], "routes.targets[0]"),
    (["--target", "info-505", "--fallback", "forward:nowhere"], "routes.fallback.target"),
    (["--target", "info-505", "--fallback", "explode"], "routes.fallback"),
    (["--target", "info-505", "--hours", "09:00-19:00"], "--hours[0]"),
    (["--target", "info-505", "--from", "yesterday"], "--from"),
    (["--target", "info-505", "--name", "bad name!"], "routes.name"),
])
def test_route_add_refuses_a_bad_route_naming_the_field(db, args, field):
    base = ["route", "add", "--city", "Sloviansk", "--service", "505"]
    if "--name" not in args:
        base += ["--name", "info-505-extra"]
    result = run(*base, *args)
    assert result.exit_code == 2, result.output
    assert field in result.output
    listed = run("route", "list", "--city", "Sloviansk").output
    assert "info-505-extra" not in listed


def test_route_add_unknown_city_or_service(db):
    result = run("route", "add", "--city", "Atlantis", "--service", "505", "--name", "x", "--target", "info-505")
    assert result.exit_code == 2 and "--city" in result.output
    result = run("route", "add", "--city", "Sloviansk", "--service", "999", "--name", "x", "--target", "info-505")
    assert result.exit_code == 2 and "--service" in result.output
    result = run("route", "add", "--city", "Sloviansk", "--service", "505", "--name", "info-505",
                 "--target", "info-505")
    assert result.exit_code == 2 and "routes.name" in result.output and "already" in result.output


def _call(seq, at, outcome, route="police-102", target="mariupol-102", talk=0):
    return messages.call_record(seq, at, "gsm1", "+380671234567", route, outcome, target, 1, 5, talk, "ok")


def test_report_calls_table_and_csv(db):
    """The records go in as the bridge stores them (which also keeps the hourly aggregates)."""
    with db.session() as s:
        write_batch(s, [("gw-mariupol-1", "events", messages.events("s1", [
                            _call(1, DAY + 3600, "answered", talk=60), _call(2, DAY + 7200, "answered", talk=30),
                            _call(3, DAY + 7300, "abandoned")])),
                        ("gw-toretsk-1", "events", messages.events("s1", [
                            _call(1, DAY + 86400 + 10, "callback", target=None),
                            _call(2, DAY - 10, "answered", talk=5)]))], {"records": 0, "duplicates": 0})
    result = run("report", "calls", "--group", "city", "--interval", "day", "--from", "2016-07-25",
                 "--to", "2016-07-27", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(r["city"], r["period"], r["offered"], r["answered"]) for r in rows] == [
        ("Mariupol", "2016-07-25", "3", "2"), ("Toretsk", "2016-07-26", "1", "0")]
    assert rows[0]["answer_ratio"] == "0.6667" and rows[0]["avg_talk_s"] == "45.0" and rows[1]["callback"] == "1"

    result = run("report", "calls", "--group", "gateway", "--interval", "month")
    assert result.exit_code == 0, result.output
    assert "totals per gateway" in result.output and "2016-07" in result.output
    line = next(line for line in result.output.splitlines() if "gw-toretsk-1" in line and "2016-07" in line)
    assert [c.strip() for c in line.split("│")[1:5]] == ["gw-toretsk-1", "2016-07", "2", "1"]

    result = run("report", "calls", "--group", "centre")
    assert result.exit_code == 2 and "--group" in result.output
    result = run("report", "calls", "--from", "last week")
    assert result.exit_code == 2 and "from" in result.output


def test_rollout_status(db):
    with db.session() as s:
        rollout = start_rollout(s, bridge=None, gateways=["gw-mariupol-1", "gw-toretsk-1"], canary=["gw-toretsk-1"])
        rid = rollout.id
        s.get(Gateway, "gw-toretsk-1").online = True
        target = s.query(RolloutTarget).filter_by(rollout_id=rid, gateway_id="gw-toretsk-1").one()
        target.status, target.reason = "rejected", "bad signature"
    result = run("rollout", "status", str(rid))
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[1:-1]]
            for line in result.output.splitlines() if line.startswith("│ gw-")}
    assert rows["gw-toretsk-1"][:4] == ["gw-toretsk-1", "canary", "1", "rejected"]
    assert "bad signature" in rows["gw-toretsk-1"]
    assert rows["gw-mariupol-1"][:4] == ["gw-mariupol-1", "rest", "1", "offline"]
    assert f"rollout {rid}: canary" in result.output

    result = run("rollout", "status")
    assert result.exit_code == 0, result.output
    assert "recent rollouts" in result.output and "gw-toretsk-1" in result.output
    result = run("rollout", "status", "99")
    assert result.exit_code == 2 and "no rollout 99" in result.output


def test_rollout_start_explains_the_broker_it_needs(db):
    result = run("rollout", "start", "--canary", "gw-toretsk-1")
    assert result.exit_code == 2
    assert "embedded" in result.output and "citygate serve" in result.output
    result = run("rollout", "start", "--broker", "mqtt://127.0.0.1:1")
    assert result.exit_code == 2 and "cannot reach 127.0.0.1:1" in result.output
    with db.session() as s:
        from controller.models import Rollout

        assert s.query(Rollout).count() == 0


def test_gateway_bundle_never_guesses_an_embedded_brokers_address(db):
    """It used to write mqtt://127.0.0.1:1883, where no embedded broker listens."""
    result = run("gateway", "bundle", "gw-toretsk-1")
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "embedded one of a running controller" in out and "--broker" in out and "CITYGATE_BROKER" in out


LISTINGS = [(("gateway", "list"), "gw-kramatorsk-1"), (("route", "list"), "old-donetsk-line"),
            (("report", "calls", "--group", "gateway"), "gw-kramatorsk-1")]


@pytest.mark.parametrize(("listing", "ident"), LISTINGS, ids=[" ".join(x[0]) for x in LISTINGS])
def test_listings_stay_readable_at_80_columns_and_have_csv_and_json(db, listing, ident):
    with db.session() as s:
        s.add(Record(gateway_id="gw-kramatorsk-1", store_id="s", seq=1, kind="call", at=DAY + 3600, route="police-102",
                     outcome="answered", target="mariupol-102", talk_s=10, data={}))
        s.add(CallHour(gateway_id="gw-kramatorsk-1", hour=DAY + 3600, route="police-102", target="mariupol-102",
                       offered=1, answered=1, talk_s=10))
    narrow = runner.invoke(app, list(listing), env={"COLUMNS": "80"})
    assert narrow.exit_code == 0, narrow.output
    assert max(len(line) for line in narrow.output.splitlines()) <= 80
    assert ident in narrow.output, "ids are never cut or folded"
    for word in ("offered", "answered") if listing[0] == "report" else ("city",):
        assert word in narrow.output.replace(":", " ").split(), f"the heading {word} is whole"
    as_json = runner.invoke(app, [*listing, "--json"], env={"COLUMNS": "80"})
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    as_csv = runner.invoke(app, [*listing, "--csv"], env={"COLUMNS": "80"})
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(as_csv.stdout.splitlines()))
    assert rows and len(rows) == len(data if isinstance(data, list) else data["rows"])
    assert ident in as_csv.stdout


def test_gateway_add_writes_the_whole_bundle_for_the_board(db, tmp_path):
    path = tmp_path / "config.json"
    result = run("gateway", "add", "gw-toretsk-7", "--city", "Toretsk", "--port", "gsm1=102", "--out", "gsm2",
                 "--bundle", str(path), "--broker", "mqtt://10.0.0.5:1883")
    assert result.exit_code == 0, result.output
    config = json.loads(path.read_text())
    assert set(config) == {"id", "broker", "user", "profile", "key", "password"}
    assert config["broker"] == "mqtt://10.0.0.5:1883" and (path.stat().st_mode & 0o777) == 0o600
    with db.session() as s:
        assert s.get(Gateway, "gw-toretsk-7").key_hex == config["key"]
    result = run("gateway", "add", "gw-toretsk-8", "--city", "Toretsk", "--bundle", str(tmp_path / "c2.json"))
    assert result.exit_code == 2 and "embedded" in result.output, "no broker address: refused before registering"
    with db.session() as s:
        assert s.get(Gateway, "gw-toretsk-8") is None
