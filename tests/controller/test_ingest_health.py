"""Issue 8: /healthz says when ingest is not working (503 with the reasons) and /metrics exposes its
counters, on a real Mosquitto, a real database and the real ingest worker process."""

from __future__ import annotations

import os
import re
import signal
import time

from fastapi.testclient import TestClient

from controller.api.app import create_app
from controller.settings import Settings
from protocols import messages
from tests.controller import test_ingest
from tests.controller.test_ingest import call

database, running = test_ingest.database, test_ingest.running  # the same fixtures: SQLite and PostgreSQL


def metric(text: str, name: str) -> float:
    found = re.search(rf"^citygate_{name} (\S+)$", text, re.M)
    assert found, f"no metric citygate_{name} in:\n{text}"
    return float(found.group(1))


def wait_status(client: TestClient, status: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get("/healthz")
        if r.status_code == status:
            return r.json()
        assert time.monotonic() < deadline, f"/healthz stayed {r.status_code}: {r.text}"
        time.sleep(0.1)


def test_healthz_is_503_while_messages_wait_past_the_lag_and_metrics_show_it(running):
    db, bridge, gw = running
    client = TestClient(create_app(db, bridge, Settings(ingest_max_lag_s=1.0)))
    assert wait_status(client, 200)["ok"] is True
    gw.send("events", messages.events("lag-store", [call(1)]))
    gw.wait_ack(1)
    text = client.get("/metrics").text
    for name in ("ingest_messages_received_total", "ingest_messages_committed_total", "ingest_invalid_total",
                 "ingest_bad_messages_total", "ingest_duplicates_total", "ingest_batches_total",
                 "ingest_worker_restarts_total", "ingest_thread_restarts_total", "ingest_queue_depth",
                 "ingest_seconds_since_commit", "db_up", "ingest_db_up"):
        metric(text, name)
    assert metric(text, "ingest_records_total") == 1 and metric(text, "db_up") == 1
    os.kill(bridge.worker.pid, signal.SIGSTOP)  # the writer hangs (a stuck disk, say): messages wait
    try:
        gw.send("events", messages.events("lag-store", [call(2)]))
        body = wait_status(client, 503)
        assert body["ok"] is False and any("nothing was committed" in r for r in body["reasons"]), body
        text = client.get("/metrics").text
        assert metric(text, "ingest_queue_depth") >= 1 and metric(text, "ingest_lag_seconds") > 1
    finally:
        os.kill(bridge.worker.pid, signal.SIGCONT)
    assert gw.wait_ack(2)["seq"] == 2
    assert wait_status(client, 200)["ingest"]["waiting"] == 0


def test_healthz_is_503_once_ingest_is_stopped(running):
    db, bridge, gw = running
    client = TestClient(create_app(db, bridge, Settings()))
    wait_status(client, 200)
    bridge.stop()
    body = wait_status(client, 503, timeout=5)
    assert body["reasons"] == ["ingest is stopped"]
