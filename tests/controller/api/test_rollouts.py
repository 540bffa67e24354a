"""Staged rollouts: canaries first, the rest once they applied; halts on a rejection or a drop in answered calls."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from controller.api import create_app
from controller.models import Gateway, Record, Rollout, RolloutTarget
from controller.rollouts import advance_rollouts
from protocols import routing
from tests.controller.api.conftest import SETTINGS, fields

API = "/api/v1"
GATEWAYS = ["gw-kramatorsk-1", "gw-mariupol-1", "gw-sloviansk-1", "gw-toretsk-1"]


class RecordingBridge:
    """Stands in for controller.bridge.Bridge: keeps what would be published (checked as the gateway would)."""

    host, port = "broker.test", 1883

    def __init__(self):
        self.published: list[tuple[str, int]] = []

    def publish_sealed(self, gateway_id, key_hex, body):
        table = routing.unseal(routing.seal(body, key_hex), key_hex, gateway_id)
        self.published.append((gateway_id, table.version))


@pytest.fixture(scope="module")
def bridge():
    return RecordingBridge()


@pytest.fixture(scope="module")
def with_bridge(db, bridge):
    with TestClient(create_app(db, bridge=bridge, settings=SETTINGS)) as c:
        yield c


_days = iter(range(1, 28))


def change_config(client, operator) -> None:
    """A new region-wide holiday: every gateway's table gets a new version."""
    r = client.post(f"{API}/holidays", json={"date": f"2016-12-{next(_days):02d}"}, headers=operator)
    assert r.status_code == 201, r.text


def report(db, gateway: str, version: int | None = None, online: bool = True) -> None:
    """What the bridge records when a gateway says it runs `version` (ack or birth state)."""
    with db.session() as s:
        gw = s.get(Gateway, gateway)
        gw.online = online
        if version is not None:
            gw.applied_version = version


def advance(db, bridge, **kw) -> None:
    with db.session() as s:
        advance_rollouts(s, bridge, **kw)


def test_rollouts_need_the_bridge(client, operator):
    r = client.post(f"{API}/rollouts", json={"canary": ["gw-mariupol-1"]}, headers=operator)
    assert r.status_code == 503 and "bridge" in r.text


def test_canary_then_the_rest_then_done(db, with_bridge, bridge, operator, viewer):
    change_config(with_bridge, operator)
    bridge.published.clear()
    r = with_bridge.post(f"{API}/rollouts", json={"gateways": None, "canary": ["gw-mariupol-1"]}, headers=operator)
    assert r.status_code == 201, r.text
    ro = r.json()
    version = ro["targets"][0]["version"]
    assert ro["status"] == "canary" and ro["canary"] == ["gw-mariupol-1"]
    assert [(t["gateway"], t["stage"], t["status"]) for t in ro["targets"]] == [
        ("gw-mariupol-1", "canary", "offline")] + [(g, "rest", "offline") for g in GATEWAYS if g != "gw-mariupol-1"]
    assert bridge.published == [("gw-mariupol-1", version)]
    report(db, "gw-mariupol-1")  # back online, old table: pending
    assert with_bridge.get(f"{API}/rollouts/{ro['id']}", headers=viewer).json()["targets"][0]["status"] == "pending"
    advance(db, bridge)
    assert len(bridge.published) == 1  # the canary has not applied yet
    report(db, "gw-mariupol-1", version)
    advance(db, bridge)
    got = with_bridge.get(f"{API}/rollouts/{ro['id']}", headers=viewer).json()
    assert got["status"] == "rest" and got["counts"] == {"pending": 0, "applied": 1, "rejected": 0, "offline": 3}
    assert sorted(bridge.published) == sorted((g, version) for g in GATEWAYS)
    for g in GATEWAYS:
        report(db, g, version)
    advance(db, bridge)
    assert with_bridge.get(f"{API}/rollouts/{ro['id']}", headers=viewer).json()["status"] == "done"
    # nothing changed since: a new rollout is done at once and publishes nothing
    bridge.published.clear()
    again = with_bridge.post(f"{API}/rollouts", json={"gateways": ["gw-toretsk-1"]}, headers=operator).json()
    assert again["status"] == "done" and again["targets"][0]["status"] == "applied" and bridge.published == []
    listed = with_bridge.get(f"{API}/rollouts", headers=viewer).json()
    assert [x["id"] for x in listed["data"]][:2] == [again["id"], ro["id"]] and listed["count"] >= 2


