"""The controller's MQTT side: publish signed tables, ingest what gateways report.

paho's network thread only parses topics and queues messages; a decoder thread checks them in
batches and hands each batch to the ingest worker, a child process that does all database work
(controller.ingest_worker: beside this process, not under its GIL); a collector thread publishes
`events/ack` once the worker says the records are committed (DESIGN §6). Records are stored once
by (gateway, store_id, seq), whatever the broker redelivers.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from sqlalchemy import select

from controller.db import Database
from controller.ingest import Written, prepare_events
from controller.ingest_worker import IngestWorker
from controller.models import Gateway, TableVersion, now
from protocols import messages, routing, topics

log = logging.getLogger("citygate.bridge")


def broker_endpoint(broker_url: str) -> tuple[str, int, bool, str | None, str | None]:
    """mqtt[s]://[user[:password]@]host[:port] -> (host, port, tls, user, password); mqtts defaults to 8883."""
    url = urlparse(broker_url)
    if url.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"broker URL {broker_url!r}: the scheme must be mqtt:// or mqtts://")
    tls = url.scheme == "mqtts"
    user = unquote(url.username) if url.username else None
    password = unquote(url.password) if url.password else None
    return url.hostname or "127.0.0.1", url.port or (8883 if tls else 1883), tls, user, password


class Bridge:
    """The controller's MQTT client. Credentials come from the arguments or from the URL's user
    info; an mqtts:// URL connects with TLS, checking the broker against `ca_file` (None: the
    system's CA store)."""

    def __init__(self, db: Database, broker_url: str, user: str | None = None, password: str | None = None,
                 client_id: str = "citygate-controller", batch: int = 200, linger_s: float = 0.01,
                 ca_file: str | None = None):
        self.db = db
        self.host, self.port, tls, url_user, url_password = broker_endpoint(broker_url)
        user, password = user or url_user, password if password is not None else url_password
        self.batch, self.linger_s = batch, linger_s  # a transaction costs about as much as 20 acks
        self.inbox: queue.Queue = queue.Queue(maxsize=100_000)
        self.results: dict[str, dict] = {}
        self.published: list[mqtt.MQTTMessageInfo] = []
        self.changed = threading.Condition()
        self.stats = {"records": 0, "duplicates": 0, "invalid": 0, "batches": 0}  # committed
        self._ids = itertools.count(1)
        self._stop = threading.Event()  # no more batches
        self._halt = threading.Event()  # no more answers either
        self._received = self._committed = 0  # messages (each counter has one writing thread)
        self.worker: IngestWorker | None = None  # the process that writes (controller.ingest_worker)
        self._decoder = threading.Thread(target=self._decode_loop, name="citygate-decode", daemon=True)
        self._collector = threading.Thread(target=self._collect_loop, name="citygate-collect", daemon=True)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        if user:
            self.client.username_pw_set(user, password)
        if tls:
            self.client.tls_set(ca_certs=ca_file)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self._sub_lock, self._subscribing = threading.Lock(), set()
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.reconnect_delay_set(1, 30)
        # a rollout publishes a table to every gateway at once: paho's default of 20 QoS 1 messages in
        # flight would make that 50 broker round trips for 1,000 gateways
        self.client.max_inflight_messages_set(1000)
        self.connected = threading.Event()

    # ------------------------------------------------------------ lifecycle

    def start(self, wait_s: float = 15) -> Bridge:
        self.worker = IngestWorker(self.db.url)
        if not self.worker.wait_ready(wait_s):
            log.warning("the ingest worker has not opened the database yet; messages wait for it")
        self._decoder.start()
        self._collector.start()
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(wait_s):
            log.warning("broker %s:%d not reachable yet; retrying in the background", self.host, self.port)
        return self

    def stop(self) -> None:
        """Stop taking messages, let the worker commit what it holds and publish its acks, then go."""
        self._stop.set()
        self._decoder.join(10)
        if self.worker is not None:
            self.worker.stop()
            self._collector.join(10)
        self._halt.set()
        self.client.loop_stop()
        self.client.disconnect()

    def _on_connect(self, client, userdata, flags, reason, properties):
        if reason.is_failure:
            log.error("broker refused the controller: %s", reason)
            return
        with self._sub_lock:
            self._subscribing = {client.subscribe(topics.filter(kind), qos=1)[1] for kind in topics.GATEWAY_PUBLISHES}

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        """Connected means subscribed: only once the broker granted every filter can nothing be missed."""
        with self._sub_lock:
            self._subscribing.discard(mid)
            if any(getattr(r, "is_failure", False) for r in reason_codes):
                log.error("broker refused a subscription of the controller: %s", reason_codes)
            elif not self._subscribing:
                self.connected.set()

    def _on_message(self, client, userdata, msg):
        """Only queue: the network loop must never wait for decoding or the database."""
        try:
            gw, kind = topics.parse(msg.topic)
        except Exception:
            return
        self._received += 1  # this thread only: no lock (a lock here could make the network wait)
        self.inbox.put((gw, kind, msg.payload))

    # ------------------------------------------------------------ decoder and collector

    def _decode_loop(self) -> None:
        """Gather a batch (what is queued, and what comes in linger_s), decode it, hand it to the worker."""
        while not self._stop.is_set():
            try:
                first = self.inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            raw = [first]
            linger = time.monotonic() + self.linger_s
            while len(raw) < self.batch:
                try:
                    raw.append(self.inbox.get(timeout=max(0.0, linger - time.monotonic())))
                except queue.Empty:
                    break
            items, bad, received = [], [], now()
            for gw, kind, payload in raw:
                try:
                    msg = messages.decode(kind, payload)
                    items.append((gw, kind, prepare_events(gw, msg, received) if kind == "events" else msg))
                except messages.MessageError as e:
                    bad.append((gw, "bad_message", f"{kind}: {e.path}: {e.reason}"))
            if not self.worker.submit(items, bad, self._stop):
                return

    def _collect_loop(self) -> None:
        """Publish what each committed batch asks for (the worker answers in order)."""
        for written, stats in self.worker.answers(self._halt):
            for k, v in stats.items():
                if k != "messages":
                    self.stats[k] += v
            self._publish_written(written, stats["messages"])

    def _publish_written(self, written: Written, committed: int) -> None:
        for (gw, sid), seq in written.acks.items():  # committed: now the gateway may free its outbox
            self.client.publish(topics.events_ack(gw), messages.encode("events_ack", messages.events_ack(sid, seq)),
                                qos=1, retain=True)
        for gw in written.republish:
            self.publish_desired(gw)
        with self.changed:
            for r in written.results:
                self.results[r["id"]] = r
            self._committed += committed
            self.changed.notify_all()

    # ------------------------------------------------------------ controller actions

    def publish_table(self, gw: Gateway, tv: TableVersion) -> mqtt.MQTTMessageInfo:
        return self.publish_sealed(gw.id, gw.key_hex, tv.body)

    def publish_sealed(self, gateway_id: str, key_hex: str, body: bytes | str) -> mqtt.MQTTMessageInfo:
        """Sign a table body and publish it, retained; the returned handle tells when the broker took it."""
        payload = routing.seal(body.encode() if isinstance(body, str) else body, key_hex)
        info = self.client.publish(topics.table(gateway_id), payload, qos=1, retain=True)
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

    def wait_idle(self, timeout: float = 30) -> bool:
        """Wait until every message received so far is committed (tests, demo shutdown)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while self._committed < self._received:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
        return True

    def dump(self) -> str:
        return json.dumps(self.stats)
