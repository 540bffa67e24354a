"""The phone network around a real board, as the bench's own modems live it.

Caller modems dial the board's SIM numbers (ATD), press keys (AT+VTS, `keys_after_s` after the board answered:
a menu answers first and plays its prompt) and watch their call with AT+CLCC;
centre modems answer the board's calls (ATA on RING) or refuse them (ATH) as their `destination()` says.
`truth()` is what these modems saw, in GsmNetwork.truth()'s shape: the bench cannot see a number the board
dialled that no centre modem has (the operator alone knows those), nor forge a caller id (a call comes
from the caller modem's own SIM number), nor hear what the board played (no `prompts`; `keys` are the keys
its caller modem sent).
"""

from __future__ import annotations

import itertools
import threading
import time

from hil_tests.rig import base
from hil_tests.rig.drivers.at_modem import CALL_ENDS, AtError, AtModem

POLL_S = 0.3  # AT+CLCC polling of a caller's call
RING_LIMIT_S = 120.0  # a caller gives up after this long unanswered
TALK_LIMIT_S = 600.0  # and hangs up a call nobody ends after this long
RING_GAP_S = 10.0  # a centre's call that stopped ringing this long ago without NO CARRIER is over
MATCH_S = 2.0  # a centre answered "at the same time" as the caller's call, within this
SETTLE_S = 30.0  # truth() waits at most this long for a centre leg of an ended call to end (ATH takes up to 20 s)
_ids = itertools.count(1)


class BenchCall:
    """A call from a caller modem into the board; `wait(timeout) -> dict` as the emulated network's Call."""

    def __init__(self, network: BenchNetwork, modem: AtModem, number: str, port: str, keys: str | None,
                 hangup_after_s: float | None, keys_after_s: float = 1.0):
        self._net, self._modem = network, modem
        self.id = next(_ids)
        self.leg = {"id": self.id, "dir": "in", "port": port, "caller": network.caller_numbers[modem.name],
                    "start": time.time(), "answer": None, "end": None, "ended_by": None, "result": "ringing",
                    "detail": None, "keys": ""}
        self._done = threading.Event()
        args = (number, keys, hangup_after_s, keys_after_s)
        threading.Thread(target=self._run, args=args, name=f"call {self.id}", daemon=True).start()

    @property
    def state(self) -> str:
        return "ended" if self._done.is_set() else ("active" if self.leg["answer"] else "ringing")

    def _run(self, number: str, keys: str | None, hangup_after_s: float | None, keys_after_s: float) -> None:
        with self._net.dialling[self._modem.name]:  # one call at a time on one modem
            try:
                self._modem.dial(number)
            except AtError as e:
                return self._finish("network", "failed", str(e))
            t0 = keys_at = time.monotonic()
            while not self._done.is_set():
                try:
                    calls = [c for c in self._modem.clcc() if c["dir"] == "out"]
                except AtError:
                    calls = [{"stat": 0 if self.leg["answer"] else 3}]  # keep the last view, ask again
                elapsed = time.monotonic() - t0
                if not calls:
                    return self._finish("gateway", "answered" if self.leg["answer"] else "rejected")
                if calls[0]["stat"] == 0 and self.leg["answer"] is None:
                    self.leg["answer"], self.leg["result"] = time.time(), "active"
                    keys_at = time.monotonic() + keys_after_s
                if keys and self.leg["answer"] and time.monotonic() >= keys_at:
                    self._press(keys)
                    keys = None
                limit = TALK_LIMIT_S if self.leg["answer"] else RING_LIMIT_S
                if (hangup_after_s is not None and elapsed >= hangup_after_s) or elapsed >= limit:
                    self._hang_up()
                    return self._finish("caller", "answered" if self.leg["answer"] else "abandoned")
                self._done.wait(POLL_S)

    def _press(self, keys: str) -> None:
        for d in keys:  # one AT+VTS per key; one the modem refuses (the call just ended) is not pressed
            try:
                self._modem.keys(d)
            except AtError:
                return
            self.leg["keys"] += d

    def _hang_up(self) -> None:
        try:
            self._modem.hang_up()
        except AtError:
            pass  # the call may have ended on its own meanwhile

    def _finish(self, by: str, result: str, detail: str | None = None) -> None:
        self.leg.update(end=time.time(), ended_by=by, result=result, detail=detail or result)
        self._net.in_use.discard(self._modem.name)
        self._done.set()

    def hangup(self) -> None:
        self._hang_up()

    def wait(self, timeout: float) -> dict:
        if not self._done.wait(timeout):
            raise TimeoutError(f"call {self.id} from {self.leg['caller']} still {self.state} after {timeout}s")
        t = self._net.entry(self.leg)
        return {"id": self.id, "port": t["port"], "caller": t["caller"], "answered": t["answer"] is not None,
                "ring_s": t["ring_s"], "talk_s": t["talk_s"], "connected_to": t["answered_by"],
                "ended_by": t["ended_by"], "result": t["result"]}


