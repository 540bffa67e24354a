"""Wiring and main loop of the gateway.

Boot: mount flash, open the store (boot count, store id, outbox, counters),
load the last table that verified, start every line, the clock, the call
machine and the controller link, then feed the watchdog only while the main
loop sees every part healthy.
"""

import asyncio
import gc
import time

from gw import profiles
from gw.calls import CallMachine
from gw.clock import Clock
from gw.store import Store
from protocols import routing
from protocols.sign import sha256_hex

COUNTERS_EVERY_S = 3600


_T0 = time.ticks_ms()


def log(*args):
    """Console line stamped with seconds since boot."""
    print("[%d]" % (time.ticks_diff(time.ticks_ms(), _T0) // 1000), *args)


def _driver(kind):
    if kind == "gsm":
        from gw.gsm import GsmLine

        return GsmLine
    if kind == "fxo":
        from gw.fxo import FxoLine

        return FxoLine
    raise ValueError("no line driver for port kind %r" % kind)


class Gateway:
    def __init__(self, hw, root):
        self.hw = hw
        self.profile = hw.profile
        self.t0 = time.ticks_ms()
        # All code is imported first, while the heap is whole: a store recovering from a power
        # cut or a big table leaves it fragmented, and a module's bytecode needs one piece.
        drivers = {}
        for port in hw.ports():
            kind = hw.port_kind(port)
            if kind not in drivers:
                drivers[kind] = _driver(kind)
        self.drivers = drivers
        from gw.link import Link

        gc.collect()
        self.store = Store.open(root)
        for note in self.store.notes:
            log("store: " + note)
        cfg = self.store.config()
        if cfg is None and hw.provision():
            self.store.write_config(hw.provision())
            cfg = self.store.config()
        if cfg is None:
            raise RuntimeError("no device config on flash: provision this board first (citygate board provision)")
        self.cfg = cfg
        self.id = cfg["id"]
        self.key = cfg["key"]
        self.clock = Clock(log)
        self.table = None
        self.table_payload_sha = None
        self.lines = {}
        for port in sorted(hw.ports()):
            self.lines[port] = self._make_line(port)
        gc.collect()
        self._load_stored_table()
        self.machine = CallMachine(self.lines, self.store, self.clock, hw, lambda: self.table, log,
                                   on_record=self._on_record)
        self.link = Link(self, cfg, log)
        self.loop_ticks = 0
        self.heap_min_free = gc.mem_free()  # the low-water mark, for the state and the bench

    def _make_line(self, port):
        reader, writer = self.hw.open_line(port)
        return self.drivers[self.hw.port_kind(port)](port, reader, writer, log=log)

    def _load_stored_table(self):
        payload = self.store.load_table()
        if payload is None:
            log("table: none stored yet")
            return
        sig = self.store.table_sig
        try:
            if sig:  # the body and its signature, as the link stores them
                table = routing.verify_body(payload, sig, self.key, self.id, 0)
                digest = None  # the next retained envelope is checked in full, then re-acked
            else:
                digest = sha256_hex(payload)
                table = routing.unseal(payload, self.key, self.id, 0)
        except routing.TableError as e:
            log("table: stored table unusable: %s: %s" % (e.path, e.reason))
            return
        del payload
        self.apply_table(table, digest)
        log("table: v%d loaded from flash" % table.version)

    def apply_table(self, table, payload_sha):
        self.table = table
        self.table_payload_sha = payload_sha
        if table.issued_at:
            self.clock.floor = max(self.clock.floor, table.issued_at)
        gc.collect()

    def uptime_s(self):
        return time.ticks_diff(time.ticks_ms(), self.t0) // 1000

    def _on_record(self, rec):
        self._heap_sample()
        self.link.poke()

    def _heap_sample(self):
        """Collect, then note the live heap's low-water mark (once a second and after each call)."""
        gc.collect()
        free = gc.mem_free()
        if free < self.heap_min_free:
            self.heap_min_free = free

    async def selftest(self):
        problems = []
        for name, line in self.lines.items():
            if not line.ready:
                problems.append(name + " not ready")
        if self.table is None:
            problems.append("no routing table")
        if not self.clock.synced:
            problems.append("clock not synced to network time")
        gc.collect()
        free = gc.mem_free()
        return {"ok": not problems, "problems": problems, "heap_free": free, "table_version":
                self.table.version if self.table else None, "ports": {n: ln.status() for n, ln in self.lines.items()},
                "outbox": self.store.last_seq - self.store.acked_seq}

    async def _counters(self):
        while True:
            await asyncio.sleep(COUNTERS_EVERY_S)
            self.store.counters_record(self.clock.now())
            self.link.poke()

    async def _main_loop(self):
        """Feed the watchdog only while the event loop runs and memory is sane."""
        while True:
            await asyncio.sleep_ms(1000)
            self.loop_ticks += 1
            self._heap_sample()
            if gc.mem_free() < 4096:
                gc.collect()
            self.hw.wdt_feed()

    async def run(self):
        for line in self.lines.values():
            asyncio.create_task(line.start())
        asyncio.create_task(self.clock.keep_synced(list(self.lines.values())))
        asyncio.create_task(self._counters())
        asyncio.create_task(self.link.run())
        log("gateway %s up: profile %s, ports %s, fw ready" % (self.id, self.profile, ",".join(self.lines)))
        await self._main_loop()


def run(hw, root):
    """Start the gateway on a mounted flash (main.py mounts it before any code is imported)."""
    profiles.get(hw.profile)
    gw = Gateway(hw, root)
    asyncio.run(gw.run())
