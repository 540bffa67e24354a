"""Menus (issue 11 §2, controller side): configured through the API, refused naming the field, compiled into
the tables' `menus` and the routes' `menu`; the call record's `option` is stored and reported per key."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from controller.compiler import latest_table
from controller.ingest.records import write_batch
from controller.models import Record, Service
from protocols import messages, routing
from tests.controller.api.conftest import fields

API = "/api/v1"
GW = "gw-mariupol-1"
MONDAY_NOON = 1470052800  # 2016-08-01 12:00 UTC: 15:00 in Kyiv, the 505 line is open


@pytest.fixture(scope="module")
def info_service(db) -> int:
    with db.session() as s:
        return s.scalars(select(Service.id).where(Service.number == "505")).one()


def menu_body(service_id: int, **over) -> dict:
    return {"name": "info-menu", "service_id": service_id, "prompt": "info-menu-v1", "default_option": "0",
            "options": {"0": {"label": "operator", "targets": ["info-505"]},
                        "2": {"label": "police", "targets": ["mariupol-102", "mariupol-reserve"],
                              "fallback": {"action": "callback"}}}} | over


def table(db, gw: str = GW) -> dict:
    with db.session() as s:
        return json.loads(latest_table(s, gw).body)


def test_a_menu_is_compiled_into_every_table_its_service_reaches(client, db, operator, viewer, info_service):
    assert client.post(f"{API}/menus", json=menu_body(info_service), headers=viewer).status_code == 403
    r = client.post(f"{API}/menus", json=menu_body(info_service), headers=operator)
    assert r.status_code == 201, r.text
    menu = r.json()
    assert menu["options"]["2"]["targets"] == ["mariupol-102", "mariupol-reserve"] and menu["timeout_s"] == 8
    doc = table(db)
    assert doc["menus"] == {"info-menu": {"prompt": "info-menu-v1", "timeout_s": 8, "tries": 2, "default": "0",
                                          "options": {"0": {"targets": ["info-505"], "strategy": "sequential"},
                                                      "2": {"targets": ["mariupol-102", "mariupol-reserve"],
                                                            "strategy": "sequential",
                                                            "fallback": {"action": "callback"}}}}}
    route = next(r for r in doc["routes"] if r["id"] == "info-505")
    assert route["menu"] == "info-menu" and "targets" not in route
    t = routing.load(doc)
    assert routing.decide(t, "gsm3", "+380671111111", MONDAY_NOON).action == "menu"
    d = routing.decide(t, "gsm3", "+380671111111", MONDAY_NOON, keys="2")
    assert (d.action, d.targets, d.option) == ("dial", ["mariupol-102", "mariupol-reserve"], "2")
    d = routing.decide(t, "gsm3", "+380671111111", MONDAY_NOON, keys="")
    assert (d.targets, d.option) == (["info-505"], "0")  # nobody pressed a key: the operator
    police = next(r for r in doc["routes"] if r["id"] == "police-102")
    assert "menu" not in police  # other services keep their targets
    assert [m["name"] for m in client.get(f"{API}/menus", headers=viewer).json()["data"]] == ["info-menu"]


@pytest.mark.parametrize(("change", "field"), [
    ({"options": {"x": {"targets": ["info-505"]}}}, "menus.options.x[key]"),
    ({"options": {"1": {"targets": ["nowhere"]}}, "default_option": "1"}, "menus.options.1.targets[0]"),
    ({"options": {"1": {"targets": ["info-505"], "fallback": {"action": "forward", "target": "nowhere"}}},
      "default_option": "1"}, "menus.options.1.fallback.target"),
    ({"default_option": "5"}, "menus.default_option"),
    ({"options": {}}, "menus.options"),
    ({"prompt": "p" * 65}, "menus.prompt"),
    ({"timeout_s": 0}, "menus.timeout_s"),
    ({"name": "bad name"}, "menus.name"),
    ({"service_id": 999999}, "menus.service_id"),
    ({"city_id": 999999}, "menus.city_id"),
    ({"options": {"1": {"targets": []}}, "default_option": "1"}, "menus.options.1.targets"),
    ({"surprise": 1}, "menus.surprise"),
])
def test_bad_menus_are_refused_naming_the_field(client, operator, info_service, change, field):
    r = client.post(f"{API}/menus", json=menu_body(info_service, name="other-menu", city_id=1) | change,
                    headers=operator)
    assert r.status_code == 422, r.text
    assert fields(r) == [field]


def test_one_menu_per_service_and_city(client, operator, info_service):
    r = client.post(f"{API}/menus", json=menu_body(info_service, name="second"), headers=operator)
    assert r.status_code == 409 and fields(r) == ["menus.city_id"]
    r = client.post(f"{API}/menus", json=menu_body(info_service, city_id=1), headers=operator)
    assert r.status_code == 409 and fields(r) == ["menus.name"]


def test_a_city_menu_beats_the_regions_and_goes_with_its_delete(client, db, operator, info_service):
    mariupol = client.get(f"{API}/cities", headers=operator).json()["data"]
    city = next(c["id"] for c in mariupol if c["name"] == "Mariupol")
    r = client.post(f"{API}/menus", json=menu_body(info_service, name="mariupol-menu", city_id=city,
                                                   prompt="mariupol-v1"), headers=operator)
    assert r.status_code == 201, r.text
    assert list(table(db)["menus"]) == ["mariupol-menu"]
    assert list(table(db, "gw-toretsk-1")["menus"]) == ["info-menu"]
    r = client.patch(f"{API}/menus/{r.json()['id']}", json={"prompt": "mariupol-v2"}, headers=operator)
    assert r.status_code == 200 and table(db)["menus"]["mariupol-menu"]["prompt"] == "mariupol-v2"
    assert client.delete(f"{API}/menus/{r.json()['id']}", headers=operator).status_code == 204
    assert list(table(db)["menus"]) == ["info-menu"]
    assert client.get(f"{API}/menus/999999", headers=operator).status_code == 404


def test_the_option_is_stored_listed_and_reported(client, db, viewer):
    recs = [{"seq": i, "t": "call", "start": MONDAY_NOON + i * 60, "port": "gsm3", "caller": "+380671111111",
             "route": "info-505", "outcome": "answered", "target": target, "attempts": 1, "ring_s": 3,
             "talk_s": 30, "reason": "ok", **({"option": key} if key is not None else {})}
            for i, (key, target) in enumerate([("2", "mariupol-102"), ("2", "mariupol-102"), ("0", "info-505"),
                                               (None, "info-505")], 1)]
    with db.session() as s:
        write_batch(s, [(GW, "events", messages.events("st-menu", recs))], {"records": 0, "duplicates": 0})
    with db.session() as s:
        stored = s.scalars(select(Record.option).where(Record.store_id == "st-menu").order_by(Record.seq)).all()
    assert stored == ["2", "2", "0", None]
    r = client.get(f"{API}/calls", params={"option": "2"}, headers=viewer).json()
    assert r["count"] == 2 and {c["option"] for c in r["data"]} == {"2"}
    r = client.get(f"{API}/reports/calls", params={"group": "option", "route": "info-505",
                                                   "from": MONDAY_NOON, "to": MONDAY_NOON + 3600}, headers=viewer)
    assert r.status_code == 200, r.text
    totals = {t["key"]: t["offered"] for t in r.json()["totals"]}
    assert totals == {"2": 2, "0": 1, None: 1}


def test_a_centre_a_menu_dials_cannot_be_deleted(client, operator, info_service):
    r = client.post(f"{API}/centres", json={"code": "social-desk", "number": "+380629000700"}, headers=operator)
    assert r.status_code == 201, r.text
    centre = r.json()["id"]
    r = client.post(f"{API}/menus", json=menu_body(info_service, name="toretsk-menu", city_id=4, options={
        "0": {"targets": ["info-505"]}, "5": {"targets": ["social-desk"]}}), headers=operator)
    assert r.status_code == 201, r.text
    menu = r.json()["id"]
    r = client.delete(f"{API}/centres/{centre}", headers=operator)
    assert r.status_code == 409 and "menu toretsk-menu" in r.json()["detail"][0]["reason"]
    assert client.delete(f"{API}/menus/{menu}", headers=operator).status_code == 204
    assert client.delete(f"{API}/centres/{centre}", headers=operator).status_code == 204
