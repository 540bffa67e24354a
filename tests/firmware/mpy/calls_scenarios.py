"""Call machine scenarios on MicroPython with scripted lines (a unit test:
the lines fake what a modem would report; the routing, the machine and the
records are the real code). Prints one JSON line per scenario."""

import asyncio
import json
import sys

from gw.calls import CallMachine
from protocols import routing

TABLE = {
    "schema": 1, "gateway": "gw-test-1", "version": 1, "tz": "UTC0", "deny": ["+7"],
    "targets": {
        "a": {"number": "+3801", "via": ["gsm2"], "ring_timeout_s": 2, "max_calls": 1},
        "b": {"number": "+3802", "via": ["gsm2", "gsm3"], "ring_timeout_s": 2},
        "c": {"number": "+3803", "via": ["gsm3"], "ring_timeout_s": 2},
        "ru": {"number": "+7495", "via": ["gsm2"]},
    },
    "routes": [
        {"id": "main", "port": "gsm1", "targets": ["a", "b"], "fallback": {"action": "callback"}},
        {"id": "rr", "port": "gsm4", "targets": ["a", "b", "c"], "strategy": "round_robin"},
        {"id": "evil", "port": "gsm5", "targets": ["ru", "c"]},
        {"id": "night", "port": "gsm6", "hours": [{"days": "1234567", "start": "22:00", "end": "06:00"}],
         "targets": ["c"], "after_hours": {"action": "callback"}},
    ],
}


class Clock:
    def ms(self):
        import time
        return time.ticks_ms()

    def since_ms(self, t0):
        import time
        return time.ticks_diff(time.ticks_ms(), t0) * 100  # 10 ms of test time = 1 s of call time

    def now(self):
        return 1700000000 + 12 * 3600  # noon UTC

    async def refresh(self, line):
        pass


class Line:
    behaviour = {}  # number -> (result, delay_ms, talk_ms)

    def __init__(self, name):
        self.name = name
        self.kind = "gsm"
        self.ready = True
        self.listener = None
        self.dialled = []
        self.answered = 0
        self.hangups = 0

    async def dial(self, number, ring_timeout_s):
        self.dialled.append(number)
        result, delay, talk = self.behaviour.get(number, ("failed", 5, 0))
        if result == "no_answer":
            delay = ring_timeout_s * 10
        try:
            await asyncio.sleep_ms(delay)
        except asyncio.CancelledError:
            self.dialled.append("cancelled")
            raise
        if result == "answered":
            asyncio.create_task(self._far_hangup(talk))
        return result

    async def _far_hangup(self, talk):
        await asyncio.sleep_ms(talk)
        self.listener(self, "hangup", None)

    async def answer(self):
        self.answered += 1
        return True

    async def hangup(self):
        self.hangups += 1


class Store:
    def __init__(self):
        self.records = []

    def append(self, rec):
        rec["seq"] = len(self.records) + 1
        self.records.append(rec)
        return rec["seq"]


class Hw:
    def __init__(self):
        self.bridges = []

    def bridge(self, a, b):
        self.bridges.append((a, b))

    def unbridge(self, a, b):
        pass


def machine():
    lines = {n: Line(n) for n in ("gsm1", "gsm2", "gsm3", "gsm4", "gsm5", "gsm6")}
    store, hw = Store(), Hw()
    table = routing.load(json.dumps(TABLE))
    m = CallMachine(lines, store, Clock(), hw, lambda: table, log=lambda *a: None)
    return m, lines, store, hw


async def ring(lines, port, caller, hangup_after_ms=None):
    lines[port].listener(lines[port], "ring", caller)
    if hangup_after_ms is not None:
        await asyncio.sleep_ms(hangup_after_ms)
        lines[port].listener(lines[port], "hangup", None)


async def settle(m, store, n, limit_ms=3000):
    waited = 0
    while len(store.records) < n and waited < limit_ms:
        await asyncio.sleep_ms(10)
        waited += 10


async def scenario(name):
    m, lines, store, hw = machine()
    B = Line.behaviour
    B.clear()
    if name == "answered":
        B["+3801"] = ("answered", 20, 50)
        await ring(lines, "gsm1", "+380501")
    elif name == "busy_then_next":
        B["+3801"] = ("busy", 20, 0)
        B["+3802"] = ("answered", 20, 30)
        await ring(lines, "gsm1", "+380501")
    elif name == "no_answer_then_next":
        B["+3801"] = ("no_answer", 0, 0)
        B["+3802"] = ("answered", 10, 30)
        await ring(lines, "gsm1", "+380501")
    elif name == "all_fail_callback":
        B["+3801"] = ("busy", 10, 0)
        B["+3802"] = ("no_answer", 0, 0)
        await ring(lines, "gsm1", "+380501")
    elif name == "abandon_while_ringing":
        B["+3801"] = ("no_answer", 0, 0)
        await ring(lines, "gsm1", "+380501", hangup_after_ms=8)
    elif name == "caller_ends_talk":
        B["+3801"] = ("answered", 10, 5000)
        await ring(lines, "gsm1", "+380501", hangup_after_ms=60)
    elif name == "deny_never_dialled":
        B["+7495"] = ("answered", 10, 30)
        B["+3803"] = ("answered", 10, 30)
        await ring(lines, "gsm5", "+380501")
    elif name == "after_hours":
        await ring(lines, "gsm6", "+380501")
    elif name == "round_robin":
        for n in ("+3801", "+3802", "+3803"):
            B[n] = ("answered", 5, 5)
        for i in range(3):
            await ring(lines, "gsm4", "+38050" + str(i))
            await settle(m, store, i + 1)
    elif name == "max_calls":
        # a (cap 1) is busy with the first call, so the second goes to b on the other port
        B["+3801"] = ("answered", 10, 200)
        B["+3802"] = ("answered", 10, 50)
        await ring(lines, "gsm1", "+380501")
        await asyncio.sleep_ms(40)
        await ring(lines, "gsm4", "+380502")
    await settle(m, store, 2 if name == "max_calls" else (3 if name == "round_robin" else 1))
    await asyncio.sleep_ms(20)
    out = {"name": name, "records": store.records, "bridges": hw.bridges,
           "dialled": {n: ln.dialled for n, ln in lines.items() if ln.dialled},
           "answered": {n: ln.answered for n, ln in lines.items() if ln.answered},
           "busy": m.busy, "lines_in_use": list(m.by_line.keys())}
    print(json.dumps(out))


for arg in sys.argv[1:]:
    asyncio.run(scenario(arg))
