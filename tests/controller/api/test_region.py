"""Region CRUD round trips, and bad configuration refused with the field and the reason."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from controller.models import Gateway, TableVersion
from tests.controller.api.conftest import fields

API = "/api/v1"


def _versions(db, gateway: str) -> int:
    with db.session() as s:
        return len(s.scalars(select(TableVersion).where(TableVersion.gateway_id == gateway)).all())


def _city(client, headers, name: str) -> dict:
    return next(c for c in client.get(f"{API}/cities", headers=headers).json()["data"] if c["name"] == name)


@pytest.mark.parametrize(("resource", "body", "change"), [
    ("services", {"number": "112", "name": "Emergency"}, {"name": "Emergency, all services"}),
    ("cities", {"name": "Pokrovsk", "zone": "Europe/Kyiv"}, {"zone": "Europe/Warsaw"}),
    ("centres", {"code": "pokrovsk-102", "number": "+380653000102", "capacity": 2}, {"ring_timeout_s": 40}),
    ("deny-prefixes", {"prefix": "+375", "note": "Belarus"}, {"note": "Belarus (all)"}),
    ("holidays", {"city_id": None, "date": "2016-12-25"}, {"date": "2016-12-26"}),
])
def test_crud_round_trip(client, operator, viewer, resource, body, change):
    r = client.post(f"{API}/{resource}", json=body, headers=operator)
    assert r.status_code == 201, r.text
    created = r.json()
    assert {k: created[k] for k in body} == body
    item = f"{API}/{resource}/{created['id']}"
    assert client.get(item, headers=viewer).json() == created
    assert created in client.get(f"{API}/{resource}", headers=viewer).json()["data"]
    again = client.post(f"{API}/{resource}", json=body, headers=operator)
    assert again.status_code == 409 and fields(again)[0].startswith(f"{resource}.")
    r = client.patch(item, json=change, headers=operator)
    assert r.status_code == 200, r.text
    assert r.json() == {**created, **change}
    assert client.get(item, headers=viewer).json() == {**created, **change}
    assert client.delete(item, headers=operator).status_code == 204
    assert client.get(item, headers=viewer).status_code == 404
    assert fields(client.delete(item, headers=operator)) == ["id"]


def test_route_round_trip_recompiles_the_city(db, client, operator, viewer):
    city = _city(client, viewer, "Sloviansk")
    service = next(s for s in client.get(f"{API}/services", headers=viewer).json()["data"] if s["number"] == "505")
    before, other = _versions(db, "gw-sloviansk-1"), _versions(db, "gw-mariupol-1")
    body = {"city_id": city["id"], "service_id": service["id"], "name": "info-505-weekend",
            "targets": ["info-505", "mariupol-reserve"], "hours": [{"days": "67", "start": "10:00", "end": "16:00"}],
            "fallback": {"action": "forward", "target": "mariupol-reserve"}, "valid_from": 1469998800}
    r = client.post(f"{API}/routes", json=body, headers=operator)
    assert r.status_code == 201, r.text
    route = r.json()
    assert {k: route[k] for k in body} == body and route["strategy"] == "sequential"
    assert _versions(db, "gw-sloviansk-1") == before + 1  # compiled: the table changed
    assert _versions(db, "gw-mariupol-1") == other  # another city: untouched
    assert route["after_hours"] == {"action": "next"}, "beside info-505 it yields to it out of its hours"
    hours = [{"days": "67", "start": "08:00", "end": "20:00"}]
    r = client.patch(f"{API}/routes/{route['id']}", json={"strategy": "round_robin", "hours": hours}, headers=operator)
    assert r.status_code == 200 and r.json()["hours"] == hours and r.json()["strategy"] == "round_robin"
    r = client.patch(f"{API}/routes/{route['id']}", json={"hours": None}, headers=operator)
    assert r.status_code == 422, "always open beside info-505, which takes every call: never reached"
    detail = r.json()["detail"][0]
    assert "info-505-weekend is never reached: info-505 takes every call" in detail["reason"], detail
    assert _versions(db, "gw-sloviansk-1") == before + 2
    with db.session() as s:
        assert s.get(Gateway, "gw-sloviansk-1").desired_version is None, "compiled, not published: no rollout yet"
    assert client.delete(f"{API}/routes/{route['id']}", headers=operator).status_code == 204
    assert _versions(db, "gw-sloviansk-1") == before + 3


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"hours": [{"days": "12345", "start": "08:00", "end": "25:00"}]}, "routes.hours[0].end", "not a time of day"),
    ({"hours": [{"days": "1239", "start": "08:00", "end": "18:00"}]}, "routes.hours[0].days", "weekdays"),
    ({"targets": ["mariupol-102", "nowhere-102"]}, "routes.targets[1]", "names no call centre"),
    ({"fallback": {"action": "forward", "target": "nowhere-102"}}, "routes.fallback.target", "no call centre"),
    ({"fallback": {"action": "dial"}}, "routes.fallback.action", "reject, callback or forward"),
    ({"strategy": "random"}, "routes.strategy", "sequential or round_robin"),
    ({"caller": ["+38x"]}, "routes.caller[0]", "caller prefix"),
    ({"valid_from": 1469048400, "valid_until": 1469048400}, "routes.valid_until", "later than from"),
    ({"name": "bad name!"}, "routes.name", "must match"),
    ({"city_id": 999999}, "routes.city_id", "no cities entry"),
    ({"hours": "always"}, "routes.hours", "valid list"),
])
def test_bad_route_is_refused_naming_the_field(db, client, operator, viewer, change, field, reason):
    city = _city(client, viewer, "Kramatorsk")
    police = next(r for r in client.get(f"{API}/routes", headers=viewer).json()["data"]
                  if r["city_id"] == city["id"] and r["name"] == "police-102")
    before = _versions(db, "gw-kramatorsk-1")
    r = client.patch(f"{API}/routes/{police['id']}", json=change, headers=operator)
    assert r.status_code == 422, r.text
    assert fields(r) == [field], r.json()
    assert reason in r.json()["detail"][0]["reason"]
    new = {k: v for k, v in police.items() if k != "id"} | change
    r = client.post(f"{API}/routes", json=new | {"name": change.get("name", "police-102-copy")}, headers=operator)
    assert r.status_code == 422 and fields(r) == [field], r.text
    assert client.get(f"{API}/routes/{police['id']}", headers=viewer).json() == police  # rolled back
    assert _versions(db, "gw-kramatorsk-1") == before


def test_validation_errors_name_the_field(client, operator):
    r = client.post(f"{API}/routes", json={"name": "x", "targets": "mariupol-102"}, headers=operator)
    assert r.status_code == 422
    assert set(fields(r)) == {"routes.city_id", "routes.service_id", "routes.targets"}
    r = client.post(f"{API}/centres", json={"code": "c1", "number": "0629000102x"}, headers=operator)
    assert fields(r) == ["centres.number"] and r.json()["detail"][0]["reason"].startswith("must be E.164")
    r = client.post(f"{API}/centres", json={"code": "c1", "number": "+380629000102", "colour": "red"},
                    headers=operator)
    assert fields(r) == ["centres.colour"]
    r = client.post(f"{API}/deny-prefixes", json={"prefix": "7"}, headers=operator)
    assert fields(r) == ["deny-prefixes.prefix"]
    assert fields(client.post(f"{API}/holidays", json={"date": "2016-02-30"}, headers=operator)) == ["holidays.date"]
    r = client.post(f"{API}/cities", json={"name": "Atlantis", "zone": "Atlantic/Atlantis"}, headers=operator)
    assert r.status_code == 422 and fields(r) == ["cities.zone"] and "unknown time zone" in r.text
    assert fields(client.get(f"{API}/cities/abc", headers=operator)) == ["item_id"]
    assert fields(client.patch(f"{API}/cities/1", json={"name": None}, headers=operator)) == ["cities.name"]


def test_in_use_rows_cannot_be_deleted_or_renamed(client, operator, viewer):
    centre = next(c for c in client.get(f"{API}/centres", headers=viewer).json()["data"] if c["code"] == "info-505")
    r = client.delete(f"{API}/centres/{centre['id']}", headers=operator)
    assert r.status_code == 409 and fields(r) == ["centres.code"] and "route info-505" in r.text
    r = client.patch(f"{API}/centres/{centre['id']}", json={"code": "info-0505"}, headers=operator)
    assert r.status_code == 409
    city = _city(client, viewer, "Toretsk")
    r = client.delete(f"{API}/cities/{city['id']}", headers=operator)
    assert r.status_code == 409 and "gateway gw-toretsk-1" in r.text
    service = client.get(f"{API}/services", headers=viewer).json()["data"][0]
    assert client.delete(f"{API}/services/{service['id']}", headers=operator).status_code == 409


def test_centre_and_deny_changes_recompile_the_gateways_using_them(db, client, operator, viewer):
    centre = next(c for c in client.get(f"{API}/centres", headers=viewer).json()["data"] if c["code"] == "info-505")
    before = {gw: _versions(db, gw) for gw in ("gw-mariupol-1", "gw-toretsk-1")}
    r = client.patch(f"{API}/centres/{centre['id']}", json={"capacity": 8}, headers=operator)
    assert r.status_code == 200 and r.json()["capacity"] == 8
    assert {gw: _versions(db, gw) for gw in before} == {gw: n + 1 for gw, n in before.items()}
    with db.session() as s:  # its 8 lines shared by the 4 gateways that dial it
        latest = s.scalars(select(TableVersion).where(TableVersion.gateway_id == "gw-toretsk-1")
                           .order_by(TableVersion.version.desc())).first()
        assert json.loads(latest.body)["targets"]["info-505"]["max_calls"] == 2
    r = client.post(f"{API}/deny-prefixes", json={"prefix": "+380629000505", "note": "test"}, headers=operator)
    assert r.status_code == 201
    with db.session() as s:
        latest = s.scalars(select(TableVersion).where(TableVersion.gateway_id == "gw-toretsk-1")
                           .order_by(TableVersion.version.desc())).first()
        assert "+380629000505" in latest.body
    client.delete(f"{API}/deny-prefixes/{r.json()['id']}", headers=operator)


def test_region_wide_and_city_holidays(client, operator, viewer):
    city = _city(client, viewer, "Mariupol")
    r = client.post(f"{API}/holidays", json={"city_id": city["id"], "date": "2016-09-11"}, headers=operator)
    assert r.status_code == 201
    r2 = client.post(f"{API}/holidays", json={"city_id": None, "date": "2016-09-11"}, headers=operator)
    assert r2.status_code == 201  # a region-wide day is another row
    assert client.post(f"{API}/holidays", json={"city_id": 999999, "date": "2016-09-12"},
                       headers=operator).json()["detail"][0]["field"] == "holidays.city_id"
    dates = [h["date"] for h in client.get(f"{API}/holidays", headers=viewer).json()["data"]]
    assert dates == sorted(dates)


def test_a_centre_whose_number_is_denied_is_refused_naming_the_field(client, operator):
    r = client.post(f"{API}/centres", json={"code": "moscow-102", "number": "+74950000102"}, headers=operator)
    assert r.status_code == 422, r.text
    d = r.json()["detail"][0]
    assert d["field"] == "centres.number" and "denied by the prefix +7" in d["reason"]