def test_a_rejecting_canary_halts_the_rollout(db, with_bridge, bridge, operator, viewer):
    change_config(with_bridge, operator)
    bridge.published.clear()
    ro = with_bridge.post(f"{API}/rollouts", json={"canary": ["gw-kramatorsk-1"]}, headers=operator).json()
    with db.session() as s:  # what Bridge._on_ack does with a rejection
        t = s.scalars(select(RolloutTarget).where(RolloutTarget.rollout_id == ro["id"],
                                                  RolloutTarget.gateway_id == "gw-kramatorsk-1")).one()
        t.status, t.reason = "rejected", "sig: signature does not match"
    advance(db, bridge)
    got = with_bridge.get(f"{API}/rollouts/{ro['id']}", headers=viewer).json()
    assert got["status"] == "halted"
    assert "gw-kramatorsk-1" in got["reason"] and "signature does not match" in got["reason"]
    assert got["targets"][0]["status"] == "rejected"
    assert [g for g, _ in bridge.published] == ["gw-kramatorsk-1"]  # the rest never got it


def test_a_drop_in_answered_calls_halts_the_rollout(db, with_bridge, bridge, operator):
    change_config(with_bridge, operator)
    ro = with_bridge.post(f"{API}/rollouts", json={"canary": ["gw-sloviansk-1"]}, headers=operator).json()
    with db.session() as s:
        created = s.get(Rollout, ro["id"]).created_at
        for i in range(30):  # before the rollout: 27 of 30 answered
            s.add(Record(gateway_id="gw-sloviansk-1", store_id="s1", seq=1000 + i, kind="call",
                         at=created - 1800 + i * 10, outcome="answered" if i % 10 else "failed", data={}))
    report(db, "gw-sloviansk-1", ro["targets"][0]["version"])
    applied = created + 60
    advance(db, bridge, now=applied, soak_s=3600)  # applied; soaking
    with db.session() as s:
        assert s.get(Rollout, ro["id"]).status == "canary"
        for i in range(30):  # since: 15 of 30 answered
            s.add(Record(gateway_id="gw-sloviansk-1", store_id="s1", seq=2000 + i, kind="call",
                         at=applied + i * 10, outcome="answered" if i % 2 else "abandoned", data={}))
    advance(db, bridge, now=applied + 1200, soak_s=3600)
    with db.session() as s:
        r = s.get(Rollout, ro["id"])
        assert r.status == "halted" and "answered ratio" in r.reason and "0.90" in r.reason and "0.50" in r.reason


@pytest.mark.parametrize(("body", "field"), [
    ({"canary": ["gw-atlantis-1"]}, "rollouts.canary[0]"),
    ({"gateways": ["gw-toretsk-1"], "canary": ["gw-mariupol-1"]}, "rollouts.canary[0]"),
    ({"gateways": ["gw-toretsk-1", "gw-nowhere"]}, "rollouts.gateways[1]"),
    ({"gateways": []}, "rollouts.gateways"),
    ({"canary": "gw-toretsk-1"}, "rollouts.canary"),
])
def test_bad_rollout_names_the_field(with_bridge, operator, body, field):
    r = with_bridge.post(f"{API}/rollouts", json=body, headers=operator)
    assert r.status_code == 422 and fields(r) == [field], r.text


def test_unknown_rollout_is_404(with_bridge, viewer):
    r = with_bridge.get(f"{API}/rollouts/999999", headers=viewer)
    assert r.status_code == 404 and fields(r) == ["rollout_id"]
