"""Bench: the controller's MQTT side against Mosquitto, each figure beside a bare baseline measured
in the same run on the same broker.

1. ingest: records per second stored and committed by the bridge (SQLite), beside a bare paho
   subscriber that only receives and decodes the same batches (target ratio >= 0.5);
2. rollout: signed tables to N gateways until every one acked, beside a bare publish-and-echo
   round trip to the same N (target <= 2x);
3. backlog: R records on each of N gateways drained after an outage, beside the bare rate.

The simulated fleet is one paho client per 100 gateways speaking the gateway's side of the
contract (it verifies each table with protocols.routing.unseal and acks it). The last line is
`key=value` pairs.

    python bench/controller_bench.py [--gateways 1000] [--backlog 500] [--records 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from controller import reference  # noqa: E402
from controller.bridge import Bridge  # noqa: E402
from controller.brokers import Mosquitto  # noqa: E402
from controller.db import Database  # noqa: E402
from controller.models import City, Gateway, TableVersion  # noqa: E402
from protocols import messages, routing, topics  # noqa: E402

PER_CLIENT = 100


def client(port: int, cid: str, on_message=None) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=True)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    if on_message:
        c.on_message = on_message
    c.connect("127.0.0.1", port, keepalive=60)
    c.loop_start()
    return c


def batches(gw_count: int, per_gw: int, size: int = 50):
    for g in range(gw_count):
        gw = f"gw-bench-{g:04d}"
        for first in range(1, per_gw + 1, size):
            recs = [messages.call_record(s, 1780000000 + s, "gsm1", "+380671234567", "r", "answered", "t", 1, 2, 30,
                                         "ok") for s in range(first, min(first + size, per_gw + 1))]
            yield gw, messages.encode("events", messages.events("s" + gw[-4:], recs)), len(recs)


def bare_ingest(port: int, gw_count: int, per_gw: int) -> float:
    """A paho subscriber that receives and decodes the batches: the ceiling the bridge is held to."""
    got = [0]
    total = gw_count * per_gw
    done = threading.Event()

    def on_message(c, u, msg):
        got[0] += len(messages.decode("events", msg.payload)["records"])
        if got[0] >= total:
            done.set()

    sub = client(port, "bare-sub", on_message)
    sub.subscribe(topics.filter("events"), qos=1)
    time.sleep(0.3)
    pub = client(port, "bare-pub")
    t0 = time.monotonic()
    for gw, payload, _ in batches(gw_count, per_gw):
        pub.publish(topics.events(gw), payload, qos=1)
    done.wait(300)
    rate = got[0] / (time.monotonic() - t0)
    for c in (sub, pub):
        c.loop_stop()
        c.disconnect()
    return rate


def bridge_ingest(port: int, db: Database, gw_count: int, per_gw: int) -> float:
    bridge = Bridge(db, f"mqtt://127.0.0.1:{port}", client_id="bench-controller").start()
    pub = client(port, "bench-pub")
    total = gw_count * per_gw
    t0 = time.monotonic()
    for gw, payload, _ in batches(gw_count, per_gw):
        pub.publish(topics.events(gw), payload, qos=1)
    deadline = time.monotonic() + 600
    while bridge.stats["records"] < total and time.monotonic() < deadline:
        time.sleep(0.02)
    rate = bridge.stats["records"] / (time.monotonic() - t0)
    pub.loop_stop()
    pub.disconnect()
    bridge.stop()
    return rate


class Fleet:
    """N simulated gateways, PER_CLIENT to a paho client: verify each table and ack it."""

    def __init__(self, port: int, keys: dict[str, str], echo: bool = False):
        self.keys, self.acked, self.lock = keys, set(), threading.Lock()
        self.all = threading.Event()
        self.clients = []
        ids = sorted(keys)
        for i in range(0, len(ids), PER_CLIENT):
            c = client(port, f"fleet-{i}", self._on_message)
            for gw in ids[i:i + PER_CLIENT]:
                c.subscribe(topics.table(gw) if not echo else f"bench/ping/{gw}", qos=1)
            self.clients.append(c)
        self.echo = echo
        time.sleep(0.5)

    def _on_message(self, c, u, msg):
        if self.echo:
            gw = msg.topic.rsplit("/", 1)[1]
            c.publish(f"bench/pong/{gw}", msg.payload, qos=1)
            return
        gw, _ = topics.parse(msg.topic)
        table = routing.unseal(msg.payload, self.keys[gw], gw)
        ack = messages.table_ack(table.version, table.sha256, "applied")
        c.publish(topics.table_ack(gw), messages.encode("table_ack", ack), qos=1)

    def close(self) -> None:
        for c in self.clients:
            c.loop_stop()
            c.disconnect()


def seed_fleet(db: Database, n: int) -> dict[str, str]:
    db.upgrade()
    keys = {}
    with db.session() as s:
        city = City(name="Bench", zone="Europe/Kyiv")
        s.add(city)
        s.flush()
        body = json.dumps(reference.table("gw-mariupol-1"))
        for i in range(n):
            gw = f"gw-bench-{i:04d}"
            keys[gw] = hashlib.sha256(gw.encode()).hexdigest()
            s.add(Gateway(id=gw, city_id=city.id, key_hex=keys[gw], ports=["gsm1", "gsm2"], out_ports=["gsm2"],
                          desired_version=1))
            doc = json.loads(body)
            doc["gateway"] = gw
            b = json.dumps(doc)
            s.add(TableVersion(gateway_id=gw, version=1, body=b, sha256=hashlib.sha256(b.encode()).hexdigest()))
    return keys


def rollout(port: int, db: Database, keys: dict[str, str]) -> float:
    fleet = Fleet(port, keys)
    bridge = Bridge(db, f"mqtt://127.0.0.1:{port}", client_id="bench-rollout").start()
    t0 = time.monotonic()
    for gw in keys:
        bridge.publish_latest(gw)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with db.session() as s:
            done = s.query(Gateway).filter(Gateway.applied_version == 1).count()
        if done == len(keys):
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    bridge.stop()
    fleet.close()
    return elapsed


def bare_echo(port: int, keys: dict[str, str], payload: bytes) -> float:
    fleet = Fleet(port, keys, echo=True)
    got, done = set(), threading.Event()

    def on_pong(c, u, msg):
        got.add(msg.topic)
        if len(got) == len(keys):
            done.set()

    ctl = client(port, "bare-ctl", on_pong)
    ctl.subscribe("bench/pong/+", qos=1)
    time.sleep(0.3)
    t0 = time.monotonic()
    for gw in keys:
        ctl.publish(f"bench/ping/{gw}", payload, qos=1)
    done.wait(300)
    elapsed = time.monotonic() - t0
    ctl.loop_stop()
    ctl.disconnect()
    fleet.close()
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateways", type=int, default=1000)
    ap.add_argument("--backlog", type=int, default=500)
    ap.add_argument("--records", type=int, default=20000, help="records for the ingest figure")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="citygate-bench-"))
    with Mosquitto(conf_extra="max_queued_messages 0\nmax_inflight_messages 0\n") as broker:
        ingest_gws = max(1, args.records // 500)
        bare = bare_ingest(broker.port, ingest_gws, 500)
        db = Database(f"sqlite:///{tmp / 'ingest.db'}")
        db.upgrade()
        ours = bridge_ingest(broker.port, db, ingest_gws, 500)
        print(f"ingest: bridge {ours:,.0f} records/s stored and committed, bare subscriber {bare:,.0f}/s "
              f"(ratio {ours / bare:.2f}, target >= 0.5)", flush=True)

        db = Database(f"sqlite:///{tmp / 'fleet.db'}")
        keys = seed_fleet(db, args.gateways)
        with db.session() as s:
            sample = routing.seal(s.get(TableVersion, 1).body.encode(), keys["gw-bench-0000"])
        t_bare = bare_echo(broker.port, keys, sample)
        t_roll = rollout(broker.port, db, keys)
        print(f"rollout to {args.gateways} gateways: {t_roll:.2f} s until all acked, bare publish-and-echo "
              f"{t_bare:.2f} s (ratio {t_roll / t_bare:.2f}, target <= 2)", flush=True)

        bare_b = bare_ingest(broker.port, args.gateways, args.backlog)
        db = Database(f"sqlite:///{tmp / 'backlog.db'}")
        db.upgrade()
        drain = bridge_ingest(broker.port, db, args.gateways, args.backlog)
        total = args.gateways * args.backlog
        print(f"backlog: {total:,} records ({args.backlog} on each of {args.gateways}) drained at {drain:,.0f}/s "
              f"({total / drain:.0f} s), bare {bare_b:,.0f}/s (ratio {drain / bare_b:.2f})", flush=True)
    print(f"ingest_per_s={ours:.0f} bare_ingest_per_s={bare:.0f} ingest_ratio={ours / bare:.2f} "
          f"gateways={args.gateways} rollout_s={t_roll:.2f} bare_echo_s={t_bare:.2f} "
          f"rollout_ratio={t_roll / t_bare:.2f} "
          f"backlog_records={total} backlog_per_s={drain:.0f} bare_backlog_per_s={bare_b:.0f} "
          f"backlog_ratio={drain / bare_b:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
