"""The gateway's link to the controller over MQTT (DESIGN §3).

Keeps one session up with capped exponential backoff, announces itself with a
retained birth state (the last will says offline), verifies, stores, applies
and acks tables, sends the outbox in batches and frees it on `events/ack`,
and runs the controller's commands. Calls are routed whether or not this link
is up: nothing here is awaited by the call machine.
"""

import asyncio
import gc
import json

from gw import FW_VERSION
from gw.mqtt import MQTTClient
from protocols import messages, routing, topics
from protocols.sign import sha256_hex

BATCH = 50
RESEND_AFTER_MS = 30000
STATE_EVERY_S = 60


def parse_url(url):
    """mqtt://host:port -> (host, port)."""
    if not url.startswith("mqtt://"):
        raise ValueError("broker must be mqtt://host:port, got " + url)
    hostport = url[7:].split("/")[0]
    if ":" in hostport:
        host, port = hostport.rsplit(":", 1)
        return host, int(port)
    return hostport, 1883


class Link:
    def __init__(self, gw, cfg, log=print):
        self.gw = gw  # the app: store, clock, lines, table, key, hw
        self.id = cfg["id"]
        self.cfg = cfg
        self.log = log
        self.client = None
        self.wake = asyncio.Event()
        self.sent_upto = 0
        self.sent_ms = 0
        self.backoff_ms = 1000
        self.connects = 0
        self.reported_ready = None

    # ------------------------------------------------------------ session

    async def run(self):
        host, port = parse_url(self.cfg["broker"])
        while True:
            try:
                await self._session(host, port)
                self.backoff_ms = 1000
            except Exception as e:
                cause = getattr(self.client, "error", None)
                self.log("link: " + repr(e) + (" (cause: %r)" % (cause,) if cause else ""))
            if self.client is not None:
                self.client.close()
                self.client = None
            await asyncio.sleep_ms(self.backoff_ms)
            self.backoff_ms = min(self.backoff_ms * 2, 60000)

    async def _session(self, host, port):
        will = (topics.state(self.id), messages.encode("will", messages.will()), 1, True)
        self.client = c = MQTTClient(self.id, host, port, user=self.cfg.get("user") or self.id,
                                     password=self.cfg.get("password"), keepalive=30, will=will,
                                     on_message=self._on_message, clean_session=False)
        await c.connect()
        self.connects += 1
        self.log("link: connected to %s:%d" % (host, port))
        for kind in topics.GATEWAY_READS:
            await c.subscribe(topics.topic(self.id, kind), 1)
        await self.publish_state()
        self.sent_upto = self.gw.store.acked_seq
        ticks = 0
        while c.connected:
            await self._send_events()
            try:
                await asyncio.wait_for_ms(self.wake.wait(), 1000)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()
            ticks += 1
            if ticks % STATE_EVERY_S == 0 or self._readiness() != self.reported_ready:
                await self.publish_state()

    def _readiness(self):
        """Which ports are up: a change is news for the controller."""
        return [n for n, line in self.gw.lines.items() if line.ready]

    def poke(self):
        """A record was stored: send it soon."""
        self.wake.set()

    # ------------------------------------------------------------ outbound

    async def publish_state(self):
        if self.client is None or not self.client.connected:
            return
        g = self.gw
        table = g.table
        self.reported_ready = self._readiness()
        gc.collect()
        state = messages.state(
            online=True, fw=FW_VERSION, store_id=g.store.store_id, boot=g.store.boot,
            table_version=table.version if table else None, table_sha256=table.sha256 if table else None,
            last_seq=g.store.last_seq, ports={n: line.status() for n, line in g.lines.items()},
            heap_free=gc.mem_free(), uptime_s=g.uptime_s(), clock=g.clock.now() if g.clock.synced else None)
        state["profile"] = g.profile
        state["heap_min_free"] = g.heap_min_free
        state["calls"] = g.machine.calls
        state["outbox"] = g.store.last_seq - g.store.acked_seq
        state["calls_in_progress"] = g.machine.in_progress()
        await self.client.publish(topics.state(self.id), messages.encode("state", state), 1, True)

    async def _send_events(self):
        store = self.gw.store
        if store.acked_seq > self.sent_upto:
            self.sent_upto = store.acked_seq
        if self.sent_upto > store.acked_seq and self.gw.clock.since_ms(self.sent_ms) > RESEND_AFTER_MS:
            self.sent_upto = store.acked_seq  # no ack in time: send again from the last ack
        while self.client is not None and self.client.connected:
            records = [r for r in store.pending(BATCH) if r["seq"] > self.sent_upto]
            if not records:
                return
            payload = messages.encode("events", messages.events(store.store_id, records))
            del records
            await self.client.publish(topics.events(self.id), payload, 1, False)
            self.sent_upto = json.loads(payload)["records"][-1]["seq"]
            self.sent_ms = self.gw.clock.ms()
            gc.collect()

    # ------------------------------------------------------------ inbound

    async def _on_message(self, topic, payload, retained):
        try:
            gw, kind = topics.parse(topic)
        except Exception:
            gw = kind = None
        if gw != self.id:  # some brokers (amqtt) replay other gateways' retained messages
            self.log("link: ignored message on " + topic)
            return
        if payload is None:  # the client could not hold it
            self.log("link: %s message dropped: no room in the heap" % kind)
            if kind == "table":
                why = "envelope: does not fit in this gateway's memory"
                await self._ack_table(None, None, "rejected", why)
                self.gw.store.append({"t": "alarm", "at": self.gw.clock.now(), "code": "table_too_big",
                                      "detail": why})
            return
        if kind == "table":
            await self._on_table(payload)
        elif kind == "events_ack":
            try:
                ack = messages.decode("events_ack", payload)
            except Exception as e:
                self.log("link: bad events ack " + repr(e))
                return
            if ack["store_id"] == self.gw.store.store_id:
                self.gw.store.ack(ack["seq"])
                self.wake.set()
        elif kind == "cmd":
            await self._on_cmd(payload)

    async def _on_table(self, payload):
        g = self.gw
        digest = sha256_hex(payload)
        if digest == g.table_payload_sha:
            await self._ack_table(g.table.version, g.table.sha256, "applied", None)
            return
        current = g.table.version if g.table else 0
        if type(payload) is not bytearray:
            payload = bytearray(payload)
        gc.collect()
        try:
            table, sig = routing.unseal_into(payload, g.key, self.id, current)  # payload now holds the body
        except routing.TableError as e:
            if g.table is not None and getattr(e, "sha256", None) == g.table.sha256:
                g.table_payload_sha = digest  # the table we run, delivered again (retained, after a boot)
                await self._ack_table(g.table.version, g.table.sha256, "applied", None)
                return
            why = "%s: %s" % (e.path, e.reason)
            self.log("link: table rejected: " + why)
            del payload
            await self._ack_table(getattr(e, "version", None), getattr(e, "sha256", None), "rejected", why)
            g.store.append({"t": "alarm", "at": g.clock.now(), "code": "table_rejected", "detail": why})
            return
        g.store.save_table(payload, table.version, sig)
        del payload
        g.apply_table(table, digest)
        self.log("link: table v%d applied" % table.version)
        await self._ack_table(table.version, table.sha256, "applied", None)
        await self.publish_state()

    async def _ack_table(self, version, sha, status, reason):
        if version is None or version < 0:
            version = 0
        ack = messages.table_ack(version, sha, status, reason)
        await self.client.publish(topics.table_ack(self.id), messages.encode("table_ack", ack), 1, False)

    async def _on_cmd(self, payload):
        try:
            cmd = messages.decode("cmd", payload)
        except Exception as e:
            self.log("link: bad cmd " + repr(e))
            return
        op = cmd["op"]
        ok, result, error = True, None, None
        if op == "resend_state":
            await self.publish_state()
            result = "sent"
        elif op == "selftest":
            result = await self.gw.selftest()
            ok = result["ok"]
            if not ok:
                error = "; ".join(result["problems"])
        elif op == "reboot":
            result = "rebooting"
        elif op == "meminfo":
            import micropython

            gc.collect()
            micropython.mem_info()  # printed on the console: free, max free block, fragmentation
            result = {"heap_free": gc.mem_free(), "heap_alloc": gc.mem_alloc()}
        elif op == "counters":
            seq = self.gw.store.counters_record(self.gw.clock.now())
            result = {"seq": seq}
            self.wake.set()
        else:
            ok, error = False, "unknown op " + op
        msg = messages.cmd_result(cmd["id"], ok, result=result if ok else None, error=error)
        await self.client.publish(topics.cmd_result(self.id), messages.encode("cmd_result", msg), 1, False)
        if op == "reboot":
            await asyncio.sleep_ms(500)
            self.gw.hw.reset()
