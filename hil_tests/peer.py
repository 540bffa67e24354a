"""The controller's side of the wire contract, for rigs and tests.

A small paho-mqtt client that speaks DESIGN §3 as the controller does: it
publishes sealed tables (retained), collects acks and states, stores event
records idempotently by (gateway, store_id, seq) and acks them, and sends
commands. HIL scenarios use it to drive boards before (and besides) the full
controller service.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from urllib.parse import urlparse

import paho.mqtt.client as mqtt

from protocols import messages, routing, topics


class ControllerPeer:
    def __init__(self, broker: str, client_id: str = "citygate-peer", auto_ack: bool = True,
                 username: str | None = None, password: str | None = None):
        url = urlparse(broker)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 1883
        self.auto_ack = auto_ack
        self.lock = threading.Condition()
        self.acks: dict[str, list[dict]] = {}
        self.states: dict[str, dict] = {}
        self.records: dict[tuple[str, str, int], dict] = {}
        self.batches: dict[str, int] = {}
        self.duplicates = 0
        self.drop_events = 0  # the next N events messages are lost on the way (not stored, not acked)
        self.dropped = 0
        self.lost: set[tuple[str, str, int]] = set()  # (gw, store id, seq) of the records in the lost messages
        self.results: dict[str, dict] = {}
        self._ids = itertools.count(1)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self._connected = threading.Event()

    def __enter__(self) -> ControllerPeer:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError(f"controller peer could not connect to {self.host}:{self.port}")
        return self

    def __exit__(self, *exc) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def _on_connect(self, client, userdata, flags, reason, properties):
        for kind in topics.GATEWAY_PUBLISHES:
            client.subscribe(topics.filter(kind), qos=1)
        self._connected.set()

    def _on_message(self, client, userdata, msg):
        try:
            gw, kind = topics.parse(msg.topic)
        except Exception:
            return
        try:
            body = messages.decode(kind, msg.payload)
        except Exception as e:  # a contract breach is a test failure: keep it visible
            body = {"_invalid": str(e), "_raw": msg.payload[:200].decode(errors="replace")}
        ack = None
        with self.lock:
            if kind == "table_ack":
                self.acks.setdefault(gw, []).append(body)
            elif kind == "state":
                self.states[gw] = body
            elif kind == "cmd_result":
                self.results[body.get("id", "?")] = body
            elif kind == "events" and "records" in body and self.drop_events > 0:
                self.drop_events -= 1
                self.dropped += 1
                self.lost.update((gw, body.get("store_id"), r.get("seq")) for r in body["records"]
                                 if isinstance(r, dict))
            elif kind == "events" and "records" in body:
                sid = body["store_id"]
                self.batches[gw] = self.batches.get(gw, 0) + 1
                for rec in body["records"]:
                    key = (gw, sid, rec["seq"])
                    if key in self.records:
                        self.duplicates += 1
                    self.records[key] = rec
                if self.auto_ack:
                    ack = (gw, sid, self._high_water(gw, sid))
            self.lock.notify_all()
        if ack:
            self.ack_events(*ack)

    def _high_water(self, gw: str, sid: str) -> int:
        """The highest seq below which every record of this store has arrived (gaps stop it,
        except gaps a `dropped` record explains)."""
        seqs = sorted(s for g, i, s in self.records if g == gw and i == sid)
        explained = set()
        for (g, i, _), rec in self.records.items():
            if g == gw and i == sid and rec.get("t") == "dropped":
                explained.update(range(rec["first_seq"], rec["last_seq"] + 1))
        mark = 0
        have = set(seqs) | explained
        while mark + 1 in have:
            mark += 1
        return mark

    # ------------------------------------------------------------ controller actions

    def push_table(self, gw: str, body: bytes | dict, key: str | bytes) -> None:
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        self.push_payload(gw, routing.seal(body, key))

    def push_payload(self, gw: str, payload: bytes) -> None:
        self.client.publish(topics.table(gw), payload, qos=1, retain=True).wait_for_publish(10)

    def ack_events(self, gw: str, store_id: str, seq: int) -> None:
        payload = messages.encode("events_ack", messages.events_ack(store_id, seq))
        self.client.publish(topics.events_ack(gw), payload, qos=1, retain=True)

    def command(self, gw: str, op: str, args: dict | None = None, timeout: float = 20) -> dict:
        cid = f"c{next(self._ids)}"
        payload = messages.encode("cmd", messages.cmd(cid, op, args or {}))
        self.client.publish(topics.cmd(gw), payload, qos=1)
        return self.wait(lambda: self.results.get(cid), timeout, f"result of {op} on {gw}")

    def clear_retained(self, gw: str) -> None:
        for kind in ("table", "events_ack"):
            self.client.publish(topics.topic(gw, kind), b"", qos=1, retain=True).wait_for_publish(10)

    # ------------------------------------------------------------ observation

    def wait(self, predicate, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
                self.lock.wait(min(left, 0.5))

    def wait_ack(self, gw: str, version: int | None = None, timeout: float = 30) -> dict:
        def found():
            for ack in reversed(self.acks.get(gw, [])):
                if version is None or ack.get("version") == version:
                    return ack
            return None
        return self.wait(found, timeout, f"table ack from {gw} for version {version}")

    def wait_state(self, gw: str, predicate=lambda s: s.get("online"), timeout: float = 30) -> dict:
        return self.wait(lambda: (s := self.states.get(gw)) and predicate(s) and s, timeout, f"state of {gw}")

    def calls(self, gw: str) -> list[dict]:
        with self.lock:
            return [r for (g, _, _), r in sorted(self.records.items()) if g == gw and r.get("t") == "call"]

    def wait_calls(self, gw: str, n: int, timeout: float = 60) -> list[dict]:
        self.wait(lambda: len(self.calls(gw)) >= n, timeout, f"{n} call records from {gw}")
        return self.calls(gw)
