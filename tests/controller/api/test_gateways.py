"""The fleet: registration (secrets shown once), state, key rotation, provisioning bundle, preview, commands."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache

import pytest
from sqlalchemy import select

from controller.brokers.access import CONTROLLER_USER
from controller.models import Gateway, TableVersion
from controller.reference import SWITCH_OVER, table
from protocols import routing
from tests.controller.api.conftest import SETTINGS, fields

API = "/api/v1"
# sorts after gw-toretsk-1: without call history the last lines of a shared centre go to the smaller gateway id
# (controller.capacity), so the reference gateway previewed below keeps its lines
NEW = {"id": "gw-toretsk-2", "city": "Toretsk", "profile": "esp32-4gsm", "services": {"gsm1": "102", "fxo1": "505"},
       "out_ports": ["gsm2", "gsm3"], "ports": ["gsm4"]}


@pytest.fixture(scope="module")
def registered(client, technician):
    r = client.post(f"{API}/gateways", json=NEW, headers=technician)
    assert r.status_code == 201, r.text
    assert r.headers["Cache-Control"] == "no-store"
    return r.json()


def test_registration_returns_the_secrets_once(db, client, technician, viewer, admin, registered):
    key, password = registered["key"], registered["password"]
    assert len(bytes.fromhex(key)) == 32 and len(password) >= 32 and registered["user"] == NEW["id"]
    gw = registered["gateway"]
    assert gw["id"] == NEW["id"] and gw["city"] == "Toretsk" and gw["profile"] == "esp32-4gsm"
    assert [p["name"] for p in gw["ports"]] == ["fxo1", "gsm1", "gsm2", "gsm3", "gsm4"]
    assert {p["name"]: p["service"] for p in gw["ports"]}["gsm1"] == "102"
    assert gw["compiled_version"] == 1 and gw["desired_version"] is None and gw["applied_version"] is None
    assert gw["online"] is False
    for who in (technician, viewer, admin):
        shown = client.get(f"{API}/gateways/{NEW['id']}", headers=who).text
        listed = client.get(f"{API}/gateways", headers=who).text
        for secret in (key, password):
            assert secret not in shown and secret not in listed
    with db.session() as s:
        row = s.get(Gateway, NEW["id"])
        assert row.key_hex == key  # the controller signs tables with it
        assert row.password_sha256 == hashlib.sha256(password.encode()).hexdigest()
        assert password not in json.dumps(row.state)
        body = json.loads(s.scalars(select(TableVersion).where(TableVersion.gateway_id == NEW["id"])).one().body)
    assert sorted(r["port"] for r in body["routes"]) == ["fxo1", "gsm1", "gsm1"]
    assert all(t["via"] == ["gsm2", "gsm3"] for t in body["targets"].values())


def test_bundle_is_the_device_config_without_secrets(client, technician, viewer, operator, admin, registered):
    """Finding 9: the bundle read again holds no key and no password (any technician could impersonate)."""
    for who in (technician, admin):
        r = client.get(f"{API}/gateways/{NEW['id']}/bundle", headers=who)
        assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
        assert r.json() == {"id": NEW["id"], "broker": SETTINGS.broker, "user": NEW["id"], "profile": "esp32-4gsm"}
        assert registered["key"] not in r.text and registered["password"] not in r.text
    r = client.get(f"{API}/gateways/{NEW['id']}/bundle", params={"broker": "mqtt://field.example:1884"},
                   headers=technician)
    assert r.json()["broker"] == "mqtt://field.example:1884"
    r = client.get(f"{API}/gateways/{NEW['id']}/bundle", params={"broker": "mqtts://field.example:8883"},
                   headers=technician)  # the board would check the broker against nothing: refused by name
    assert r.status_code == 422 and fields(r) == ["broker_ca"], r.text  # with a CA: tests/controller/test_bundle_ca.py
    r = client.get(f"{API}/gateways/{NEW['id']}/bundle", params={"broker": "http://x"}, headers=technician)
    assert r.status_code == 422 and fields(r) == ["broker"]
    for who in (viewer, operator):
        assert client.get(f"{API}/gateways/{NEW['id']}/bundle", headers=who).status_code == 403
        assert client.get(f"{API}/gateways/{NEW['id']}/bundle", params={"rotate": "true"},
                          headers=who).status_code == 403


def _audit(client, admin, gateway) -> list[tuple[str, str]]:
    r = client.get(f"{API}/audit", params={"gateway": gateway}, headers=admin)
    assert r.status_code == 200, r.text
    return [(row["action"], row["actor"]) for row in r.json()["data"]]


def test_bundle_with_rotate_hands_out_new_secrets_once_and_audits(db, client, technician, admin, tokens,
                                                                  registered):
    before = len(_audit(client, admin, NEW["id"]))
    r = client.get(f"{API}/gateways/{NEW['id']}/bundle", params={"rotate": "true", "broker": "mqtt://10.0.0.9:1883"},
                   headers=technician)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    config = r.json()
    assert set(config) == {"id", "broker", "user", "profile", "key", "password"}
    assert config["broker"] == "mqtt://10.0.0.9:1883" and config["key"] != registered["key"]
    with db.session() as s:
        row = s.get(Gateway, NEW["id"])
        assert row.key_hex == config["key"]  # the next table is signed with it
        assert row.password_sha256 == hashlib.sha256(config["password"].encode()).hexdigest()
    again = client.get(f"{API}/gateways/{NEW['id']}/bundle", headers=technician)
    assert config["key"] not in again.text and config["password"] not in again.text
    trail = _audit(client, admin, NEW["id"])
    assert len(trail) == before + 1 and trail[0][0] == "bundle" and trail[0][1].startswith("technician-")


def test_bundle_rotate_with_a_bad_broker_rotates_nothing(db, client, technician, admin, registered):
    with db.session() as s:
        key = s.get(Gateway, NEW["id"]).key_hex
    before = _audit(client, admin, NEW["id"])
    r = client.get(f"{API}/gateways/{NEW['id']}/bundle", params={"rotate": "true", "broker": "http://x"},
                   headers=technician)
    assert r.status_code == 422 and fields(r) == ["broker"]
    with db.session() as s:
        assert s.get(Gateway, NEW["id"]).key_hex == key
    assert _audit(client, admin, NEW["id"]) == before


def test_rotate_key_changes_key_and_password(db, client, technician, admin, registered):
    r = client.post(f"{API}/gateways/{NEW['id']}/rotate-key", headers=technician)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    new = r.json()
    assert new["key"] != registered["key"] and new["password"] != registered["password"]
    bundle = client.get(f"{API}/gateways/{NEW['id']}/bundle", headers=technician).json()
    assert "key" not in bundle and "password" not in bundle
    with db.session() as s:
        row = s.get(Gateway, NEW["id"])
        assert row.key_hex == new["key"]
        assert row.password_sha256 == hashlib.sha256(new["password"].encode()).hexdigest()
    assert _audit(client, admin, NEW["id"])[0][0] == "rotate-key"
    tv = client.post(f"{API}/gateways/{NEW['id']}/preview", json={"port": "gsm1"}, headers=technician).json()
    assert tv["table_version"] == 1  # the table itself is unchanged; it is signed with the new key when published


def test_registration_is_audited_and_the_audit_is_for_admins(client, admin, technician, operator, viewer,
                                                             registered):
    trail = client.get(f"{API}/audit", headers=admin).json()
    mine = [row for row in trail["data"] if row["gateway_id"] == NEW["id"]]
    assert mine[-1]["action"] == "register" and mine[-1]["actor"].startswith("technician-")
    assert all(set(row) == {"id", "at", "actor", "gateway_id", "action"} for row in trail["data"])
    assert registered["key"] not in str(trail) and registered["password"] not in str(trail)
    for who in (technician, operator, viewer):
        r = client.get(f"{API}/audit", headers=who)
        assert r.status_code == 403 and fields(r) == ["role"]


@pytest.mark.parametrize(("body", "field"), [
    ({**NEW, "id": "GW_1"}, "gateways.id"),
    ({**NEW, "id": "gw-x1", "city": "Atlantis"}, "gateways.city"),
    ({**NEW, "id": "gw-x1", "services": {"gsm1": "999"}}, "gateways.services.gsm1"),
    ({**NEW, "id": "gw-x1", "services": {"GSM1": "102"}}, "gateways.services.GSM1[key]"),
    ({**NEW, "id": "gw-x1", "out_ports": ["gsm 2"]}, "gateways.out_ports[0]"),
    ({**NEW, "id": "gw-x1", "out_ports": []}, "gateways.out_ports"),
    ({"id": "gw-x1"}, "gateways.city"),
])
def test_bad_registration_names_the_field(client, technician, body, field):
    r = client.post(f"{API}/gateways", json=body, headers=technician)
    assert r.status_code == 422, r.text
    assert fields(r) == [field], r.json()
    assert client.get(f"{API}/gateways/gw-x1", headers=technician).status_code == 404


def test_registration_refuses_the_controllers_broker_account(db, client, technician):
    """The controller signs in to the broker as citygate-controller: no gateway may take that name."""
    r = client.post(f"{API}/gateways", json={**NEW, "id": CONTROLLER_USER}, headers=technician)
    assert r.status_code == 422, r.text
    assert fields(r) == ["gateways.id"] and "reserved" in r.text
    with db.session() as s:
        assert s.get(Gateway, CONTROLLER_USER) is None


def test_duplicate_registration_conflicts(client, technician, registered):
    r = client.post(f"{API}/gateways", json=NEW, headers=technician)
    assert r.status_code == 409 and fields(r) == ["gateways.id"]


def test_gateway_shows_its_last_state(db, client, viewer):
    state = {"online": True, "fw": "1.4.0", "table_version": 1, "heap_free": 101234, "heap_min_free": 88000,
             "outbox": 7, "uptime_s": 3600, "ports": {"gsm1": {"kind": "gsm", "ready": True, "reg": 1, "csq": 21},
                                                      "gsm2": {"kind": "gsm", "ready": True, "reg": 1, "csq": 9},
                                                      "fxo1": {"kind": "fxo", "ready": False}}}
    with db.session() as s:
        gw = s.get(Gateway, "gw-kramatorsk-1")
        gw.online, gw.last_seen, gw.state, gw.applied_version = True, 1469000100, state, 1
        gw.desired_version = 1
        gw.last_reject = "version: 1 is not newer than the running version 1"
    r = client.get(f"{API}/gateways/gw-kramatorsk-1", headers=viewer).json()
    assert r["online"] is True and r["last_seen"] == 1469000100
    assert r["desired_version"] == 1 and r["applied_version"] == 1 and r["in_sync"] is True
    assert r["signal"] == {"gsm1": 21, "gsm2": 9}
    assert (r["heap_free"], r["heap_min_free"], r["outbox"], r["fw"], r["uptime_s"]) == (101234, 88000, 7, "1.4.0",
                                                                                            3600)
    assert r["last_reject"].startswith("version:")
    ports = {p["name"]: p for p in r["ports"]}
    assert ports["fxo1"] == {"name": "fxo1", "service": None, "out": False, "kind": "fxo", "ready": False}
    assert ports["gsm3"]["service"] == "505"
    assert ports["gsm2"]["out"] is True and ports["gsm2"]["csq"] == 9
    listed = client.get(f"{API}/gateways", params={"online": True}, headers=viewer).json()
    assert [g["id"] for g in listed["data"]] == ["gw-kramatorsk-1"] and listed["count"] == 1
    by_city = client.get(f"{API}/gateways", params={"city": "Mariupol"}, headers=viewer).json()
    assert [g["id"] for g in by_city["data"]] == ["gw-mariupol-1"]


def test_patch_gateway_recompiles_and_checks(client, operator, technician):
    r = client.patch(f"{API}/gateways/gw-sloviansk-1", json={"services": {"gsm1": "102"}}, headers=operator)
    assert r.status_code == 200, r.text
    assert [p["name"] for p in r.json()["ports"] if p["service"]] == ["gsm1"]
    assert r.json()["compiled_version"] == 2
    r = client.patch(f"{API}/gateways/gw-sloviansk-1", json={"services": {"gsm1": "102", "gsm4": "102"}},
                     headers=technician)  # one service on two ports: its routes twice in one table
    assert r.status_code == 422 and fields(r) == ["gateways.services"] and "duplicates the id" in r.text
    r = client.patch(f"{API}/gateways/gw-sloviansk-1", json={"city": None}, headers=technician)
    assert r.status_code == 422 and fields(r) == ["gateways.city"]
    r = client.patch(f"{API}/gateways/gw-sloviansk-1", json={"id": "gw-other"}, headers=technician)
    assert r.status_code == 422 and fields(r) == ["gateways.id"]


# ---------------------------------------------------------------- preview


@lru_cache
def reference_table(gateway: str) -> routing.Table:
    return routing.load(table(gateway))


@pytest.mark.parametrize("at", [SWITCH_OVER - 60, SWITCH_OVER, SWITCH_OVER + 86400 * 34 + 3600 * 10])
@pytest.mark.parametrize(("port", "caller"), [("gsm1", "+380624711111"), ("fxo1", "+380501112233"),
                                              ("gsm3", "+380624711111"), ("gsm9", "")])
def test_preview_is_the_shared_decision(client, viewer, at, port, caller):
    r = client.post(f"{API}/gateways/gw-toretsk-1/preview", json={"port": port, "caller": caller, "at": at},
                    headers=viewer)
    assert r.status_code == 200, r.text
    expected = routing.decide(reference_table("gw-toretsk-1"), port, caller, at)
    assert r.json()["decision"] == expected.as_dict()
    assert r.json()["at"] == at and r.json()["gateway"] == "gw-toretsk-1"


def test_preview_of_the_toretsk_switch_over(client, operator):
    def ask(at):
        r = client.post(f"{API}/gateways/gw-toretsk-1/preview", json={"port": "gsm1", "caller": "+380624711111",
                                                                      "at": at}, headers=operator)
        assert r.status_code == 200, r.text
        return r.json()

    before, after = ask(SWITCH_OVER - 1), ask(SWITCH_OVER)
    assert before["decision"] == {"action": "dial", "route": "police-102-local", "targets": ["toretsk-duty"],
                                  "reason": "ok"}
    assert before["local_time"] == "2016-07-20 23:59:59" and before["utc_offset_s"] == 3 * 3600
    assert after["decision"]["route"] == "police-102"
    assert after["decision"]["targets"] == ["mariupol-102", "mariupol-reserve"]
    assert after["numbers"] == {"mariupol-102": "+380629000102", "mariupol-reserve": "+380629000112"}
    assert after["local_time"] == "2016-07-21 00:00:00" and after["weekday"] == 4
    assert ask("2016-07-21T00:00")["at"] == SWITCH_OVER  # no offset: the gateway's local time
    assert ask("2016-07-20T21:00:00Z")["at"] == SWITCH_OVER
    assert ask("2016-07-21T00:00:00+03:00")["at"] == SWITCH_OVER
    assert ask(str(SWITCH_OVER))["at"] == SWITCH_OVER


def test_preview_errors(db, client, viewer):
    r = client.post(f"{API}/gateways/gw-toretsk-1/preview", json={"port": "gsm1", "at": "yesterday"}, headers=viewer)
    assert r.status_code == 422 and fields(r) == ["preview.at"]
    r = client.post(f"{API}/gateways/gw-toretsk-1/preview", json={"caller": "1"}, headers=viewer)
    assert r.status_code == 422 and fields(r) == ["preview.port"]
    r = client.post(f"{API}/gateways/gw-nowhere/preview", json={"port": "gsm1"}, headers=viewer)
    assert r.status_code == 404 and fields(r) == ["gateway_id"]
    with db.session() as s:
        s.add(Gateway(id="gw-blank", city_id=s.get(Gateway, "gw-toretsk-1").city_id, key_hex="00" * 32))
    r = client.post(f"{API}/gateways/gw-blank/preview", json={"port": "gsm1"}, headers=viewer)
    assert r.status_code == 404 and "no compiled table" in r.text


def test_commands_need_the_bridge(client, technician):
    r = client.post(f"{API}/gateways/gw-toretsk-1/commands", json={"op": "selftest"}, headers=technician)
    assert r.status_code == 503 and fields(r) == [None] and "bridge" in r.text
    r = client.post(f"{API}/gateways/gw-nowhere/commands", json={"op": "selftest"}, headers=technician)
    assert r.status_code == 404


def test_delete_gateway_is_for_admins(client, admin, technician, registered):
    assert client.delete(f"{API}/gateways/{NEW['id']}", headers=technician).status_code == 403
    assert client.delete(f"{API}/gateways/{NEW['id']}", headers=admin).status_code == 204
    assert client.get(f"{API}/gateways/{NEW['id']}", headers=admin).status_code == 404
