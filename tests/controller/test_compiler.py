"""The compiler: one validated table per gateway, a new version only when what it says changed."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from controller import reference
from controller.compiler import compile_all, compile_gateway, table_doc
from controller.db import Database
from controller.models import DenyPrefix, Gateway, Holiday, TableVersion
from protocols import routing


def _db(tmp_path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    db.upgrade()
    with db.session() as s:
        reference.seed(s)
    return db


def test_compile_all_equals_compiling_each_and_keeps_versions_when_nothing_changed(tmp_path):
    db = _db(tmp_path)
    with db.session() as s:
        first = compile_all(s, at=1469000000)
    assert [c.gateway for c in first] == sorted(reference.CITIES) and all(c.changed and c.version == 1 for c in first)
    for c in first:  # each body is what the gateway would load, for that gateway
        assert routing.load(c.body).gateway == c.gateway
    with db.session() as s:
        again = compile_all(s, at=1469999999)  # a later clock alone is no change
        one = compile_gateway(s, s.get(Gateway, "gw-toretsk-1"), at=1470000000)
    assert [(c.version, c.sha256, c.changed) for c in again] == [(c.version, c.sha256, False) for c in first]
    assert (one.version, one.changed) == (1, False)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(TableVersion)) == len(reference.CITIES)


def test_a_change_makes_a_new_version_only_where_it_matters(tmp_path):
    db = _db(tmp_path)
    with db.session() as s:
        compile_all(s, at=1469000000)
        toretsk = s.scalars(select(Gateway).where(Gateway.id == "gw-toretsk-1")).one()
        s.add(Holiday(city_id=toretsk.city_id, date="2016-09-01"))
        s.flush()
        after = {c.gateway: c for c in compile_all(s, at=1469100000)}
    assert after["gw-toretsk-1"].changed and after["gw-toretsk-1"].version == 2
    assert not any(c.changed for g, c in after.items() if g != "gw-toretsk-1")
    body = json.loads(after["gw-toretsk-1"].body)
    city_calendar = f"city-{toretsk.city_id}"
    assert body["calendars"][city_calendar] == ["2016-09-01"] and body["issued_at"] == 1469100000
    closing = {r["id"]: r["closed"] for r in body["routes"]}
    assert closing["info-505"] == ["region", city_calendar], "holidays close the 505 line"
    assert closing["police-102"] == [] and closing["police-102-local"] == [], "and never the police"

    with db.session() as s:  # a region-wide change reaches every gateway
        s.add(DenyPrefix(prefix="+37517", note="test"))
        s.flush()
        later = compile_all(s, at=1469200000)
    assert all(c.changed for c in later)
    assert all("+37517" in json.loads(c.body)["deny"] for c in later)


def test_stored_bodies_in_another_key_order_are_still_recognised_as_unchanged(tmp_path):
    """A body written by an older compiler (other key order) means the same: no new version for it."""
    db = _db(tmp_path)
    with db.session() as s:
        gw = s.get(Gateway, "gw-mariupol-1")
        doc = table_doc(s, gw, 1, 1469000000)
        s.add(TableVersion(gateway_id=gw.id, version=1, body=json.dumps(doc, sort_keys=True, indent=1),
                           sha256="0" * 64))
        s.flush()
        c = compile_gateway(s, gw, at=1469500000)
    assert (c.version, c.changed) == (1, False)


def test_police_answers_on_a_holiday_and_the_505_line_does_not(tmp_path):
    """Issue: `preview --at 2016-08-24T14:00` said reject closed_day police-102 (a region holiday closed it)."""
    from datetime import UTC, datetime

    from protocols import routing
    from protocols.tz import utc_from_local

    db = _db(tmp_path)
    with db.session() as s:
        compiled = {c.gateway: c for c in compile_all(s, at=1469000000)}
    table = routing.load(compiled["gw-mariupol-1"].body)
    noon = utc_from_local(int(datetime(2016, 8, 24, 14, tzinfo=UTC).timestamp()), table.tz)  # 14:00 in Kyiv
    police = routing.decide(table, "gsm1", "+380671234567", noon)
    assert (police.action, police.route, police.reason) == ("dial", "police-102", "ok")
    info = routing.decide(table, "gsm3", "+380671234567", noon)
    assert (info.action, info.route, info.reason) == ("callback", "info-505", "closed_day")