class CentreLine:
    """A centre modem playing its destination: answers after N s and talks M s, refuses (busy), or lets it ring."""

    def __init__(self, modem: AtModem, number: str, board_numbers: dict[str, str]):
        self.modem, self.number, self.ports = modem, number, board_numbers
        self.behaviour = {"answer_after_s": 1.0, "talk_s": 5.0, "busy": False, "no_answer": False}
        self.legs: list[dict] = []
        self.leg: dict | None = None
        self._lock = threading.Lock()
        self.ended = threading.Condition(self._lock)  # notified when a leg ends
        self._ring_check: threading.Timer | None = None
        modem.on_urc = self.on_urc

    def on_urc(self, line: str) -> None:  # the modem's reader thread: no commands here
        with self._lock:
            if line.startswith(("RING", "+CRING")):
                if self.leg is None:
                    self._ringing()
                self._watch_ring()
            elif line.startswith("+CLIP:") and self.leg is not None:
                caller = line[6:].split(",")[0].strip().strip('"')
                self.leg["from"], self.leg["port"] = caller, self.ports.get(caller)
            elif (line in CALL_ENDS or line.startswith(("MISSED_CALL", "VOICE CALL: END"))) and self.leg:
                self._end("gateway", "answered" if self.leg["answer"] else "no_answer", "cancelled")

    def _ringing(self) -> None:
        b = dict(self.behaviour)
        self.leg = leg = {"id": next(_ids), "dir": "out", "port": None, "number": self.number, "from": None,
                          "start": time.time(), "answer": None, "end": None, "ended_by": None, "result": None,
                          "detail": None}
        self.legs.append(leg)
        if b["busy"]:
            self._later(0.0, self._refuse, leg)
        elif not b["no_answer"]:
            self._later(b["answer_after_s"], self._answer, leg, b["talk_s"])

    def _watch_ring(self) -> None:
        if self._ring_check is not None:
            self._ring_check.cancel()
        self._ring_check = self._later(RING_GAP_S, self._ring_stopped, self.leg)

    def _ring_stopped(self, leg: dict) -> None:
        with self._lock:
            if self.leg is leg and leg["answer"] is None:
                self._end("gateway", "no_answer", "cancelled")

    @staticmethod
    def _later(delay: float, fn, *args) -> threading.Timer:
        timer = threading.Timer(delay, fn, args)
        timer.daemon = True
        timer.start()
        return timer

    def _refuse(self, leg: dict) -> None:
        self._command("ATH")
        with self._lock:
            if self.leg is leg:
                self._end("destination", "busy", "busy")

    def _answer(self, leg: dict, talk_s: float) -> None:
        if self.leg is not leg or not self._command("ATA"):
            return
        with self._lock:
            if self.leg is leg:
                leg["answer"] = time.time()
                self._later(talk_s, self._talked, leg)

    def _talked(self, leg: dict) -> None:
        if self.leg is leg:
            self._command("ATH")
            with self._lock:
                if self.leg is leg:
                    self._end("destination", "answered", "answered")

    def _command(self, cmd: str) -> bool:
        try:
            self.modem.command(cmd, timeout=20)
            return True
        except AtError:
            return False

    def _end(self, by: str, result: str, detail: str) -> None:
        self.leg.update(end=time.time(), ended_by=by, result=result, detail=detail)
        self.leg = None
        if self._ring_check is not None:
            self._ring_check.cancel()
        self.ended.notify_all()  # every caller of _end holds self._lock


