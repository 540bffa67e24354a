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
import sys
from collections import namedtuple

from gw import FW_VERSION, tables
from gw.mqtt import TLS, MQTTClient, parse_url
from protocols import messages, topics

# gw.tablein, gw.jstream and gw.bodyfile (~15 KB of bytecode on the unix port) are imported when the
# first table arrives, not at boot: a 220K board compiling everything from source has no room for them then.
MAX_CMD = 4096  # a command bigger than this is refused (too_big); only its id is looked for
TOO_BIG = tables.TOO_BIG
STREAM_MIN_FREE = 60000  # heap the streaming code needs to be compiled and still leave room for a table

BATCH = 50
RESEND_AFTER_MS = 30000
STATE_EVERY_S = 60
PLACED_KEPT = 16  # call / probe command ids remembered: a redelivered one gets its first answer again

# All the link sees of the gateway besides its store, clock and {port: line} (gw.app fills it in): profile;
# status() -> (uptime_s, heap_min_free, calls, calls_in_progress); for gw.tables table() (None: none),
# apply_table(table or None), reload_table() (the stored one), calls_up() (any line held); the commands:
# place_call(cmd id, args) and probe(target) -> (ok, result, error), async selftest() -> dict, reset().
Board = namedtuple("Board", ("profile", "status", "table", "apply_table", "reload_table", "calls_up",
                             "place_call", "probe", "selftest", "reset"))


