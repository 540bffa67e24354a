"""The controller's MQTT side: publish signed tables, ingest what gateways report.

paho's network thread only decodes topics and queues messages; one writer thread does all
database work in batches, and publishes `events/ack` only after the records are committed
(DESIGN §6). Records are stored once by (gateway, store_id, seq), whatever the broker redelivers.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from sqlalchemy import insert, select

from controller.db import Database
from controller.models import Alert, Gateway, Record, RolloutTarget, StoreMark, TableVersion, now
from protocols import messages, routing, topics

log = logging.getLogger("citygate.bridge")
CALL_FIELDS = ("port", "caller", "route", "outcome", "target", "attempts", "ring_s", "talk_s", "reason")


class Bridge:
    def __init__(self, db: Database, broker_url: str, user: str | None = None, password: str | None = None,
                 client_id: str = "citygate-controller", batch: int = 500):
        self.db = db
        url = urlparse(broker_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 1883
        self.batch = batch
        self.inbox: queue.Queue = queue.Queue(maxsize=100_000)
        self.results: dict[str, dict] = {}
        self.published: list[mqtt.MQTTMessageInfo] = []
        self.changed = threading.Condition()
        self.stats = {"records": 0, "duplicates": 0, "invalid": 0, "batches": 0}
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="citygate-ingest", daemon=True)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if user:
            self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 30)
        self.connected = threading.Event()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Bridge:
        self._writer.start()
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(15):
            log.warning("broker %s:%d not reachable yet; retrying in the background", self.host, self.port)
        return self

    def stop(self) -> None:
        self._stop.set()
        self.client.loop_stop()
        self.client.disconnect()
        self._writer.join(10)

    def _on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            log.error("broker refused the controller: %s", reason)
            return
        for kind in topics.GATEWAY_PUBLISHES:
            client.subscribe(topics.filter(kind), qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, msg):
        try:
            gw, kind = topics.parse(msg.topic)
        except Exception:
            return
        self.inbox.put((gw, kind, bytes(msg.payload)))

    # ------------------------------------------------------------ writer

    def _write_loop(self) -> None:
        while not self._stop.is_set():
            try:
                first = self.inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            items = [first]
            while len(items) < self.batch:
                try:
                    items.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            try:
                self._handle(items)
            except Exception:
                log.exception("ingest batch failed; its messages come again (no ack was sent)")
                time.sleep(0.5)

    def _handle(self, items: list[tuple[str, str, bytes]]) -> None:
        acks: dict[tuple[str, str], int] = {}
        republish: list[str] = []
        with self.db.session() as s:
            for gw, kind, payload in items:
                try:
                    msg = messages.decode(kind, payload)
                except messages.MessageError as e:
                    self.stats["invalid"] += 1
                    s.add(Alert(gateway_id=gw, code="bad_message", detail=f"{kind}: {e.path}: {e.reason}"))
                    continue
                if kind == "events":
                    mark = self._store_events(s, gw, msg)
                    acks[(gw, msg["store_id"])] = mark
                elif kind == "state":
                    if self._on_state(s, gw, msg):
                        republish.append(gw)
                elif kind == "table_ack":
                    self._on_ack(s, gw, msg)
                elif kind == "cmd_result":
                    with self.changed:
                        self.results[msg["id"]] = msg
            self.stats["batches"] += 1
        for (gw, sid), seq in acks.items():  # committed: now the gateway may free its outbox
            self.client.publish(topics.events_ack(gw), messages.encode("events_ack", messages.events_ack(sid, seq)),
                                qos=1, retain=True)
        for gw in republish:
            self.publish_desired(gw)
        with self.changed:
            self.changed.notify_all()

    def _store_events(self, s, gw: str, msg: dict) -> int:
        sid, recs = msg["store_id"], msg["records"]
        seqs = [r["seq"] for r in recs]
        have = set(s.scalars(select(Record.seq).where(Record.gateway_id == gw, Record.store_id == sid,
                                                      Record.seq.in_(seqs))))
        rows = []
        for r in recs:
            if r["seq"] in have:
                self.stats["duplicates"] += 1
                continue
            have.add(r["seq"])
            row = {"gateway_id": gw, "store_id": sid, "seq": r["seq"], "kind": r["t"], "data": r,
                   "at": r.get("start", r.get("at")), "received_at": now()}
            row.update({f: (r.get(f) if r["t"] == "call" else None) for f in CALL_FIELDS})
            rows.append(row)
            if r["t"] == "alarm":
                s.add(Alert(gateway_id=gw, code=r.get("code", "alarm"), detail=r.get("detail", ""),
                            created_at=r.get("at") or now()))
        if rows:
            s.execute(insert(Record), rows)  # one executemany, not an ORM object per record
            self.stats["records"] += len(rows)
        return self._advance_mark(s, gw, sid, seqs)

    def _advance_mark(self, s, gw: str, sid: str, arrived: list[int]) -> int:
        """The highest seq below which every record is stored; a `dropped` record covers its gap."""
        mark = s.get(StoreMark, (gw, sid)) or StoreMark(gateway_id=gw, store_id=sid, acked_seq=0)
        s.add(mark)
        m = mark.acked_seq
        if m + 1 not in arrived and not s.scalar(select(Record.id).where(
                Record.gateway_id == gw, Record.store_id == sid, Record.seq == m + 1)):
            return m  # the next one is still missing: nothing to look at
        present = set(s.scalars(select(Record.seq).where(Record.gateway_id == gw, Record.store_id == sid,
                                                         Record.seq > m)))
        for data in s.scalars(select(Record.data).where(Record.gateway_id == gw, Record.store_id == sid,
                                                        Record.seq > m, Record.kind == "dropped")):
            present.update(range(data.get("first_seq", 0), data.get("last_seq", -1) + 1))
        while m + 1 in present:
            m += 1
        mark.acked_seq = m
        return m

    def _on_state(self, s, gw_id: str, msg: dict) -> bool:
        """Returns True when the gateway came back running an older table than it should."""
        gw = s.get(Gateway, gw_id)
        if gw is None:
            s.add(Alert(gateway_id=gw_id, code="unknown_gateway", detail="state from an unregistered gateway"))
            return False
        was_online = gw.online
        gw.online = bool(msg.get("online"))
        gw.last_seen = now()
        if gw.online:
            gw.state = msg
            gw.applied_version = msg.get("table_version")
            gw.applied_sha256 = msg.get("table_sha256")
        stale = gw.online and gw.desired_version is not None and gw.applied_version != gw.desired_version
        return bool(stale and not was_online)

    def _on_ack(self, s, gw_id: str, ack: dict) -> None:
        gw = s.get(Gateway, gw_id)
        if gw is None:
            return
        if ack["status"] == "applied":
            gw.applied_version, gw.applied_sha256, gw.last_reject = ack["version"], ack["sha256"], None
        else:
            gw.last_reject = ack.get("reason")
            s.add(Alert(gateway_id=gw_id, code="table_rejected", detail=ack.get("reason") or ""))
        for t in s.scalars(select(RolloutTarget).where(RolloutTarget.gateway_id == gw_id,
                                                       RolloutTarget.status == "pending")):
            if ack["status"] == "applied" and ack["version"] >= t.version:
                t.status, t.updated_at = "applied", now()
            elif ack["status"] == "rejected" and ack.get("version") in (t.version, 0):
                t.status, t.reason, t.updated_at = "rejected", ack.get("reason"), now()

    # ------------------------------------------------------------ controller actions

    def publish_table(self, gw: Gateway, tv: TableVersion) -> mqtt.MQTTMessageInfo:
        """Publish a signed table, retained; the returned handle tells when the broker took it."""
        payload = routing.seal(tv.body.encode(), gw.key_hex)
        info = self.client.publish(topics.table(gw.id), payload, qos=1, retain=True)
        self.published.append(info)
        del self.published[:-10000]  # keep the recent handles only
        return info

    def publish_desired(self, gateway_id: str) -> None:
        """Publish the version the gateway should run (the last one a rollout published)."""
        with self.db.session() as s:
            gw = s.get(Gateway, gateway_id)
            if gw is None or gw.desired_version is None:
                return
            tv = s.scalars(select(TableVersion).where(TableVersion.gateway_id == gateway_id,
                                                      TableVersion.version == gw.desired_version)).first()
            if tv is not None:
                self.publish_table(gw, tv)

    def publish_latest(self, gateway_id: str) -> None:
        """Make the latest compiled version the desired one and publish it (no staging)."""
        with self.db.session() as s:
            gw = s.get(Gateway, gateway_id)
            tv = s.scalars(select(TableVersion).where(TableVersion.gateway_id == gateway_id)
                           .order_by(TableVersion.version.desc()).limit(1)).first()
            if gw is not None and tv is not None:
                gw.desired_version = tv.version
                self.publish_table(gw, tv)

    def command(self, gateway_id: str, op: str, args: dict | None = None, timeout: float = 20) -> dict:
        cid = f"ctl-{int(time.time())}-{next(self._ids)}"
        self.client.publish(topics.cmd(gateway_id), messages.encode("cmd", messages.cmd(cid, op, args or {})), qos=1)
        deadline = time.monotonic() + timeout
        with self.changed:
            while cid not in self.results:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{gateway_id} did not answer {op} within {timeout}s")
                self.changed.wait(left)
            return self.results.pop(cid)

    def wait_idle(self, timeout: float = 30) -> None:
        """Wait until every queued message has been written (tests, demo shutdown)."""
        deadline = time.monotonic() + timeout
        while self.inbox.qsize() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)

    def dump(self) -> str:
        return json.dumps(self.stats)
