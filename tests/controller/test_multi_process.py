"""Two real controller processes (`citygate serve`) share one Mosquitto (shared subscriptions) and one
PostgreSQL: every record stored once, the hourly aggregates exact, every gateway acked to its last
record, also when one process is killed (-9, with its ingest worker) in the middle of the traffic;
and the once-only duties pass to the other process within seconds when the leader is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import create_engine, text

from controller.brokers import Mosquitto, free_port
from protocols import messages, topics
from tests.conditions import until
from tests.controller.databases import scratch_url

pytestmark = pytest.mark.slow
GATEWAYS, RECORDS, BATCH, WINDOW = 12, 600, 50, 4  # records per gateway, per message, messages in flight
RESEND_S = 1.0  # a gateway sends again from its last ack when none came for this long (firmware: link.py)


class SimGateway:
    """The firmware's outbox discipline: batches from the last ack, a window in flight, resent on silence."""

    def __init__(self, port: int, gw: str):
        self.gw, self.sid = gw, "s-" + gw
        self.acked = self.sent = 0
        self.sent_at = 0.0
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=gw)
        self.c.on_message = self._on_ack
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(topics.events_ack(gw), qos=1)
        self.c.loop_start()

    def _on_ack(self, c, u, msg):
        ack = messages.decode("events_ack", msg.payload)
        with self.lock:
            if ack["store_id"] == self.sid and ack["seq"] > self.acked:
                self.acked = ack["seq"]
                self.sent = max(self.sent, self.acked)

    def pump(self) -> None:
        with self.lock:
            now = time.monotonic()
            if self.sent > self.acked and now - self.sent_at > RESEND_S:
                self.sent = self.acked  # nothing heard: again from the last ack, as the firmware does
            while self.sent < RECORDS and self.sent - self.acked < WINDOW * BATCH:
                first, last = self.sent + 1, min(self.sent + BATCH, RECORDS)
                recs = [messages.call_record(q, 1780000000 + q * 7, "gsm1", "+380671234567", "police-102", "answered",
                                             "mariupol-102", 1, 2, 30, "ok") for q in range(first, last + 1)]
                payload = messages.encode("events", messages.events(self.sid, recs))
                self.c.publish(topics.events(self.gw), payload, qos=1)
                self.sent, self.sent_at = last, now

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


class Controller:
    """`citygate serve --role ROLE --instance NAME` in its own process group (its ingest worker included)."""

    def __init__(self, tmp: Path, name: str, role: str, db_url: str, broker_url: str):
        self.name, self.port = name, free_port()
        env = dict(os.environ, CITYGATE_DATABASE_URL=db_url, CITYGATE_BROKER=broker_url,
                   CITYGATE_LISTEN_PORT=str(self.port))
        self.log = tmp / f"{name}.log"
        citygate = Path(sys.executable).with_name("citygate")
        with self.log.open("w") as out:
            self.proc = subprocess.Popen([str(citygate), "serve", "--role", role, "--instance", name], env=env,
                                         cwd=tmp, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)

    def up(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        return "controller up" in self.log.read_text()

    def metric(self, name: str) -> float:
        body = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        return float(next(line.split()[1] for line in body.splitlines() if line.startswith(f"citygate_{name} ")))

    def kill(self) -> None:
        """kill -9 of the controller and its ingest worker, as when its machine goes."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        try:  # whatever is left of the group (a worker that did not end with its controller)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def setup(tmp_path, request):
    with scratch_url("postgresql", tmp_path, request.node.name) as url, Mosquitto() as broker:
        started: list[Controller] = []

        def start(name: str, role: str) -> Controller:
            c = Controller(tmp_path, name, role, url, broker.url)
            started.append(c)
            return c

        engine = create_engine(url)
        try:
            yield start, broker, engine
        finally:
            for c in started:
                c.stop()
            engine.dispose()


def counts(engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT (SELECT count(*) FROM records) AS records,"
            " (SELECT count(DISTINCT (gateway_id, store_id, seq)) FROM records) AS keys,"
            " (SELECT coalesce(sum(offered), 0) FROM call_hours) AS offered,"
            " (SELECT coalesce(sum(talk_s), 0) FROM call_hours) AS talk_s,"
            " (SELECT count(*) FROM store_marks WHERE acked_seq = :n) AS complete"), {"n": RECORDS}).one()._mapping)


@pytest.mark.parametrize("kill_one", [False, True], ids=["both-up", "one-killed-mid-batch"])
def test_two_processes_store_every_record_once(setup, kill_one):
    start, broker, _engine = setup
    a, b = start("a", "all"), start("b", "all")
    until(lambda: a.up() and b.up(), 90, "both controllers up and subscribed")
    gws = [SimGateway(broker.port, f"gw-multi-{i:02d}") for i in range(GATEWAYS)]
    total, killed = GATEWAYS * RECORDS, False
    try:
        def traffic_done():
            nonlocal killed
            for g in gws:
                g.pump()
            acked = sum(g.acked for g in gws)
            if kill_one and not killed and acked >= total // 3:
                a.kill()  # messages it took from the broker but had not committed die with it
                killed = True
            return acked == total
        until(traffic_done, 120, "every gateway acked to its last record", every=0.02)
    finally:
        for g in gws:
            g.close()
    got = counts(_engine)
    assert got == {"records": total, "keys": total, "offered": total, "talk_s": 30 * total, "complete": GATEWAYS}
    assert b.metric("ingest_records_total") > 0
    if not kill_one:  # the broker shared the messages: both stored some, together every record once
        assert a.metric("ingest_records_total") > 0
        assert a.metric("ingest_records_total") + b.metric("ingest_records_total") == total
    else:
        assert killed


def leader(engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.classid = 25447 AND l.granted "
            "AND l.objid::int = hashtext(current_database() || '.' || current_schema())")).scalar()


def test_the_leader_killed_another_process_takes_its_duties_over(setup):
    start, _broker, engine = setup
    procs = {"a": start("a", "api"), "b": start("b", "ingest")}
    until(lambda: all(p.up() for p in procs.values()), 90, "both controllers up")
    first = until(lambda: leader(engine), 20, "a leader")
    assert first in ("citygate-leader-a", "citygate-leader-b")
    old = procs[first.rsplit("-", 1)[1]]
    other = procs["b" if old.name == "a" else "a"]
    assert "is now the leader" in Path(old.log).read_text()
    killed_at = time.monotonic()
    old.kill()
    until(lambda: leader(engine) == f"citygate-leader-{other.name}", 15, "the other process leading")
    took = time.monotonic() - killed_at
    until(lambda: "is now the leader" in other.log.read_text(), 5, "the new leader saying so")
    assert took < 15