class Link:
    def __init__(self, cfg, store, clock, lines, board, log=print):
        self.store, self.clock, self.lines, self.board, self.log = store, clock, lines, board, log
        self.id, self.key, self.cfg = cfg["id"], cfg["key"], cfg
        self.table_sha = None  # sha-256 of the envelope the running table came in (a redelivery is acked at once)
        self.client = None
        self.wake = asyncio.Event()
        self.sent_upto = 0
        self.sent_ms = 0  # when the ack mark last moved, or the first batch beyond it went out
        self.backoff_ms = 1000
        self.reported_ready = None
        self.tls_alarmed = False  # one broker_tls alarm per outage, not one per retry
        self.staged = 0  # tables streamed in so far: names their staging files
        self.placed = []  # (cmd id, answer) of the last call / probe commands run

    # ------------------------------------------------------------ session

    async def run(self):
        host, port, secure = parse_url(self.cfg["broker"])
        while True:
            try:
                await self._session(host, port, secure)
                self.backoff_ms = 1000
            except Exception as e:
                cause = getattr(self.client, "error", None)
                self.log("link: " + repr(e) + (" (cause: %r)" % (cause,) if cause else ""))
                self._tls_alarm(e)
            if self.client is not None:
                self.client.close()
                self.client = None
            await asyncio.sleep_ms(self.backoff_ms)
            self.backoff_ms = min(self.backoff_ms * 2, 60000)

    async def _session(self, host, port, secure):
        will = (topics.state(self.id), messages.encode("will", messages.will()), 1, True)
        ctx = None
        if secure:  # the broker's certificate is checked against broker_ca, or there is no session
            from gw import tls  # ~3 KB of heap: only a board with an mqtts:// broker pays it

            if not tls.clock_ready(self.clock.now() if self.clock.synced else None):
                raise OSError("tls: waiting for the network's time to check the broker's certificate dates")
            ctx = tls.context(self.cfg.get("broker_ca"))
        self.client = c = MQTTClient(self.id, host, port, user=self.cfg.get("user") or self.id,
                                     password=self.cfg.get("password"), keepalive=30, will=will,
                                     on_message=self._on_message, clean_session=False, on_stream=self._on_stream,
                                     ssl=ctx)
        del ctx
        await c.connect()
        self.tls_alarmed = False
        self.log("link: connected to %s:%d" % (host, port))
        for kind in topics.GATEWAY_READS:
            await c.subscribe(topics.topic(self.id, kind), 1)
        await self.publish_state()
        self.sent_upto = self.store.acked_seq
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

    def _tls_alarm(self, e):
        """A broker whose certificate does not verify, or a config that cannot check one, is an alarm."""
        if self.tls_alarmed or getattr(e, "code", None) != TLS:  # MQTTError(TLS) or gw.tls.TLSConfigError
            return
        self.tls_alarmed = True
        why = e.args[-1] if e.args and isinstance(e.args[-1], str) else repr(e)
        try:
            self.store.append({"t": "alarm", "at": self.clock.now(), "code": "broker_tls", "detail": why[:200]})
        except Exception as err:  # the link keeps retrying whatever the store says
            self.log("link: alarm not stored: " + repr(err))

    def _readiness(self):
        """Which ports are up: a change is news for the controller."""
        return [n for n, line in self.lines.items() if line.ready]

    def poke(self):
        """A record was stored: send it soon."""
        self.wake.set()

    # ------------------------------------------------------------ outbound

    async def publish_state(self):
        if self.client is None or not self.client.connected:
            return
        store, table, clock = self.store, self.board.table(), self.clock
        self.reported_ready = self._readiness()
        gc.collect()
        uptime_s, heap_min_free, calls, in_progress = self.board.status()
        state = messages.state(
            online=True, fw=FW_VERSION, store_id=store.store_id, boot=store.boot,
            table_version=table.version if table else None, table_sha256=table.sha256 if table else None,
            last_seq=store.last_seq, ports={n: line.status() for n, line in self.lines.items()},
            heap_free=gc.mem_free(), uptime_s=uptime_s, clock=clock.now() if clock.synced else None)
        state["profile"] = self.board.profile
        state["heap_min_free"] = heap_min_free
        state["calls"] = calls
        state["outbox"] = store.last_seq - store.acked_seq
        state["calls_in_progress"] = in_progress
        await self.client.publish(topics.state(self.id), messages.encode("state", state), 1, True)

    async def _send_events(self):
        """Send what is not acked yet, a batch at a time. The resend clock runs from the last time the ack
        mark moved (or the first send after it caught up), not from the last send: a batch lost on the way
        leaves the mark below it while newer batches go on being stored, and a board that keeps sending
        would otherwise never send it again until it reconnects."""
        store = self.store
        if store.acked_seq > self.sent_upto:
            self.sent_upto = store.acked_seq
        if self.sent_upto > store.acked_seq and self.clock.since_ms(self.sent_ms) > RESEND_AFTER_MS:
            self.sent_upto, self.sent_ms = store.acked_seq, self.clock.ms()  # no progress in time: from the ack
        while self.client is not None and self.client.connected:
            records = [r for r in store.pending(BATCH) if r["seq"] > self.sent_upto]
            if not records:
                return
            payload = messages.encode("events", messages.events(store.store_id, records))
            del records
            caught_up = self.sent_upto <= store.acked_seq
            await self.client.publish(topics.events(self.id), payload, 1, False)
            self.sent_upto = json.loads(payload)["records"][-1]["seq"]
            if caught_up:  # the first batch beyond the mark: its ack is awaited from now
                self.sent_ms = self.clock.ms()
            gc.collect()

    # ------------------------------------------------------------ inbound

    def _on_stream(self, topic, size, retained):
        """gw.mqtt asks before reading a message: a table always goes to flash as it arrives, and
        anything else bigger than the board takes is only drained (a command keeps its id)."""
        try:
            gw, kind = topics.parse(topic)
        except Exception:
            gw = kind = None
        if gw == self.id and kind == "table":
            if "gw.tablein" not in sys.modules:
                gc.collect()  # what is free, not what garbage hides
            if "gw.tablein" not in sys.modules and gc.mem_free() < STREAM_MIN_FREE:
                return None  # no room to compile the streaming code: the table is read whole, as before
            from gw.tablein import TableIn

            self.staged += 1
            return TableIn(self.store.table_stage(self.staged % 8), self.key, size, tables.TABLE_HEAD)
        if size > MAX_CMD:
            from gw.tablein import CmdIn, Drain

            return CmdIn(size) if kind == "cmd" else Drain(size)
        return None

    async def _on_message(self, topic, payload, retained):
        try:
            gw, kind = topics.parse(topic)
        except Exception:
            gw = kind = None
        if gw != self.id:  # some brokers (amqtt) replay other gateways' retained messages
            self.log("link: ignored message on " + topic)
            if hasattr(payload, "abort"):
                payload.abort()
            return
        sink = getattr(payload, "kind", None)  # a gw.tablein sink, or None for a message read whole
        if kind == "table":
            if type(payload) is bytearray:  # no room to stream it (the code could not be loaded): read whole
                await tables.on_table_ram(self, payload)
                return
            if sink != "table":  # the client could not hold it
                await tables.refuse_table(self, None, None, TOO_BIG + ": " + "does not fit in this gateway's memory")
                return
            try:
                await tables.on_table(self, payload)
            finally:
                payload.abort()  # a staged table that was not applied is removed
        elif kind == "cmd":
            if payload is None or sink == "cmd":
                cid = payload.id() if payload is not None else None
                size = payload.size if payload is not None else 0
                why = "%s: the command is %d bytes, more than the %d a gateway takes" % (TOO_BIG, size, MAX_CMD)
                if payload is None:
                    why = TOO_BIG + ": the command does not fit in this gateway's memory"
                await self._cmd_error(cid, why)
                return
            await self._on_cmd(payload)
        elif payload is None or type(payload) is not bytearray:
            self.log("link: %s message dropped: bigger than a gateway takes" % kind)
        elif kind == "events_ack":
            try:
                ack = messages.decode("events_ack", payload)
            except Exception as e:
                self.log("link: bad events ack " + repr(e))
                return
            if ack["store_id"] == self.store.store_id:
                if ack["seq"] > self.store.acked_seq:  # progress: the resend clock starts again
                    self.sent_ms = self.clock.ms()
                self.store.ack(ack["seq"])
                self.wake.set()

    async def _ack_table(self, version, sha, status, reason):
        if version is None or version < 0:
            version = 0
        ack = messages.table_ack(version, sha, status, reason)
        await self.client.publish(topics.table_ack(self.id), messages.encode("table_ack", ack), 1, False)

    async def _on_cmd(self, payload):
        try:
            cmd = messages.decode("cmd", payload)
        except Exception as e:
            why = "%s: %s" % (e.path, e.reason) if hasattr(e, "reason") else repr(e)
            bad = "bad_number: " if getattr(e, "path", None) in ("args.agent", "args.citizen") else "bad_command: "
            await self._cmd_error(_cmd_id(payload), bad + why)
            return
        op = cmd["op"]
        try:
            ok, result, error = await self._run(op, cmd)
        except Exception as e:  # a command that fails still gets its answer
            ok, result, error = False, None, "failed: " + repr(e)
        msg = messages.cmd_result(cmd["id"], ok, result=result if ok else None, error=error)
        await self.client.publish(topics.cmd_result(self.id), messages.encode("cmd_result", msg), 1, False)
        if op == "reboot":
            await asyncio.sleep_ms(500)
            self.board.reset()

    async def _run(self, op, cmd):
        """-> (ok, result, error) of an op; `call` and `probe` (DESIGN §5a) answer at once and run on."""
        if op == "call" or op == "probe":  # QoS 1 may deliver a command twice: a call is placed once
            for cid, answer in self.placed:
                if cid == cmd["id"]:
                    return answer
            if op == "call":
                answer = self.board.place_call(cmd["id"], cmd["args"])
            else:
                answer = self.board.probe(cmd["args"]["target"])
            self.placed = self.placed[-(PLACED_KEPT - 1):] + [(cmd["id"], answer)]
            return answer
        if op == "resend_state":
            await self.publish_state()
            return True, "sent", None
        if op == "selftest":
            result = await self.board.selftest()
            return result["ok"], result, None if result["ok"] else "; ".join(result["problems"])
        if op == "reboot":
            return True, "rebooting", None
        if op == "meminfo":
            import micropython

            gc.collect()
            micropython.mem_info()  # printed on the console: free, max free block, fragmentation
            return True, {"heap_free": gc.mem_free(), "heap_alloc": gc.mem_alloc()}, None
        if op == "counters":
            seq = self.store.counters_record(self.clock.now())
            self.wake.set()
            return True, {"seq": seq}, None
        return False, None, "unknown_op: " + op[:64]

    async def _cmd_error(self, cid, why):
        """An error cmd/result for a command that names a usable id; one without is only logged."""
        self.log("link: bad command (id %r): %s" % (cid, why))
        if cid is None:
            return
        msg = messages.cmd_result(cid, False, error=why[:200])
        await self.client.publish(topics.cmd_result(self.id), messages.encode("cmd_result", msg), 1, False)


def _cmd_id(payload):
    """The id of a command that broke the contract, when it has a usable one (1-64 characters)."""
    try:
        obj = json.loads(payload)
        cid = obj.get("id") if type(obj) is dict else None
    except Exception:
        return None
    return cid if type(cid) is str and 1 <= len(cid) <= 64 else None
