"""The controller's MQTT side: publish signed tables, ingest what gateways report.

paho's network thread only parses topics and queues messages; a decoder thread checks them in
batches and hands each batch to the ingest worker, a child process that does all database work
(controller.ingest.worker: beside this process, not under its GIL; while it is busy a batch grows,
up to GROUP times `batch`, into one transaction); a collector thread publishes
`events/ack` once the worker says the records are committed (DESIGN §6). Records are stored once
by (gateway, store_id, seq), whatever the broker redelivers and however many controller processes
share the ingest (`share_group`: MQTT shared subscriptions; controller.ingest.writer). What it
publishes (tables, commands): controller.ingest.actions.

No input stops ingest: a message that fails in any way (too large, invalid, or an error of the
decoder itself) is counted, alerted (`bad_message`, at most one a minute per gateway) and dropped,
and a supervisor thread starts again a decoder or collector thread that died all the same.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt

from controller import commands
from controller.db import Database
from controller.ingest.actions import BridgeActions
from controller.ingest.alerts import Refusals
from controller.ingest.decoding import Decoding
from controller.ingest.records import Written
from controller.ingest.worker import IngestWorker
from controller.ingest.writer import DB_ALERT_AFTER_S
from controller.limits import max_payload
from protocols import messages, topics

log = logging.getLogger("citygate.bridge")
INBOX_BYTES = 64 * 1024 * 1024  # payload bytes waiting to be decoded; beyond this the network thread waits
GROUP = 5  # while the worker is busy, a batch grows to this many times `batch` messages


def broker_endpoint(broker_url: str) -> tuple[str, int, bool, str | None, str | None]:
    """mqtt[s]://[user[:password]@]host[:port] -> (host, port, tls, user, password); mqtts defaults to 8883."""
    url = urlparse(broker_url)
    if url.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"broker URL {broker_url!r}: the scheme must be mqtt:// or mqtts://")
    tls = url.scheme == "mqtts"
    user = unquote(url.username) if url.username else None
    password = unquote(url.password) if url.password else None
    return url.hostname or "127.0.0.1", url.port or (8883 if tls else 1883), tls, user, password


