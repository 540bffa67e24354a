"""The MQTT bridge on a real Mosquitto and a real database (SQLite and PostgreSQL): records stored
exactly once whatever the broker redelivers, events/ack only after commit, states and table acks."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import func, select

from controller import reference
from controller.brokers import Mosquitto
from controller.compiler import compile_gateway
from controller.db import Database
from controller.ingest.bridge import Bridge
from controller.ingest.records import record_as_sent, write_batch
from controller.models import Alert, CallHour, Gateway, Record, TableVersion
from protocols import messages, routing, topics
from tests.controller.databases import KINDS, scratch_database

GW = "gw-mariupol-1"


@pytest.fixture(params=KINDS)
def database(request, tmp_path):
    with scratch_database(request.param, tmp_path, request.node.name) as db:
        yield db


@pytest.fixture
def running(database):
    database.upgrade()
    with database.session() as s:
        reference.seed(s)
        compile_gateway(s, s.get(Gateway, GW))
    with Mosquitto() as broker:
        bridge = Bridge(database, broker.url, client_id="ctl-" + uuid.uuid4().hex[:6]).start()
        gateway = FakeGateway(broker.port)
        try:
            yield database, bridge, gateway
        finally:
            gateway.close()
            bridge.stop()


class FakeGateway:
    """A light MQTT client speaking the gateway's side of the contract (the bench uses the same idea)."""

    def __init__(self, port: int, gw: str = GW):
        self.gw = gw
        self.acks: list[dict] = []
        self.tables: list[bytes] = []
        self.got = threading.Condition()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=gw)
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(topics.events_ack(gw), qos=1)
        self.c.subscribe(topics.table(gw), qos=1)
        self.c.loop_start()

    def _on_message(self, client, userdata, msg):
        with self.got:
            if msg.topic.endswith("events/ack"):
                self.acks.append(json.loads(msg.payload))
            else:
                self.tables.append(msg.payload)
            self.got.notify_all()

    def send(self, kind: str, obj: dict) -> None:
        self.c.publish(topics.topic(self.gw, kind), messages.encode(kind, obj), qos=1).wait_for_publish(5)

    def wait_ack(self, seq: int, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        with self.got:
            while not (self.acks and self.acks[-1]["seq"] >= seq):
                left = deadline - time.monotonic()
                assert left > 0, f"no events/ack up to {seq}; got {self.acks[-3:]}"
                self.got.wait(left)
            return self.acks[-1]

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def call(seq: int, outcome: str = "answered") -> dict:
    return messages.call_record(seq, 1469500000 + seq, "gsm1", "+380671234567", "police-102", outcome,
                                "mariupol-102", 1, 3, 20 if outcome == "answered" else 0, "ok")


def test_records_stored_once_with_duplicates_and_reordering(running):
    db, bridge, gw = running
    sid = "a1b2c3d4e5f60718"
    batches = [[call(4), call(5)], [call(1), call(2), call(3)], [call(2), call(3)], [call(5), call(6)], [call(1)]]
    for b in batches:
        gw.send("events", messages.events(sid, b))
    ack = gw.wait_ack(6)
    assert ack == {"store_id": sid, "seq": 6}
    with db.session() as s:
        rows = s.scalars(select(Record.seq).where(Record.gateway_id == GW).order_by(Record.seq)).all()
    assert rows == [1, 2, 3, 4, 5, 6]
    assert bridge.stats["duplicates"] >= 4  # 2, 3, 5 and 1 came twice (more if the broker redelivered)
    with db.session() as s:  # the hourly aggregates counted each call once too
        hours = s.execute(select(func.sum(CallHour.offered), func.sum(CallHour.answered),
                                 func.sum(CallHour.talk_s))).one()
    assert tuple(hours) == (6, 6, 6 * 20)


def test_ack_stops_at_a_gap_until_it_is_filled(running):
    db, bridge, gw = running
    sid = "0011223344556677"
    gw.send("events", messages.events(sid, [call(1), call(2), call(4)]))
    assert gw.wait_ack(2)["seq"] == 2
    time.sleep(0.5)
    assert gw.acks[-1]["seq"] == 2, "seq 3 has not arrived: nothing after it may be acked"
    gw.send("events", messages.events(sid, [call(3)]))
    assert gw.wait_ack(4)["seq"] == 4


def test_a_dropped_record_covers_its_gap(running):
    db, bridge, gw = running
    sid = "8899aabbccddeeff"
    dropped = messages.dropped_record(5, 1469500100, 3, 2, 4)
    gw.send("events", messages.events(sid, [call(1), dropped, call(6)]))
    assert gw.wait_ack(6)["seq"] == 6


def test_a_stored_dropped_record_covers_its_gap_once_the_records_before_it_arrive(running):
    """The dropped record waits in the table (above a gap); when the gap fills, it still counts."""
    db, bridge, gw = running
    sid = "1122334455667788"
    gw.send("events", messages.events(sid, [call(1)]))
    assert gw.wait_ack(1)["seq"] == 1
    gw.send("events", messages.events(sid, [messages.dropped_record(6, 1469500100, 3, 3, 5), call(7)]))
    time.sleep(0.5)
    assert gw.acks[-1]["seq"] == 1, "seq 2 is missing: nothing after it may be acked"
    gw.send("events", messages.events(sid, [call(2)]))
    assert gw.wait_ack(7)["seq"] == 7


def test_invalid_batch_is_refused_and_alerted_not_stored(running):
    db, bridge, gw = running
    gw.c.publish(topics.events(GW), b'{"store_id": "x", "records": [{"seq": 1.5, "t": "call"}]}', qos=1)
    deadline = time.monotonic() + 10
    while bridge.stats["invalid"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Record)) == 0
        alert = s.scalars(select(Alert).where(Alert.code == "bad_message")).first()
    assert alert is not None and "records[0].seq" in alert.detail


