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
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from fleet import client, gateway_ids, key_of  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402

from controller import reference  # noqa: E402
from controller.brokers import Mosquitto  # noqa: E402
from controller.compiler import compile_all  # noqa: E402
from controller.db import Database  # noqa: E402
from controller.ingest.bridge import Bridge  # noqa: E402
from controller.models import DenyPrefix, Gateway, GatewayService, TableVersion  # noqa: E402
from controller.rollouts import start_rollout  # noqa: E402
from controller.service import tune_interpreter  # noqa: E402
from protocols import messages, routing, topics  # noqa: E402

FLEET = Path(__file__).resolve().parent / "fleet.py"


class FleetProc:
    """bench/fleet.py in a child process: the simulated gateways never share the controller's CPU."""

    def __init__(self, port: int, gateways: int, mode: str, records: int = 0, timeout: float = 600):
        self.proc = subprocess.Popen([sys.executable, str(FLEET), mode, "--port", str(port), "--gateways",
                                      str(gateways), "--records", str(records), "--timeout", str(timeout)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.expect("ready")

    def expect(self, word: str) -> None:
        line = self.proc.stdout.readline().strip()
        if line != word:
            self.close()
            raise RuntimeError(f"fleet said {line!r}, expected {word!r}")

    def go(self) -> None:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def fresh_id(prefix: str) -> str:
    """A client id never used on this broker: the bridge's session is persistent, and an id reused
    across rounds would find the previous phases' messages queued for it and count them."""
    return f"{prefix}-{os.urandom(4).hex()}"


def close(*clients: mqtt.Client) -> None:
    for c in clients:
        c.loop_stop()
        c.disconnect()


class BareIngest:
    """A paho subscriber that decodes events and (optionally) acks each batch at once: no database."""

    def __init__(self, port: int, total: int, ack: bool):
        self.got, self.total, self.ack = 0, total, ack
        self.done, self.connected = threading.Event(), threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bare-ingest", clean_session=True)
        self.c.max_inflight_messages_set(1000)
        self.c.max_queued_messages_set(0)
        self.c.on_message, self.c.on_connect = self._on_message, self._on_connect
        self.c.on_disconnect = lambda *a: self.connected.clear()
        self.c.reconnect_delay_set(0.1, 1)
        self.c.connect("127.0.0.1", port, keepalive=60)
        self.c.loop_start()
        self.connected.wait(10)
        time.sleep(0.3)

    def _on_connect(self, c, u, flags, reason, properties):
        c.subscribe(topics.filter("events"), qos=1)
        self.connected.set()

    def _on_message(self, c, u, msg):
        m = messages.decode("events", msg.payload)
        self.got += len(m["records"])
        if self.ack:
            gw, _ = topics.parse(msg.topic)
            ack = messages.events_ack(m["store_id"], m["records"][-1]["seq"])
            c.publish(topics.events_ack(gw), messages.encode("events_ack", ack), qos=1, retain=True)
        if self.got >= self.total:
            self.done.set()


def bare_ingest(port: int, gw_count: int, per_gw: int) -> float:
    """Records/s a bare subscriber receives and decodes: the ceiling the bridge is held to."""
    bare = BareIngest(port, gw_count * per_gw, ack=False)
    with FleetProc(port, gw_count, "publish", per_gw) as fleet:
        t0 = time.monotonic()
        fleet.go()
        bare.done.wait(300)
        rate = bare.got / (time.monotonic() - t0)
    close(bare.c)
    return rate


def bridge_ingest(port: int, db: Database, gw_count: int, per_gw: int) -> float:
    """Records/s the bridge stores and commits (stats count only committed records)."""
    bridge = Bridge(db, f"mqtt://127.0.0.1:{port}", client_id=fresh_id("bench-controller")).start()
    total = gw_count * per_gw
    with FleetProc(port, gw_count, "publish", per_gw) as fleet:
        t0 = time.monotonic()
        fleet.go()
        deadline = time.monotonic() + 600
        while bridge.stats["records"] < total and time.monotonic() < deadline:
            time.sleep(0.01)
        rate = bridge.stats["records"] / (time.monotonic() - t0)
    bridge.stop()
    return rate


def seed_region(db: Database, n: int) -> float:
    """The reference region with n gateways spread over its cities; returns seconds to compile them all."""
    db.upgrade()
    with db.session() as s:
        reference.seed(s)
        cities = [s.get(Gateway, gw).city_id for gw in reference.CITIES]
        services = {gs.port: gs.service_id for gs in s.get(Gateway, "gw-mariupol-1").services}
        for gw in list(reference.CITIES):
            s.delete(s.get(Gateway, gw))
        s.flush()
        for i, gw in enumerate(gateway_ids(n)):
            s.add(Gateway(id=gw, city_id=cities[i % len(cities)], key_hex=key_of(gw),
                          ports=sorted({*services, *reference.OUT_PORTS}), out_ports=list(reference.OUT_PORTS),
                          services=[GatewayService(port=p, service_id=sid) for p, sid in services.items()]))
    t0 = time.monotonic()
    with db.session() as s:
        compile_all(s)
    return time.monotonic() - t0


def rollout_rounds(port: int, db: Database, n: int, rounds: int) -> dict:
    """Medians over `rounds` rollouts to all n gateways, each of a region-wide change (a new deny
    prefix, recompiled as an API write would), each beside a bare publish-and-echo measured just before."""
    with db.session() as s:
        tv = s.scalars(select(TableVersion).limit(1)).one()
        sample = routing.seal(tv.body.encode(), key_of(tv.gateway_id))
    out: dict[str, list[float]] = {"bare": [], "total": [], "wire": [], "recompile": []}
    with FleetProc(port, n, "ack"):  # the gateways stay up across rollouts, as a fleet does
        for i in range(rounds):
            if i:
                with db.session() as s:
                    s.add(DenyPrefix(prefix=f"+99{i}", note="bench"))
                    s.flush()
                    t0 = time.monotonic()
                    compile_all(s)
                    out["recompile"].append(time.monotonic() - t0)
            out["bare"].append(bare_echo(port, n, sample))
            total, wire = rollout(port, db)
            out["total"].append(total)
            out["wire"].append(wire)
            print(f"  rollout round {i + 1}: bare echo {out['bare'][-1]:.2f} s, first publish to all applied "
                  f"{wire:.2f} s, from start_rollout {total:.2f} s", flush=True)
    return {k: statistics.median(v) if v else 0.0 for k, v in out.items()}


def rollout(port: int, db: Database, timeout: float = 300) -> tuple[float, float]:
    """Seconds from start_rollout (every gateway, no canary) until every target is applied, and
    from its first table published until then (the part a bare publish-and-echo compares with)."""
    bridge = Bridge(db, f"mqtt://127.0.0.1:{port}", client_id=fresh_id("bench-rollout")).start()
    first: list[float] = []
    publish = bridge.publish_sealed

    def timed(*a, **kw):
        first or first.append(time.monotonic())
        return publish(*a, **kw)

    bridge.publish_sealed = timed
    t0 = time.monotonic()
    with db.session() as s:
        rid = start_rollout(s, bridge).id
    deadline, seen = time.monotonic() + timeout, -1
    count = text("SELECT count(*) FROM rollout_targets WHERE rollout_id = :rid AND status != 'applied'")
    with db.engine.connect() as conn:  # one light query per batch the bridge commits, not on a timer
        while time.monotonic() < deadline:
            with bridge.changed:  # the watcher holds no lock while it counts: the bridge never waits for it
                bridge.changed.wait_for(lambda last=seen: bridge.stats["batches"] != last, timeout=0.5)
                seen = bridge.stats["batches"]
            left = conn.execute(count, {"rid": rid}).scalar()
            conn.rollback()  # the next count sees the next commit
            if left == 0:
                break
    t1 = time.monotonic()
    bridge.stop()
    if left:
        raise RuntimeError(f"{left} gateways did not ack within {timeout:.0f} s")
    return t1 - t0, t1 - first[0]


def bare_echo(port: int, n: int, payload: bytes) -> float:
    """Seconds for a publish-and-echo round trip to the same n simulated gateways."""
    with FleetProc(port, n, "echo"):
        got, done = set(), threading.Event()

        def on_pong(c, u, msg):
            got.add(msg.topic)
            if len(got) == n:
                done.set()

        ctl = client(port, "bare-ctl", on_pong)
        ctl.subscribe("bench/pong/+", qos=1)
        time.sleep(0.3)
        t0 = time.monotonic()
        for gw in gateway_ids(n):
            ctl.publish(f"bench/ping/{gw}", payload, qos=1)
        done.wait(300)
        elapsed = time.monotonic() - t0
        close(ctl)
    return elapsed


def drain(broker: Mosquitto, n: int, per_gw: int, db: Database | None) -> float:
    """Records/s drained from n gateways' backlogs, acked batch by batch, after a broker outage.

    With a database, the bridge stores and acks; without, a bare subscriber acks each batch on receipt.
    The clock starts once the broker is back and the controller side has reconnected.
    """
    total = n * per_gw
    if db is not None:
        side = Bridge(db, broker.url, client_id=fresh_id("bench-drain")).start()
    else:
        side = BareIngest(broker.port, total, ack=True)
    broker.stop()
    time.sleep(1)
    broker.start()
    time.sleep(0.2)
    if not side.connected.wait(60):
        raise RuntimeError("the controller side did not reconnect within 60 s")
    time.sleep(0.3)  # its subscriptions are in place
    with FleetProc(broker.port, n, "drain", per_gw) as fleet:
        t0 = time.monotonic()
        fleet.go()
        fleet.expect("done")
        elapsed = time.monotonic() - t0
    if db is not None:
        side.stop()
        stored = side.stats["records"]
    else:
        close(side.c)
        stored = side.got
    if stored < total:
        raise RuntimeError(f"drained {stored} of {total} records")
    return total / elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gateways", type=int, default=1000)
    ap.add_argument("--backlog", type=int, default=500)
    ap.add_argument("--records", type=int, default=100000, help="records for the ingest figure")
    ap.add_argument("--rounds", type=int, default=5, help="alternating bare/ours rounds (ingest, rollout)")
    ap.add_argument("--database", default=None, help="a PostgreSQL URL instead of SQLite files (each part "
                                                     "gets a fresh schema)")
    ap.add_argument("--only", choices=tuple(PARTS), help="run one part (while tuning)")
    args = ap.parse_args()
    tune_interpreter()  # as `citygate serve` runs: bare and ours alike
    tmp = Path(tempfile.mkdtemp(prefix="citygate-bench-"))
    figures: dict[str, str] = {}
    with Mosquitto(persistence=True, conf_extra="max_queued_messages 0\nmax_inflight_messages 0\n") as broker:
        for name, part in PARTS.items():
            if args.only in (None, name):
                figures.update(part(broker, args, tmp))
    print(" ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


def ingest_part(broker: Mosquitto, args, tmp: Path) -> dict[str, str]:
    """Median records/s of the bridge and of the bare subscriber, measured in alternating rounds."""
    gws = max(1, args.records // 500)
    ours, bare = [], []
    for i in range(args.rounds):
        bare.append(bare_ingest(broker.port, gws, 500))
        with fresh_db(args.database, tmp, f"ingest{i}") as db:
            ours.append(bridge_ingest(broker.port, db, gws, 500))
        print(f"  ingest round {i + 1}: bare {bare[-1]:,.0f}/s, bridge {ours[-1]:,.0f}/s", flush=True)
    ours_m, bare_m = statistics.median(ours), statistics.median(bare)
    print(f"ingest: bridge {ours_m:,.0f} records/s stored and committed, bare subscriber {bare_m:,.0f}/s "
          f"(median of {args.rounds} alternating rounds each; ratio {ours_m / bare_m:.2f}, target >= 0.5)",
          flush=True)
    return {"ingest_per_s": f"{ours_m:.0f}", "bare_ingest_per_s": f"{bare_m:.0f}",
            "ingest_ratio": f"{ours_m / bare_m:.2f}"}


def rollout_part(broker: Mosquitto, args, tmp: Path) -> dict[str, str]:
    with fresh_db(args.database, tmp, "fleet") as db:
        t_compile = seed_region(db, args.gateways)
        tune_interpreter()  # as the service does once it is up
        r = rollout_rounds(broker.port, db, args.gateways, args.rounds)
    t_bare, t_roll, t_wire = r["bare"], r["total"], r["wire"]
    print(f"rollout to {args.gateways} gateways: {t_wire:.2f} s from the first table published until all "
          f"applied, bare publish-and-echo {t_bare:.2f} s (ratio {t_wire / t_bare:.2f}, target <= 2); "
          f"{t_roll:.2f} s from start_rollout, which first checks every table against the configuration "
          f"(ratio {t_roll / t_bare:.2f}); medians of {args.rounds} rounds; compiling the tables took "
          f"{t_compile:.2f} s the first time, {r['recompile']:.2f} s after a region-wide change", flush=True)
    return {"gateways": str(args.gateways), "compile_s": f"{t_compile:.2f}", "rollout_s": f"{t_roll:.2f}",
            "publish_to_applied_s": f"{t_wire:.2f}", "bare_echo_s": f"{t_bare:.2f}",
            "rollout_ratio": f"{t_wire / t_bare:.2f}", "rollout_total_ratio": f"{t_roll / t_bare:.2f}"}


def backlog_part(broker: Mosquitto, args, tmp: Path) -> dict[str, str]:
    bare_b = drain(broker, args.gateways, args.backlog, None)
    with fresh_db(args.database, tmp, "backlog") as db:
        ours_b = drain(broker, args.gateways, args.backlog, db)
    total = args.gateways * args.backlog
    print(f"backlog: {total:,} records ({args.backlog} on each of {args.gateways}, sent 50 a batch, the next "
          f"once acked) drained at {ours_b:,.0f}/s ({total / ours_b:.0f} s), bare acker {bare_b:,.0f}/s "
          f"(ratio {ours_b / bare_b:.2f})", flush=True)
    return {"backlog_records": str(total), "backlog_per_s": f"{ours_b:.0f}", "bare_backlog_per_s": f"{bare_b:.0f}",
            "backlog_ratio": f"{ours_b / bare_b:.2f}"}


PARTS = {"ingest": ingest_part, "rollout": rollout_part, "backlog": backlog_part}


@contextmanager
def fresh_db(url: str | None, tmp: Path, name: str):
    """A migrated, empty database: a SQLite file, or a new schema in the given PostgreSQL."""
    if url is None:
        db = Database(f"sqlite:///{tmp / (name + '.db')}")
        db.upgrade()
        yield db
        db.engine.dispose()
        return
    schema = f"bench_{name}_{os.getpid()}"
    admin = create_engine(url)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    db = Database(url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}")
    try:
        db.upgrade()
        yield db
    finally:
        db.engine.dispose()
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
