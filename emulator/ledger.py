"""The operator's ground truth: every call leg as it really happened, to check the board's records against.

Legs are timed with the monotonic clock and reported in network time. Which inbound
call an outbound leg served is decided the way a person reading the switch's log
would: the bridge the board reported, else the only inbound call alive when it was
dialled, else the inbound leg it was connected with longest.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emulator.operator import Call
    from emulator.ptyloop import PtyLoop, Timer


@dataclass
class Leg:
    id: int
    dir: str  # "in" | "out"
    port: str
    number: str  # inbound: the caller; outbound: the dialled number
    t_start: float  # monotonic
    state: str = "ringing"  # in: ringing/active/ended; out: dialing/alerting/active/ended
    t_answer: float | None = None
    t_end: float | None = None
    ended_by: str | None = None
    detail: str | None = None
    inbound: int | None = None  # outbound: id of the inbound leg it was made for, when known
    bridged: int | None = None  # reported by bridge(): the other leg
    near: list = field(default_factory=list)  # legs of the other direction alive when one of the two began
    timers: list = field(default_factory=list)  # what is due on this leg; cancelled when it ends
    patience: Timer | None = None  # inbound: the caller hangs up at this timer
    peer: Leg | None = None  # a call between two devices (subscriber lines): the other device's leg
    call: Call | None = None
    prompts: list = field(default_factory=list)  # inbound: what the board's modem played while it was up
    keys: str = ""  # inbound: the DTMF keys the board's modem heard (and reported) from the caller
    on_answer: Callable | None = None  # inbound: what happens once it is picked up (the caller's key presses)
    # time.monotonic_ns() at the UART (pty master): inbound, right before its first caller id (+CLIP) was written;
    # outbound, when the read that brought its ATD line returned (bench/firmware_bench.py's host-side figure)
    clip_ns: int | None = None
    atd_ns: int | None = None

    def after(self, loop: PtyLoop, delay: float, fn, *args) -> Timer:
        """fn(*args) on the loop after `delay` s, unless the leg ends first."""
        timer = loop.after(delay, fn, *args)
        self.timers.append(timer)
        return timer

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers = []

    def answer(self) -> None:
        """Picked up: ringing, caller id and the operator's ring limit stop; the caller's patience runs on."""
        for timer in self.timers:
            if timer is not self.patience:
                timer.cancel()
        self.state, self.t_answer = "active", time.monotonic()
        if self.on_answer is not None:
            self.on_answer(self)

    def finish(self, by: str, detail: str) -> None:
        self.state, self.t_end, self.ended_by, self.detail = "ended", time.monotonic(), by, detail
        self.cancel_timers()


class Ledger:
    """Every leg, in start order; `entry(leg)` is what truth() reports for one."""

    def __init__(self, now):
        self._now = now  # network time, unix seconds
        self.legs: list[Leg] = []
        self.live: dict[int, Leg] = {}  # legs not ended yet
        self._index: dict[int, Leg] = {}
        self._ids = itertools.count(1)

    def new_leg(self, direction: str, port: str, number: str) -> Leg:
        leg = Leg(next(self._ids), direction, port, number, time.monotonic())
        if direction == "out":
            leg.state = "dialing"
        leg.near = [x.id for x in self.live.values() if x.dir != direction]
        for other in leg.near:
            self._index[other].near.append(leg.id)
        self.legs.append(leg)
        self._index[leg.id] = leg
        self.live[leg.id] = leg
        return leg

    def ended(self, leg: Leg) -> None:
        self.live.pop(leg.id, None)

    def bridged(self, a: Leg, b: Leg) -> None:
        """The board reported a and b connected by its audio switch."""
        a.bridged, b.bridged = b.id, a.id
        if a.dir == b.dir == "out":  # an operator's call to a citizen: neither leg served an inbound call
            a.inbound = b.inbound = None
        for x, y in ((a, b), (b, a)):
            if x.dir == "out" and y.dir == "in":
                x.inbound = y.id
            if y.id not in x.near:
                x.near.append(y.id)

    def busy_lines(self, number: str) -> int:
        """Outbound legs to `number` alive now."""
        return sum(1 for x in self.live.values() if x.dir == "out" and x.number == number)

    def entry(self, leg: Leg) -> dict:
        end = leg.t_end if leg.t_end is not None else time.monotonic()
        ring_end = leg.t_answer if leg.t_answer is not None else end
        partner = self._partner(leg)
        d = {"id": leg.id, "dir": leg.dir, "port": leg.port, "start": self._net_time(leg.t_start),
             "answer": self._net_time(leg.t_answer), "end": self._net_time(leg.t_end),
             "ring_s": round(ring_end - leg.t_start, 3),
             "talk_s": round(end - leg.t_answer, 3) if leg.t_answer is not None else 0.0,
             "ended_by": leg.ended_by, "detail": leg.detail if leg.state == "ended" else leg.state,
             "bridge": partner.id if partner is not None else None}
        if leg.dir == "out":
            d.update(number=leg.number, result=out_result(leg), inbound=self._owner(leg),
                     bridged_to=partner.number if partner is not None else None, atd_ns=leg.atd_ns)
            return d
        outs = [x for x in (self._index[i] for i in leg.near) if self._owner(x) == leg.id]
        d.update(caller=leg.number, clip_ns=leg.clip_ns, result=leg.detail if leg.state == "ended" else leg.state,
                 prompts=[dict(p) for p in leg.prompts], keys=leg.keys,
                 answered_by=partner.number if partner is not None else None,
                 bridge_s=round(_overlap(leg, partner), 3) if partner is not None else 0.0,
                 attempts=[{"id": x.id, "number": x.number, "port": x.port, "result": out_result(x),
                            "detail": x.detail if x.state == "ended" else x.state,
                            "ring_s": round((x.t_answer or x.t_end or time.monotonic()) - x.t_start, 3)}
                           for x in outs])
        return d

    def _net_time(self, mono):
        return None if mono is None else round(self._now() - (time.monotonic() - mono), 3)

    def _partner(self, leg):
        """The leg of the other direction connected with this one longest (a reported bridge first)."""
        if leg.bridged is not None:
            return self._index[leg.bridged]
        best = max((self._index[i] for i in leg.near), key=lambda x: _overlap(leg, x), default=None)
        return best if best is not None and _overlap(leg, best) > 0 else None

    def _owner(self, out):
        """The inbound leg an outbound leg was dialled for: reported bridge, only call alive, or overlap."""
        if out.inbound is not None:
            return out.inbound
        partner = self._partner(out)
        return partner.id if partner is not None and partner.dir == "in" else None


def _connected(leg):
    if leg.t_answer is None:
        return None
    return leg.t_answer, leg.t_end if leg.t_end is not None else time.monotonic()


def _overlap(a, b):
    ca, cb = _connected(a), _connected(b)
    if ca is None or cb is None:
        return 0.0
    return max(0.0, min(ca[1], cb[1]) - max(ca[0], cb[0]))


def out_result(leg: Leg) -> str | None:
    """An outbound leg's outcome in the firmware's words: answered | busy | no_answer | failed (None while on)."""
    if leg.t_answer is not None:
        return "answered"
    if leg.state != "ended":
        return None
    return {"busy": "busy", "no_answer": "no_answer", "cancelled": "no_answer"}.get(leg.detail, "failed")