def refuse_store(db: Database, store_id: str) -> None:
    """Make the database itself refuse every record of `store_id` (a trigger): the contract's checks
    leave nothing through that a column would refuse, but a database can refuse a row for its own reasons."""
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "sqlite":
            conn.exec_driver_sql(f"CREATE TRIGGER refuse_store BEFORE INSERT ON records WHEN NEW.store_id = "
                                 f"'{store_id}' BEGIN SELECT RAISE(ABORT, 'this store is refused'); END")
        else:
            conn.exec_driver_sql(f"CREATE FUNCTION refuse_store() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                                 f"IF NEW.store_id = '{store_id}' THEN RAISE EXCEPTION 'this store is refused' "
                                 f"USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$")
            conn.exec_driver_sql("CREATE TRIGGER refuse_store BEFORE INSERT ON records FOR EACH ROW "
                                 "EXECUTE FUNCTION refuse_store()")


def test_a_message_the_database_refuses_is_alerted_and_holds_up_no_other(running):
    db, bridge, gw = running
    refuse_store(db, "poison-store")
    other = FakeGateway(gw.c.port, "gw-kramatorsk-1")
    try:
        gw.send("events", messages.events("poison-store", [call(1), call(2)]))
        other.send("events", messages.events("good-store", [call(1), call(2)]))
        assert other.wait_ack(2) == {"store_id": "good-store", "seq": 2}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with db.session() as s:
                alert = s.scalars(select(Alert).where(Alert.code == "ingest_failed")).first()
            if alert:
                break
            time.sleep(0.05)
        assert alert is not None and alert.gateway_id == GW and alert.detail.startswith("events:")
        with db.session() as s:
            stored = s.execute(select(Record.gateway_id, Record.seq).order_by(Record.gateway_id, Record.seq)).all()
        assert [tuple(r) for r in stored] == [("gw-kramatorsk-1", 1), ("gw-kramatorsk-1", 2)]
        assert not [a for a in gw.acks if a["store_id"] == "poison-store"]
    finally:
        other.close()


def test_state_and_table_ack_update_the_gateway(running):
    db, bridge, gw = running
    bridge.publish_latest(GW)
    deadline = time.monotonic() + 10
    while not gw.tables and time.monotonic() < deadline:
        time.sleep(0.05)
    with db.session() as s:
        tv = s.scalars(select(TableVersion).where(TableVersion.gateway_id == GW)).one()
        key = s.get(Gateway, GW).key_hex
    table = routing.unseal(gw.tables[-1], key, GW)
    assert table.version == tv.version and table.sha256 == tv.sha256
    gw.send("table_ack", messages.table_ack(tv.version, tv.sha256, "applied"))
    gw.send("state", messages.state(online=True, fw="0.1.0", store_id="s1", boot=3, table_version=tv.version,
                                    table_sha256=tv.sha256, last_seq=0, ports={}, heap_free=50000, uptime_s=5,
                                    clock=1469500000))
    bridge.wait_idle()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db.session() as s:
            g = s.get(Gateway, GW)
            if g.online and g.applied_version == tv.version:
                break
        time.sleep(0.1)
    assert g.online and g.applied_version == tv.version and g.state["boot"] == 3
    gw.send("state", messages.will())
    bridge.wait_idle()
    time.sleep(0.3)
    with db.session() as s:
        assert s.get(Gateway, GW).online is False


def test_a_stored_record_gives_back_what_the_gateway_sent(tmp_path):
    """Call records keep only what has no column in `data`; a value too long for its column stays whole there."""
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    db.upgrade()
    plain = call(1)
    tried = dict(call(2), tries=[["mariupol-102", "busy"], ["mariupol-reserve", "answered"]])
    long_reason = dict(call(3), reason="x" * 40)
    alarm = messages.alarm_record(4, 1469500100, "port_down", "gsm1 lost its network")
    sent = [plain, tried, long_reason, alarm]
    with db.session() as s:
        write_batch(s, [(GW, "events", messages.events("s-1", sent))], {"records": 0, "duplicates": 0})
    with db.session() as s:
        stored = s.scalars(select(Record).order_by(Record.seq)).all()
        assert [record_as_sent(r) for r in stored] == sent
        assert stored[0].data == {} and stored[2].reason == "x" * 32
    db.engine.dispose()


def test_a_killed_ingest_worker_is_replaced_and_nothing_is_lost(running):
    """The writer is a child process: killed mid-stream, another takes over the batches it held."""
    db, bridge, gw = running
    sid = "k1k2k3k4"
    first_worker = bridge.worker.pid
    for first in range(1, 201, 20):
        gw.send("events", messages.events(sid, [call(s) for s in range(first, first + 20)]))
        if first == 101:
            os.kill(first_worker, signal.SIGKILL)
    assert gw.wait_ack(200, timeout=60) == {"store_id": sid, "seq": 200}
    assert bridge.worker.restarts >= 1 and bridge.worker.pid != first_worker
    with db.session() as s:
        seqs = s.scalars(select(Record.seq).where(Record.store_id == sid).order_by(Record.seq)).all()
        offered = s.scalar(select(func.sum(CallHour.offered)))
    assert seqs == list(range(1, 201))
    assert offered == 200, "a batch written again must not count its calls twice"
