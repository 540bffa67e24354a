"""Issue 8, finding 12: a database outage raises `database_unreachable`. While the database is away
the alert cannot be stored: /healthz answers 503 and /metrics says the database is down; once it
is back the batches it held are written and the alert is stored, resolved, with the outage's start.

A real outage of a real PostgreSQL: a scratch database of its own (never the shared one) whose
connections are cut and refused (ALLOW_CONNECTIONS false + pg_terminate_backend), then allowed
again. (SQLite has no such outage to make: a locked file only fails after its 30 s busy timeout.)
"""

from __future__ import annotations

import re
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url

from controller.api.app import create_app
from controller.brokers import Mosquitto
from controller.db import Database
from controller.ingest.bridge import Bridge
from controller.models import Alert, Record
from controller.settings import Settings
from protocols import messages
from tests.conditions import until as _until
from tests.controller.databases import PG_URL, pg_unreachable
from tests.controller.test_ingest import FakeGateway, call


@pytest.fixture
def outage_db():
    """(url, cut(), restore()) of a PostgreSQL database made for this test and dropped after it."""
    reason = pg_unreachable()
    if reason:
        pytest.skip(reason)
    name = "cg_outage_" + uuid.uuid4().hex[:10]
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")

    def sql(text: str) -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(text)

    def cut() -> None:
        sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
            "AND pid <> pg_backend_pid()")

    def restore() -> None:
        sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False), cut, restore
    finally:
        restore()
        sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def until(predicate, what: str):
    return _until(predicate, 30, what, every=0.1)


def metric(text: str, name: str) -> float:
    found = re.search(rf"^citygate_{name} (\S+)$", text, re.M)
    assert found, f"no citygate_{name}"
    return float(found.group(1))


def test_a_database_outage_is_alerted_and_shown_while_it_lasts(outage_db):
    url, cut, restore = outage_db
    db = Database(url)
    db.upgrade()
    with Mosquitto() as broker:
        bridge = Bridge(db, broker.url, client_id="ctl-" + uuid.uuid4().hex[:6], db_alert_after_s=1).start()
        gw = FakeGateway(broker.port)
        client = TestClient(create_app(db, bridge, Settings(ingest_max_lag_s=60)))
        try:
            gw.send("events", messages.events("outage-store", [call(1)]))
            assert gw.wait_ack(1)["seq"] == 1
            assert client.get("/healthz").status_code == 200
            began = time.time()
            cut()
            gw.send("events", messages.events("outage-store", [call(2)]))  # the writer meets the outage

            def down_reported():
                r = client.get("/healthz")
                return r.status_code == 503 and any("cannot reach the database" in x for x in r.json()["reasons"])
            until(down_reported, what="/healthz to report the outage")
            # past the alert threshold (1 s): the writer tried to store the alert, and could not
            until(lambda: metric(client.get("/metrics").text, "ingest_db_down_seconds") > 2, what="2 s down")
            text = client.get("/metrics").text
            assert metric(text, "ingest_db_up") == 0 and metric(text, "db_up") == 0
            restore()
            back = time.time()
            assert gw.wait_ack(2, timeout=60)["seq"] == 2, "the held batch is written once the database is back"
            until(lambda: client.get("/healthz").status_code == 200, what="/healthz to recover")
            with db.session() as s:
                alerts = until(lambda: s.scalars(select(Alert).where(Alert.code == "database_unreachable")).all(),
                                  what="the database_unreachable alert")
                assert len(alerts) == 1
                alert = alerts[0]
                assert alert.gateway_id is None and alert.resolved_at is not None
                assert began - 1 <= alert.created_at <= back and alert.resolved_at >= int(back) - 1
                assert "could not reach the database" in alert.detail
                assert s.scalars(select(Record.seq).order_by(Record.seq)).all() == [1, 2]
            assert metric(client.get("/metrics").text, "ingest_db_up") == 1
        finally:
            gw.close()
            bridge.stop()
            db.engine.dispose()


def test_an_outage_while_nothing_is_written_shows_too(outage_db):
    """The idle writer looks at the database every few seconds: an outage shows without traffic."""
    url, cut, restore = outage_db
    db = Database(url)
    db.upgrade()
    with Mosquitto() as broker:
        bridge = Bridge(db, broker.url, client_id="ctl-" + uuid.uuid4().hex[:6], db_alert_after_s=1).start()
        client = TestClient(create_app(db, bridge, Settings()))
        try:
            assert metric(client.get("/metrics").text, "ingest_db_up") == 1
            cut()
            until(lambda: metric(client.get("/metrics").text, "ingest_db_up") == 0, what="the writer to notice")
            # longer than the alert threshold (1 s): a shorter outage is shown, not alerted
            until(lambda: metric(client.get("/metrics").text, "ingest_db_down_seconds") > 2, what="2 s down")
            restore()
            until(lambda: metric(client.get("/metrics").text, "ingest_db_up") == 1, what="the writer to recover")
            with db.session() as s:
                alert = until(lambda: s.scalars(select(Alert).where(Alert.code == "database_unreachable")).first(),
                                 what="the alert")
                assert alert.resolved_at is not None
        finally:
            bridge.stop()
            db.engine.dispose()
