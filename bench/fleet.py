"""A simulated fleet for the controller bench, in its own process so that its CPU is not the controller's.

N gateways, PER_CLIENT to a paho client, speaking the gateway's side of the contract. Driven by lines
on stdin and answering on stdout (`ready` once subscribed, `done` when finished):

    python bench/fleet.py --port P --gateways N MODE
    ack      check each table's signature, gateway and version, ack it (rollout)
    echo     echo bench/ping/{gw} to bench/pong/{gw} (the bare round trip)
    publish  on `go`, publish R records per gateway as fast as the broker takes them (ingest)
    drain    on `go`, send each gateway's R-record backlog one batch at a time, the next batch once
             events/ack covers the last, as the firmware does; `done` when every record was acked

A gateway's table key is sha256(gateway id), as bench/controller_bench.py seeds it. Every loop here is
bounded by --timeout.

The ack mode checks what a board checks before it trusts a table (HMAC-SHA256 over the body with
its key, its gateway id, a newer version) but does not validate the whole table again: a full
`routing.unseal` costs 0.5 ms here, so one process verifying 1,000 tables one after the other
would measure this simulator, not the controller (boards verify in parallel, each on its own chip;
the tests run the real firmware's full check).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import messages, topics  # noqa: E402

PER_CLIENT = 100
BATCH = 50  # records per events message, as firmware/gw/link.py sends them


def gateway_ids(n: int) -> list[str]:
    return [f"gw-bench-{i:04d}" for i in range(n)]


def key_of(gw: str) -> str:
    return hashlib.sha256(gw.encode()).hexdigest()


def client(port: int, cid: str, on_message=None) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=True)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    if on_message:
        c.on_message = on_message
    c.connect("127.0.0.1", port, keepalive=60)
    c.loop_start()
    return c


def events_payloads(gw: str, records: int, sid: str) -> list[tuple[bytes, int]]:
    """The gateway's backlog as encoded events messages, with the last seq of each."""
    out = []
    for first in range(1, records + 1, BATCH):
        recs = [messages.call_record(s, 1780000000 + s, "gsm1", "+380671234567", "police-102", "answered",
                                     "mariupol-102", 1, 2, 30, "ok") for s in range(first, min(first + BATCH,
                                                                                               records + 1))]
        out.append((messages.encode("events", messages.events(sid, recs)), recs[-1]["seq"]))
    return out


class Fleet:
    def __init__(self, port: int, n: int, mode: str, records: int):
        self.mode, self.ids, self.port = mode, gateway_ids(n), port
        self.keys = {gw: key_of(gw) for gw in self.ids}
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.run = os.urandom(4).hex()  # a store id per run: acks left on the broker by other runs do not match
        self.backlog = ({gw: events_payloads(gw, records, self.store_id(gw)) for gw in self.ids}
                        if mode in ("publish", "drain") else {})
        self.next_batch = dict.fromkeys(self.ids, 0)
        self.version: dict[str, int] = {}
        self.left = len(self.ids)
        self.owner: dict[str, mqtt.Client] = {}
        self.clients = []
        for i in range(0, len(self.ids), PER_CLIENT):
            c = client(port, f"fleet-{mode}-{i}", self._on_message)
            for gw in self.ids[i:i + PER_CLIENT]:
                self.owner[gw] = c
                if mode == "ack":
                    c.subscribe(topics.table(gw), qos=1)
                elif mode == "echo":
                    c.subscribe(f"bench/ping/{gw}", qos=1)
                elif mode == "drain":
                    c.subscribe(topics.events_ack(gw), qos=1)
            self.clients.append(c)
        time.sleep(0.5)  # subscriptions settled

    def store_id(self, gw: str) -> str:
        return self.run + gw[-4:]

    def _on_message(self, c, userdata, msg):
        if self.mode == "echo":
            c.publish("bench/pong/" + msg.topic.rsplit("/", 1)[1], msg.payload, qos=1)
        elif self.mode == "ack":
            gw, _ = topics.parse(msg.topic)
            c.publish(topics.table_ack(gw), messages.encode("table_ack", self._check(gw, msg.payload)), qos=1)
        elif self.mode == "drain" and not msg.retain:  # a retained ack is an earlier run's
            gw, _ = topics.parse(msg.topic)
            ack = messages.decode("events_ack", msg.payload)
            if ack["store_id"] == self.store_id(gw):
                self._send_next(gw, ack["seq"])

    def _check(self, gw: str, payload: bytes) -> dict:
        """The table ack a board would send: applied, or rejected naming the failed check."""
        env = json.loads(payload)
        body = env["body"].encode()
        doc = json.loads(body)
        sha = hashlib.sha256(body).hexdigest()
        good = hmac.compare_digest(hmac.new(bytes.fromhex(self.keys[gw]), body, "sha256").hexdigest(), env["sig"])
        why = None if good else "sig: signature does not match"
        if why is None and doc.get("gateway") != gw:
            why = "gateway: is not this gateway"
        if why is None and doc.get("version", 0) <= self.version.get(gw, 0):
            why = "version: not newer than the running one"
        if why is None:
            self.version[gw] = doc["version"]
        return messages.table_ack(doc.get("version", 0), sha, "rejected" if why else "applied", why)

    def _send_next(self, gw: str, acked: int) -> None:
        """Send the gateway's next batch once the previous one is acked; count it out when all are."""
        with self.lock:
            batches, i = self.backlog[gw], self.next_batch[gw]
            if i == -1:
                return  # drained already
            if i > 0 and acked < batches[i - 1][1]:
                return  # an older ack (retained, or a duplicate): the batch in flight is not covered yet
            if i == len(batches):
                self.next_batch[gw] = -1
                self.left -= 1
                if self.left == 0:
                    self.done.set()
                return
            self.next_batch[gw] = i + 1
        self.owner[gw].publish(topics.events(gw), batches[i][0], qos=1)

    def go(self) -> None:
        if self.mode == "publish":
            for gw in self.ids:
                for payload, _ in self.backlog[gw]:
                    self.owner[gw].publish(topics.events(gw), payload, qos=1)
            self.done.set()
        elif self.mode == "drain":
            for gw in self.ids:
                self._send_next(gw, 0)

    def close(self) -> None:
        for c in self.clients:
            c.loop_stop()
            c.disconnect()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("ack", "echo", "publish", "drain"))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--gateways", type=int, default=1000)
    ap.add_argument("--records", type=int, default=500, help="records per gateway (publish, drain)")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    fleet = Fleet(args.port, args.gateways, args.mode, args.records)
    print("ready", flush=True)
    deadline = time.monotonic() + args.timeout
    try:
        for line in sys.stdin:
            if line.strip() == "go":
                fleet.go()
                if args.mode in ("publish", "drain"):
                    fleet.done.wait(max(0.0, deadline - time.monotonic()))
                    print("done" if fleet.done.is_set() else "timeout", flush=True)
            elif line.strip() == "quit" or time.monotonic() > deadline:
                break
    finally:
        fleet.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