class Bridge(BridgeActions, Decoding):
    """The controller's MQTT client. Credentials come from the arguments or from the URL's user
    info; an mqtts:// URL connects with TLS, checking the broker against `ca_file` (None: the
    system's CA store)."""

    def __init__(self, db: Database, broker_url: str, user: str | None = None, password: str | None = None,
                 client_id: str = "citygate-controller", batch: int = 200, linger_s: float = 0.01,
                 ca_file: str | None = None, db_alert_after_s: float = DB_ALERT_AFTER_S,
                 share_group: str | None = None, ingest: bool = True):
        self.db = db
        # several controller processes share the ingest: each message goes to one of the group's members
        # (MQTT shared subscriptions, `$share/{group}/...`); command replies come to every process,
        # since only the one that sent the command waits for its reply
        self.share_group = share_group
        self.kinds = topics.GATEWAY_PUBLISHES if ingest else ("cmd_result",)
        self.host, self.port, tls, url_user, url_password = broker_endpoint(broker_url)
        user, password = user or url_user, password if password is not None else url_password
        self.batch, self.linger_s = batch, linger_s  # a transaction costs about as much as 20 acks
        self.inbox: queue.Queue = queue.Queue(maxsize=100_000)
        self.commands = commands.Pending()
        self.published: list[mqtt.MQTTMessageInfo] = []
        self.changed = threading.Condition()
        self.stats = {"records": 0, "duplicates": 0, "invalid": 0, "batches": 0, "dropped": 0}  # committed
        # counted by the decoder thread only: messages refused (any reason), of them decoder errors
        # (a bug, not the gateway's fault) and oversized payloads, and command replies nobody asked for
        self.refused = {"bad_messages": 0, "decode_errors": 0, "oversized": 0, "unsolicited_replies": 0}
        self.thread_restarts = 0
        self.db_alert_after_s = db_alert_after_s
        self._refusals = Refusals()
        self._stop = threading.Event()  # no more batches
        self._halt = threading.Event()  # no more answers either
        self._received = self._committed = 0  # messages (each counter has one writing thread)
        self._lost = 0  # messages the decoder could not hand to the worker (decoder thread)
        self._bad: list[tuple] = []  # alerts for the next batch (decoder thread)
        self._bytes_in = self._bytes_out = 0  # payload bytes queued / taken (network / decoder thread)
        self.started_at = self.last_commit = time.monotonic()  # collector thread
        self.busy_since = 0.0  # network thread: when messages last began to wait (the queue was idle)
        self.worker: IngestWorker | None = None  # the process that writes (controller.ingest.worker)
        self._decoder = self._thread(self._decode_loop, "citygate-decode")
        self._collector = self._thread(self._collect_loop, "citygate-collect")
        self._supervisor = self._thread(self._supervise, "citygate-supervise")
        # Alone, a persistent session keeps what arrives while this process restarts. In a share group a
        # clean one: Mosquitto goes on handing a share of the messages to a member's persistent session
        # after it disconnected, to wait there for a process that may never come back; what a clean
        # session loses the gateways send again, as they do whatever is not acked (DESIGN §6)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=share_group is not None)
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
        self.worker = IngestWorker(self.db.url, db_alert_after_s=self.db_alert_after_s,
                                   shared=self.share_group is not None)
        if not self.worker.wait_ready(wait_s):
            log.warning("the ingest worker has not opened the database yet; messages wait for it")
        self._decoder.start()
        self._collector.start()
        self._supervisor.start()
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self.connected.wait(wait_s):
            log.warning("broker %s:%d not reachable yet; retrying in the background", self.host, self.port)
        return self

    def stop(self) -> None:
        """Stop taking messages, let the worker commit what it holds and publish its acks, then go."""
        self._stop.set()
        self._supervisor.join(10)
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
            self._subscribing = {client.subscribe(self.subscription(kind), qos=1)[1] for kind in self.kinds}

    def subscription(self, kind: str) -> str:
        """The filter this process subscribes to for one kind (shared in its group, but command replies)."""
        plain = topics.filter(kind)
        return f"$share/{self.share_group}/{plain}" if self.share_group and kind != "cmd_result" else plain

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
        size = len(msg.payload)
        if size > max_payload(kind):  # refused unread; only its size is queued, for the alert
            payload = size
        else:
            payload = msg.payload
            # a bound on the bytes waiting, not only the count: the network waits (and the broker holds
            # the rest) rather than this process holding 100,000 large payloads
            while self._bytes_in - self._bytes_out > INBOX_BYTES and not self._halt.wait(0.01):
                pass
            self._bytes_in += size
        if self.waiting <= 0:
            self.busy_since = time.monotonic()  # nothing was waiting: the lag counts from now
        self._received += 1  # this thread only: no lock (a lock here could make the network wait)
        self.inbox.put((gw, kind, payload))

    # ------------------------------------------------------------ decoder and collector

    @staticmethod
    def _thread(target, name: str) -> threading.Thread:
        return threading.Thread(target=target, name=name, daemon=True)

    def _supervise(self, every_s: float = 1.0) -> None:
        """Start again a decoder or collector thread that died (a bug: no input should kill one)."""
        while not self._stop.wait(every_s):
            for attr, loop in (("_decoder", self._decode_loop), ("_collector", self._collect_loop)):
                dead = getattr(self, attr)
                if dead.is_alive() or self._stop.is_set():
                    continue
                log.error("the %s thread died; starting another", dead.name)
                self.thread_restarts += 1
                fresh = self._thread(loop, dead.name)
                setattr(self, attr, fresh)
                fresh.start()

    def _decode_loop(self) -> None:
        """Gather a batch (what is queued, and what comes in linger_s), decode it, hand it to the worker."""
        while not self._stop.is_set():
            try:
                first = self.inbox.get(timeout=0.2)
            except queue.Empty:
                self._submit([], 0)  # only the refusals held back whose minute is over, if any
                continue
            raw = [first]
            self._gather(raw, self.batch, self.linger_s)
            # the worker still holds earlier batches: gather on, into one larger transaction (per batch the
            # writer's fixed costs and each gateway's hourly row, whatever its records: group commit)
            while len(raw) < self.batch * GROUP and not self.worker.has_room() and not self._stop.is_set():
                self._gather(raw, self.batch * GROUP, self.linger_s)
            self._bytes_out += sum(len(p) for _, _, p in raw if type(p) is not int)  # taken off the inbox
            handed = False
            try:
                try:
                    items = self._decode(raw)
                except Exception:  # not one message's fault (each is caught in _decode): drop the batch, go on
                    log.exception("a batch of %d messages could not be decoded; dropped", len(raw))
                    items = []
                handed = self._submit(items, len(raw))
            finally:
                if not handed:  # stopped, or this thread dies (the supervisor starts another): not waiting
                    self._lost += len(raw)
            if self._stop.is_set():
                return

    def _submit(self, items: list, n_messages: int) -> bool:
        """Hand decoded items and the alerts due to the worker; False once stopped."""
        bad, self._bad = self._bad + self._refusals.due(time.monotonic()), []
        if not items and not bad and not n_messages:
            return True
        try:
            return self.worker.submit(items, bad, self._stop, n_messages)
        except Exception:
            log.exception("could not hand a batch of %d messages to the ingest worker; dropped", n_messages)
            return False

    def _collect_loop(self) -> None:
        """Publish what each committed batch asks for (the worker answers in order)."""
        for written, stats in self.worker.answers(self._halt):
            for k, v in stats.items():
                if k in self.stats:
                    self.stats[k] += v
            self.last_commit = time.monotonic()
            try:
                self._publish_written(written)
            except Exception:  # the broker client refused: the gateways send again, the next ack covers it
                log.exception("could not publish what a committed batch asks for")
            finally:  # answered, even if publishing failed (or this thread dies: the supervisor starts another)
                with self.changed:
                    self._committed += stats["messages"]
                    self.changed.notify_all()

    def _publish_written(self, written: Written) -> None:
        for (gw, sid), seq in written.acks.items():  # committed: now the gateway may free its outbox
            self.client.publish(topics.events_ack(gw),
                                messages.encode("events_ack", messages.events_ack(sid, seq)), qos=1, retain=True)
        for gw, reply in written.results:
            self.commands.deliver(gw, reply)
        for gw in written.republish:
            try:
                self.publish_desired(gw)  # reads the database: it may be away
            except Exception:
                log.exception("could not publish the table %s should run", gw)

    @property
    def waiting(self) -> int:
        """Messages received and not yet committed (or dropped)."""
        return self._received - self._committed - self._lost

    def wait_idle(self, timeout: float = 30) -> bool:
        """Wait until every message received so far is committed (tests, demo shutdown)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.waiting > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
        return True
