"""Operators' calls and probes (gw.outbound, gw.probes) on MicroPython with scripted lines: the lines fake
what a modem reports (answered, busy, alerting after N ms); the call machine, the routing table, the
outbound and probe logic and their records are the real code. Prints one JSON line per scenario."""

import asyncio
import json
import sys

from machine_fakes import Hw, Store

from gw import probes as probes_mod
from gw.calls import CallMachine
from gw.outbound import Outbound
from gw.probes import Prober
from protocols import routing

TABLE = {
    "schema": 1, "gateway": "gw-test-1", "version": 1, "tz": "UTC0", "deny": ["+7"],
    "targets": {
        "a": {"number": "+3801", "via": ["gsm3"], "ring_timeout_s": 2, "max_calls": 1},
        "b": {"number": "+3802", "via": ["gsm4", "gsm3"], "ring_timeout_s": 2},
        "ru": {"number": "+7495", "via": ["gsm3"]},
        "analog": {"number": "+3803", "via": ["fxo1"]},
    },
    "routes": [{"id": "main", "port": "gsm1", "targets": ["a", "b"]}],
    "probes": [{"target": "a", "every_s": 600}, {"target": "ru", "every_s": 600}],
}


class Clock:
    synced = True

    def ms(self):
        import time
        return time.ticks_ms()

    def since_ms(self, t0):
        import time
        return time.ticks_diff(time.ticks_ms(), t0) * 100  # 10 ms of test time = 1 s of call time

    def now(self):
        return 1700000000 + 12 * 3600

    async def refresh(self, line):
        pass


class Line:
    behaviour = {}  # number -> (result, delay_ms, talk_ms, alert_ms or None)

    def __init__(self, name):
        self.name = name
        self.kind = "fxo" if name.startswith("fxo") else "gsm"
        self.ready = True
        self.listener = None
        self.dialled = []
        self.hangups = 0
        self.pdd_ms = None

    async def dial(self, number, ring_timeout_s, until_alerting=False):
        self.dialled.append(number)
        result, delay, talk, alert = self.behaviour.get(number, ("failed", 5, 0, None))
        self.pdd_ms = None
        try:
            if alert is not None and (alert < delay or result == "no_answer"):
                await asyncio.sleep_ms(alert)
                self.pdd_ms = alert
                if until_alerting:
                    return "ringing"
                delay -= alert
            if result == "no_answer":
                delay = ring_timeout_s * 10
            await asyncio.sleep_ms(delay)
        except asyncio.CancelledError:
            self.dialled.append("cancelled")
            raise
        if result == "answered":
            asyncio.create_task(self._far_hangup(talk))
        if result == "failed" and until_alerting:
            return "unreachable"
        return result

    async def _far_hangup(self, talk):
        await asyncio.sleep_ms(talk)
        self.listener(self, "hangup", None)

    async def answer(self):
        return True

    async def hangup(self):
        self.hangups += 1


async def settle(store, n, limit_ms=3000):
    waited = 0
    while len(store.records) < n and waited < limit_ms:
        await asyncio.sleep_ms(10)
        waited += 10


CALL = {"agent": "+3805", "citizen": "+3806"}


async def scenario(name):
    lines = {n: Line(n) for n in ("gsm1", "gsm2", "gsm3", "gsm4", "fxo1")}
    store, hw = Store(), Hw()
    table = routing.load(json.dumps(TABLE))
    m = CallMachine(lines, store, Clock(), hw, lambda: table, log=lambda *a: None)
    out = Outbound(m, store, Clock(), lambda: table, log=lambda *a: None)
    prober = Prober(m, store, Clock(), lambda: table, log=lambda *a: None)
    B = Line.behaviour
    B.clear()
    answers = []
    expect = 1
    if name == "call_answered":
        B["+3805"] = ("answered", 20, 1000, 5)
        B["+3806"] = ("answered", 30, 60, 10)
        answers.append(out.start("c1", CALL))
    elif name == "call_agent_no_answer":
        B["+3805"] = ("no_answer", 0, 0, 5)
        answers.append(out.start("c1", dict(CALL, ring_timeout_s=3)))
    elif name == "call_citizen_busy":
        B["+3805"] = ("answered", 10, 1000, None)
        B["+3806"] = ("busy", 10, 0, None)
        answers.append(out.start("c1", CALL))
    elif name == "call_agent_leaves_while_the_citizen_rings":
        B["+3805"] = ("answered", 10, 40, None)  # the agent hangs up 40 ms after answering
        B["+3806"] = ("no_answer", 0, 0, 5)
        answers.append(out.start("c1", CALL))
    elif name == "call_refused":
        expect = 0
        answers.append(out.start("c1", dict(CALL, citizen="+74951")))
        answers.append(out.start("c2", dict(CALL, agent="+74951")))
        answers.append(out.start("c3", dict(CALL, via="gsm9")))
        for n in ("gsm1", "gsm2", "gsm3", "fxo1"):
            lines[n].ready = False
        answers.append(out.start("c4", CALL))  # one free line (gsm4): two are needed
    elif name == "probe_ringing":
        B["+3801"] = ("no_answer", 0, 0, 40)
        answers.append(prober.start("a"))
        answers.append(prober.start("a"))  # max_calls 1: the probe holds the target's line
    elif name == "probe_answered_before_alerting":
        B["+3802"] = ("answered", 10, 500, None)
        answers.append(prober.start("b"))
    elif name == "probe_refused":
        expect = 0
        for tid in ("ru", "nowhere", "analog"):
            answers.append(prober.start(tid))
    elif name == "probe_unreachable":
        B["+3802"] = ("failed", 10, 0, None)
        answers.append(prober.start("b"))
    elif name == "probe_schedule":
        expect = 2
        B["+3801"] = ("no_answer", 0, 0, 20)
        probes_mod.FIRST_DUE_S, probes_mod.TICK_MS = 0, 10
        task = asyncio.create_task(prober.run())
        await settle(store, 2)
        await asyncio.sleep_ms(100)  # due again only in 600 s: nothing more
        task.cancel()
    await settle(store, expect)
    await asyncio.sleep_ms(30)
    print(json.dumps({"name": name, "answers": answers, "records": store.records, "bridges": hw.bridges,
                      "dialled": {n: ln.dialled for n, ln in lines.items() if ln.dialled},
                      "hangups": {n: ln.hangups for n, ln in lines.items() if ln.hangups},
                      "busy": m.busy, "lines_in_use": list(m.by_line.keys())}))


for arg in sys.argv[1:]:
    asyncio.run(scenario(arg))