class BenchNetwork(base.Network):
    def __init__(self, rig_name: str, board_numbers: dict[str, str], callers: dict[str, tuple[AtModem, str]],
                 centres: dict[str, CentreLine]):
        self.rig_name, self.board_numbers = rig_name, board_numbers
        self.callers = {name: m for name, (m, _) in callers.items()}
        self.caller_numbers = {name: n for name, (_, n) in callers.items()}
        self.dialling = {name: threading.Lock() for name in callers}
        self.centres = centres  # number -> line
        self.calls: list[BenchCall] = []
        self.in_use: set[str] = set()  # caller modems with a call placed and not over
        self._picking = threading.Lock()

    def _caller_for(self, caller: str) -> AtModem:
        if not self.callers:
            raise base.MissingFeature(self.rig_name, "gsm")
        with self._picking:
            best = max(self.caller_numbers, key=lambda n: (self.caller_numbers[n] == caller,
                                                          _common(self.caller_numbers[n], caller),
                                                          n not in self.in_use))  # a free one first
            self.in_use.add(best)
        return self.callers[best]

    def call(self, port, caller, keys=None, hangup_after_s=None, keys_after_s=1.0):
        if port not in self.board_numbers:
            raise ValueError(f"rig {self.rig_name}: board port {port} has no number in [board.numbers]")
        call = BenchCall(self, self._caller_for(caller), self.board_numbers[port], port, keys, hangup_after_s,
                         keys_after_s)
        self.calls.append(call)
        return call

    def destination(self, number, answer_after_s=1, talk_s=5, busy=False, no_answer=False, unreachable=False,
                    lines=None, alert_after_s=None):  # alerting comes when the operator's network says
        line = self.centres.get(number)
        if line is None:
            if unreachable:
                return  # a number no modem has is unreachable by itself
            raise ValueError(f"rig {self.rig_name}: no centre modem has number {number}")
        line.behaviour = {"answer_after_s": answer_after_s, "talk_s": talk_s, "busy": busy,
                          "no_answer": no_answer or unreachable}

    def entry(self, leg: dict) -> dict:
        t = dict(leg)
        end = t["end"] or time.time()
        t["ring_s"] = (t["answer"] or end) - t["start"]
        t["talk_s"] = end - t["answer"] if t["answer"] else 0.0
        if t["dir"] == "in":
            outs = [o for c in self.centres.values() for o in c.legs
                    if t["start"] <= o["start"] <= end and o.get("port") != t["port"]]
            t["attempts"] = [{"id": o["id"], "number": o["number"], "port": o["port"], "result": o["result"],
                              "detail": o["detail"], "ring_s": (o["answer"] or o["end"] or end) - o["start"]}
                             for o in sorted(outs, key=lambda o: o["start"])]
            hit = next((o for o in outs if o["answer"] and t["answer"] and abs(o["answer"] - t["answer"]) <= MATCH_S),
                       None) or next((o for o in outs if o["answer"] and t["answer"] and t["answer"] <= o["answer"]),
                                     None)  # a menu answered the caller first: the centre that answered later
            t["answered_by"] = hit["number"] if hit else None
            t["bridge"] = hit["id"] if hit else None
            t["bridge_s"] = (min(end, hit["end"] or end) - max(t["answer"], hit["answer"])) if hit else None
        return t

    def _settle(self) -> None:
        """Wait until no centre leg that began during an ended inbound call is still open: the caller's modem
        sees the call end (AT+CLCC) a moment before the centre's own ATH or NO CARRIER closes its leg."""
        ended = [(c.leg["start"], c.leg["end"]) for c in self.calls if c.leg["end"] is not None]
        deadline = time.monotonic() + SETTLE_S
        for line in self.centres.values():
            def settled(line=line) -> bool:
                leg = line.leg
                return leg is None or not any(a <= leg["start"] <= b for a, b in ended)
            with line.ended:
                line.ended.wait_for(settled, timeout=max(0.0, deadline - time.monotonic()))

    def truth(self) -> list[dict]:
        self._settle()
        legs = [c.leg for c in self.calls] + [o for c in self.centres.values() for o in c.legs]
        return [self.entry(leg) for leg in sorted(legs, key=lambda leg: leg["start"])]


def _common(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n
