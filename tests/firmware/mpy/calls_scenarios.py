"""Call machine scenarios on MicroPython with scripted lines (a unit test:
the lines fake what a modem would report; the routing, the machine and the
records are the real code). Prints one JSON line per scenario."""

import asyncio
import json
import sys

from machine_fakes import Hw, Store

from gw.calls import CallMachine
from protocols import routing

TABLE = {
    "schema": 1, "gateway": "gw-test-1", "version": 1, "tz": "UTC0", "deny": ["+7"],
    "targets": {
        "a": {"number": "+3801", "via": ["gsm2"], "ring_timeout_s": 2, "max_calls": 1},
        "b": {"number": "+3802", "via": ["gsm2", "gsm3"], "ring_timeout_s": 2},
        "c": {"number": "+3803", "via": ["gsm3"], "ring_timeout_s": 2},
        "ru": {"number": "+7495", "via": ["gsm2"]},
        "d": {"number": "+3804", "via": ["gsm2"], "ring_timeout_s": 2},
    },
    "routes": [
        {"id": "main", "port": "gsm1", "targets": ["a", "b"], "fallback": {"action": "callback"}},
        {"id": "rr", "port": "gsm4", "targets": ["a", "b", "c"], "strategy": "round_robin"},
        {"id": "evil", "port": "gsm5", "targets": ["ru", "c"]},
        {"id": "night", "port": "gsm6", "hours": [{"days": "1234567", "start": "22:00", "end": "06:00"}],
         "targets": ["c"], "after_hours": {"action": "callback"}},
        {"id": "hall", "port": "gsm7", "menu": "hall"},
        {"id": "hall-fxo", "port": "fxo1", "menu": "hall"},
        {"id": "solo", "port": "gsm8", "targets": ["d"]},
    ],
    "menus": {"hall": {"prompt": "hall-welcome", "default": "0", "timeout_s": 1, "tries": 2,
                       "options": {"0": {"targets": ["c"], "fallback": {"action": "callback"}},
                                   "2": {"targets": ["b"]}}}},
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
        self.kind = "fxo" if name.startswith("fxo") else "gsm"
        self.commands = []  # AT commands the menu sent (a scripted SIM800: ATI, prompts, keys)
        self.fail = ()  # commands that get ERROR
        self.prompt_ms = 30  # how long a prompt plays before +CTTS: 0
        self.presses = []  # [(ms after the first prompt starts, dtmf event argument)]
        self.ready = True
        self.listener = None
        self.dialled = []
        self.answered = 0
        self.hangups = 0
        self.hangup_ms = 0  # how long the hang-up command takes (an ATH / HOOK ON awaiting its OK)

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

    async def cmd(self, text, expect=None, timeout_ms=None):
        self.commands.append(text)
        if text in self.fail:
            raise OSError("ERROR")
        if text == "ATI":
            return ["SIM800 R14.18"]
        if text.startswith("AT+CTTS=2,"):
            asyncio.create_task(self._later(self.prompt_ms, "played", "+CTTS: 0"))
            if self.commands.count(text) == 1:
                for ms, key in self.presses:
                    asyncio.create_task(self._later(ms, "dtmf", key))
        return []

    async def _later(self, ms, event, arg):
        await asyncio.sleep_ms(ms)
        self.listener(self, event, arg)

    async def hangup(self):
        self.hangups += 1
        if self.hangup_ms:
            await asyncio.sleep_ms(self.hangup_ms)


def machine(turns=None):
    lines = {n: Line(n) for n in ("gsm1", "gsm2", "gsm3", "gsm4", "gsm5", "gsm6", "gsm7", "gsm8", "fxo1")}
    store, hw = Store(turns), Hw()
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
    m, lines, store, hw = machine({"rr": 1} if name == "round_robin_restored" else None)
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
    elif name == "menu_key":  # 2 pressed while the prompt plays: it stops, option 2 dials b
        B["+3802"] = ("answered", 10, 30)
        lines["gsm7"].prompt_ms, lines["gsm7"].presses = 300, [(20, "2")]
        await ring(lines, "gsm7", "+380501")
    elif name == "menu_default":  # no key after two prompts: the default option, and its own fallback
        B["+3803"] = ("no_answer", 0, 0)
        await ring(lines, "gsm7", "+380501")
    elif name == "menu_garbage_keys":  # noise skipped; 5 is no option: the default
        B["+3803"] = ("answered", 10, 30)
        lines["gsm7"].presses = [(10, "x"), (15, "12"), (20, None), (40, "5"), (60, "2")]
        await ring(lines, "gsm7", "+380501")
    elif name == "menu_hangup":  # the caller leaves during the prompt: abandoned, nothing dialled
        lines["gsm7"].prompt_ms = 500
        await ring(lines, "gsm7", "+380501", hangup_after_ms=100)
    elif name == "menu_play_fails":  # the modem cannot speak: no silence, the default option at once
        B["+3803"] = ("answered", 10, 30)
        lines["gsm7"].fail = ('AT+CTTS=2,"hall-welcome"',)
        await ring(lines, "gsm7", "+380501")
    elif name == "menu_fxo":  # an FXO line has no player: not played, the default option, late answer
        B["+3803"] = ("answered", 10, 30)
        await ring(lines, "fxo1", "+380501")
    elif name == "round_robin" or name == "round_robin_restored":
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
    elif name == "line_releasing":
        # the second call's only line is still hanging up the first call (its ATH awaiting OK): it waits, then dials
        B["+3801"] = ("answered", 10, 30)
        B["+3804"] = ("answered", 10, 30)
        lines["gsm2"].hangup_ms = 300
        await ring(lines, "gsm1", "+380501")
        await settle(m, store, 1)  # the first call's record is stored: its legs are hanging up now (300 ms)
        await ring(lines, "gsm8", "+380502")
    await settle(m, store, 2 if name in ("max_calls", "line_releasing") else (3 if name.startswith("round_robin") else 1), 6000)
    await asyncio.sleep_ms(20)
    waited = 0
    while m.by_line and waited < 2000:  # records are stored before the legs are released: let them finish
        await asyncio.sleep_ms(10)
        waited += 10
    out = {"name": name, "records": store.records, "bridges": hw.bridges,
           "dialled": {n: ln.dialled for n, ln in lines.items() if ln.dialled},
           "answered": {n: ln.answered for n, ln in lines.items() if ln.answered},
           "busy": m.busy, "turns": m.turns, "lines_in_use": list(m.by_line.keys()),
           "commands": {n: ln.commands for n, ln in lines.items() if ln.commands}}
    print(json.dumps(out))


for arg in sys.argv[1:]:
    asyncio.run(scenario(arg))
