"""/metrics (issue 13, operations) read with prometheus_client's own parser: the ingest figures under their
old names, the fleet as the database has it (a real broker, bridge and database: SQLite and PostgreSQL),
HTTP requests by route template and status, and a registry per app (two apps in one process)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from controller.alert_rules import evaluate
from controller.api.app import create_app
from controller.models import Gateway
from controller.rollouts import start_rollout
from controller.settings import Settings
from protocols import messages
from tests.controller import test_ingest
from tests.controller.test_alert_rules import GSM, send_state, until
from tests.controller.test_ingest import GW

database, running = test_ingest.database, test_ingest.running


def scrape(client: TestClient) -> dict[str, dict]:
    """{family name: {"type", "samples": {(sample name, sorted labels): value}}}"""
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(r.text):
        out[fam.name] = {"type": fam.type, "samples": {(s.name, tuple(sorted(s.labels.items()))): s.value
                                                       for s in fam.samples}}
    return out


def value(families: dict, family: str, sample: str | None = None, **labels) -> float:
    return families[family]["samples"][(sample or family, tuple(sorted(labels.items())))]


def test_fleet_ingest_and_http_figures(running):
    db, bridge, gw = running
    client = TestClient(create_app(db, bridge, Settings()))
    send_state(gw, bridge, ports={"gsm1": {**GSM, "reg": 3}})
    with db.session() as s:
        until(lambda: s.get(Gateway, GW, populate_existing=True).online, "online")
        start_rollout(s, bridge, gateways=[GW])
        evaluate(s, Settings(), now=int(time.time()))  # the unregistered port opens its alert
    gw.send("events", messages.events("m1", [test_ingest.call(1)]))
    gw.wait_ack(1)
    assert client.get("/api/v1/gateways/gw-x").status_code == 401
    assert client.get("/no/such/page").status_code == 404
    m = scrape(client)
    assert m["citygate_ingest_messages_received"]["type"] == "counter"
    assert value(m, "citygate_ingest_messages_received", "citygate_ingest_messages_received_total") >= 2
    assert value(m, "citygate_ingest_records", "citygate_ingest_records_total") == 1
    for gauge in ("citygate_ingest_lag_seconds", "citygate_ingest_queue_depth", "citygate_db_up",
                  "citygate_broker_connected", "citygate_ingest_messages_per_second"):
        assert m[gauge]["type"] == "gauge", gauge
    assert value(m, "citygate_db_up") == 1
    assert value(m, "citygate_gateways_registered") == 4 and value(m, "citygate_gateways_online") == 1
    assert value(m, "citygate_table_versions_pending") == 1, "sent, not acked"
    assert value(m, "citygate_rollouts", state="rest") == 1 and value(m, "citygate_rollouts", state="done") == 0
    assert value(m, "citygate_alerts_open", kind="port_unregistered") == 1
    http = "citygate_http_requests"
    assert m[http]["type"] == "counter"
    assert value(m, http, http + "_total", method="GET", route="/api/v1/gateways/{gateway_id}", status="401") == 1
    assert value(m, http, http + "_total", method="GET", route="unmatched", status="404") == 1
    assert not any("gw-x" in str(k) or "/no/such" in str(k) for k in m[http]["samples"]), "templates, not paths"
    latency = "citygate_http_request_duration_seconds"
    assert m[latency]["type"] == "histogram"
    assert value(m, latency, latency + "_count", method="GET", route="/api/v1/gateways/{gateway_id}") == 1
    assert value(m, latency, latency + "_bucket", method="GET", route="/api/v1/gateways/{gateway_id}", le="+Inf") == 1


def test_each_app_has_its_own_registry(running):
    db, bridge, _ = running
    first, second = (TestClient(create_app(db, bridge, Settings())) for _ in range(2))
    for _ in range(3):
        first.get("/healthz")
    second.get("/healthz")
    key = "citygate_http_requests"
    assert value(scrape(first), key, key + "_total", method="GET", route="/healthz", status="200") == 3
    assert value(scrape(second), key, key + "_total", method="GET", route="/healthz", status="200") == 1


def test_without_a_bridge_and_with_the_fleet_empty(tmp_path):
    from controller.db import Database

    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.upgrade()
    try:
        m = scrape(TestClient(create_app(db, None, Settings())))
        assert value(m, "citygate_db_up") == 1 and value(m, "citygate_gateways_online") == 0
        assert "citygate_ingest_messages_received" not in m and value(m, "citygate_rollouts", state="halted") == 0
        assert not m["citygate_alerts_open"]["samples"]
    finally:
        db.engine.dispose()
