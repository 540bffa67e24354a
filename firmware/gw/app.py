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

COUNTERS_EVERY_S = 3600
FREE_MIN = 16384  # flash and heap: less free than this fails the self-test
current = None  # the running Gateway: `citygate check` reaches it over the REPL once main is interrupted


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
        from gw.link import Board, Link

        gc.collect()
        # an emulated board may be given a smaller outbox (hw_unix.store_options); an ESP32 keeps the defaults
        self.store = Store.open(root, **(hw.store_options() if hasattr(hw, "store_options") else {}))
        for note in self.store.notes:
            log("store: " + note)
        cfg = self.store.config()
        offered = hw.provision()  # what the rig or the technician gives now wins over what the flash kept
        if offered and offered != cfg:
            if cfg is not None:
                log("config: replaced by the provisioned one (" + ", ".join(
                    k for k in sorted(offered) if offered.get(k) != cfg.get(k))
                    + ")")
            self.store.write_config(offered)
            cfg = self.store.config()
        if cfg is None:
            raise RuntimeError("no device config on flash: flash this board with its gateway's bundle "
                               "(citygate flash --port PORT --bundle FILE)")
        self.cfg = cfg
        self.id = cfg["id"]
        self.key = cfg["key"]
        self.clock = Clock(log)
        if getattr(hw, "wdt_reset", False):  # the last run hung: its watchdog reset the board
            log("boot: after a watchdog reset")
            self.store.append({"t": "alarm", "at": self.clock.now(), "code": "watchdog_reset",
                               "detail": "the firmware stopped feeding the watchdog; the board was reset"})
        self.table = None
        self.lines = {}
        for port in sorted(hw.ports()):
            self.lines[port] = self._make_line(port)
        gc.collect()
        self._load_stored_table()
        self.machine = CallMachine(self.lines, self.store, self.clock, hw, lambda: self.table, log,
                                   on_record=self._on_record)
        # operators' calls and probes (DESIGN §5a): gw.outbound / gw.probes made on first use (~11 KB of heap
        # from source on the unix port): a board that never places one never pays for them
        self.outbound = self.prober = None
        machine = self.machine
        self.link = Link(cfg, self.store, self.clock, self.lines, Board(
            self.profile, self._status, lambda: self.table, self.apply_table, self._load_stored_table,
            lambda: bool(machine.by_line), lambda cid, args: self.outbound_calls().start(cid, args),
            lambda target: self.probe_calls().start(target), self.selftest, hw.reset), log)
        self.heap_min_free = gc.mem_free()  # the low-water mark, for the state and the bench

    def _make_line(self, port):
        reader, writer = self.hw.open_line(port)
        line = self.drivers[self.hw.port_kind(port)](port, reader, writer, log=log)
        if line.kind == "fxo":  # a hung FXO module is reset by the board's reset line for the port
            line.reset_hook = lambda: self.hw.reset_port(port)
        for k, v in (self.hw.line_timings(port) if hasattr(self.hw, "line_timings") else {}).items():
            if hasattr(line, k) and isinstance(v, int):  # the emulated board's rig shortens timings for a test
                setattr(line, k, v)
        return line

    def _load_stored_table(self):
        """The last table that verified: its body is read from flash a member at a time and its
        signature checked again; an older board's file (a whole envelope) is read as it was."""
        try:
            found = self.store.table_file()
            table = None
            if found is not None:
                path, off, length, sig, _ = found
                try:
                    from gw import bodyfile  # imported only when there is a table to load (heap)
                except MemoryError:  # no room to compile it: the body is read whole, as before
                    bodyfile = None
                    log("table: no heap for the streaming loader; reading the table whole")
                if bodyfile is not None:
                    table = bodyfile.load(path, off, length, self.id, 0, key=self.key, sig=sig)
                else:
                    payload = self.store.load_table()
                    table = routing.verify_body(payload, sig, self.key, self.id, 0)
                    del payload
            else:
                payload = self.store.load_table()
                if payload is None:
                    log("table: none stored yet")
                    return
                table = routing.unseal(payload, self.key, self.id, 0)
                del payload
        except Exception as e:  # a damaged or unreadable table: run without one until the controller sends it
            why = "%s: %s" % (e.path, e.reason) if hasattr(e, "reason") else repr(e)
            log("table: stored table unusable: " + why)
            return
        self.apply_table(table)  # the next retained envelope is checked in full, then re-acked
        log("table: v%d loaded from flash" % table.version)

    def apply_table(self, table):
        """Run `table` (None: none, to let the running one go before a big one loads)."""
        self.table = table
        if table is not None and table.issued_at:
            self.clock.floor = max(self.clock.floor, table.issued_at)
        gc.collect()

    def _status(self):
        """(uptime_s, heap_min_free, calls, calls_in_progress) for the link's state message."""
        return self.uptime_s(), self.heap_min_free, self.machine.calls, self.machine.in_progress()

    def uptime_s(self):
        return time.ticks_diff(time.ticks_ms(), self.t0) // 1000

    def outbound_calls(self):
        """gw.outbound's Outbound (the `call` command), made on first use."""
        if self.outbound is None:
            from gw.outbound import Outbound

            self.outbound = Outbound(self.machine, self.store, self.clock, lambda: self.table, log, self._on_record)
        return self.outbound

    def probe_calls(self):
        """gw.probes' Prober (the `probe` command and the table's schedule), made on first use."""
        if self.prober is None:
            from gw.probes import Prober

            self.prober = Prober(self.machine, self.store, self.clock, lambda: self.table, log, self._on_record)
            asyncio.create_task(self.prober.run())
        return self.prober

    async def _start_probes(self):
        """The probe schedule starts with the first table that has probes, stored or received."""
        while self.prober is None:
            await asyncio.sleep_ms(1000)
            if self.table is not None and self.table.probes:
                self.probe_calls()

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
        """Every check as [name, ok, detail] (the MQTT `selftest` command and `citygate check` show the same)."""
        import os

        from gw import FW_VERSION

        rows = []
        build = _read_json((self.store.root or "") + "/fw.json") or {}
        rows.append(["firmware", True, "%s build %s" % (FW_VERSION, build.get("build_id") or "unknown")])
        rows.append(["profile", True, self.profile])
        for name, line in self.lines.items():
            st = line.status()
            rows.append([name + " modem", line.ready, "answering" if line.ready else "not answering"])
            if st.get("kind") == "gsm":
                reg, csq = st.get("reg"), st.get("csq")
                rows.append([name + " SIM", reg in (1, 5), {1: "registered", 5: "registered, roaming"}.get(
                    reg, "not registered (%s)" % reg)])
                rows.append([name + " signal", csq is not None and 0 < csq < 99, "csq %s" % csq])
        rows.append(["clock", self.clock.synced, "%d (%s)" % (self.clock.now(), self.clock.source or "not synced")])
        rows.append(["table", self.table is not None, "v%d" % self.table.version if self.table else "none"])
        try:
            fs = os.statvfs(self.store.root or "/")
            flash = fs[0] * fs[3]
        except OSError:
            flash = 0
        rows.append(["flash free", flash >= FREE_MIN, "%d bytes" % flash])
        gc.collect()
        free = gc.mem_free()
        rows.append(["heap free", free >= FREE_MIN, "%d bytes" % free])
        client = self.link.client
        up = client is not None and client.connected
        rows.append(["broker", up, ("connected to " if up else "not connected to ") + self.cfg["broker"]])
        problems = [r[0] + ": " + r[2] for r in rows if not r[1]]
        return {"ok": not problems, "problems": problems, "checks": rows, "heap_free": free, "table_version":
                self.table.version if self.table else None, "ports": {n: ln.status() for n, ln in self.lines.items()},
                "outbox": self.store.last_seq - self.store.acked_seq, "uptime_s": self.uptime_s()}

    async def _counters(self):
        while True:
            await asyncio.sleep(COUNTERS_EVERY_S)
            self.store.counters_record(self.clock.now())
            self.link.poke()

    async def _main_loop(self):
        """Feed the watchdog only while the event loop runs and memory is sane."""
        while True:
            await asyncio.sleep_ms(1000)
            self._heap_sample()
            if gc.mem_free() < 4096:
                gc.collect()
            self.hw.wdt_feed()

    async def run(self):
        for line in self.lines.values():
            asyncio.create_task(line.start())
        asyncio.create_task(self.clock.keep_synced(list(self.lines.values())))
        asyncio.create_task(self._counters())
        asyncio.create_task(self._start_probes())  # the table's probe schedule, uplink or not
        asyncio.create_task(self.link.run())
        log("gateway %s up: profile %s, ports %s, fw ready" % (self.id, self.profile, ",".join(self.lines)))
        await self._main_loop()


def _read_json(path):
    try:
        import json

        with open(path) as f:
            d = json.load(f)
        return d if isinstance(d, dict) else None
    except Exception:  # absent or damaged: not flashed by `citygate flash`
        return None


def run(hw, root):
    """Start the gateway on a mounted flash (main.py mounts it before any code is imported)."""
    global current
    profiles.get(hw.profile)
    current = gw = Gateway(hw, root)
    asyncio.run(gw.run())
