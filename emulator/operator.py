"""The emulated operator: it places calls into the board, plays the destinations it dials, keeps the ledger.

It moves each leg through its states on the loop's timers and tells the device on the
leg's port what the far side did; the device (a modem dialect or an FXO line) says it
in its own words. All methods run with the loop's lock held, except `Call`'s.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from emulator.ledger import Ledger, Leg
from emulator.ptyloop import PtyLoop

KEY_GAP_S = 0.15  # between two keys a caller presses


@dataclass
class Destination:
    number: str
    answer_after_s: float = 1.0
    talk_s: float = 5.0
    busy: bool = False
    no_answer: bool = False
    unreachable: bool = False
    lines: int | None = None  # simultaneous calls it takes; more get BUSY
    alert_after_s: float = 0.2  # post-dial delay: from ATD until it rings (alerting, +CLCC stat 3)


class NetworkClock:
    """Network time: `time_source()` (default `time.time`) shifted by `set()`; what AT+CCLK? and truth() report."""

    def __init__(self, time_source=None):
        self._time = time_source or time.time
        self._offset = 0.0
        self.has_time = True  # the operator sends network time (NITZ); set(None) withholds it
        self.tz_quarters = 0

    def set(self, unix: float | None, tz_quarters: int = 0) -> None:
        self.has_time = unix is not None
        self._offset = 0.0 if unix is None else unix - self._time()
        self.tz_quarters = tz_quarters

    def now(self) -> float:
        return self._time() + self._offset


class Call:
    """An inbound call as its caller experiences it."""

    def __init__(self, operator: Operator, leg: Leg):
        self._operator, self._leg = operator, leg
        self._done = threading.Event()
        self.id = leg.id

    @property
    def state(self) -> str:
        return self._leg.state

    def hangup(self) -> None:
        """The caller hangs up now."""
        self._operator.caller_hangs_up(self._leg)

    def wait(self, timeout: float) -> dict:
        """Wait until the call ended; returns {"answered", "ring_s", "talk_s", "connected_to", "ended_by", ...}."""
        if not self._done.wait(timeout):
            raise TimeoutError("call %d from %s still %s after %ss" % (self.id, self._leg.number, self.state, timeout))
        return self.result()

    def result(self) -> dict:
        with self._operator.loop.lock:
            t = self._operator.ledger.entry(self._leg)
            return {"id": self.id, "port": t["port"], "caller": t["caller"], "answered": t["answer"] is not None,
                    "ring_s": t["ring_s"], "talk_s": t["talk_s"], "connected_to": t["answered_by"],
                    "ended_by": t["ended_by"], "result": t["result"]}


class Operator:
    """Calls in and out of the devices in `ports` (port name -> device), and the destinations they reach."""

    def __init__(self, loop: PtyLoop, clock: NetworkClock, ring_limit_s: float):
        self.loop, self.clock, self.ring_limit_s = loop, clock, ring_limit_s
        self.ports: dict = {}
        self.destinations: dict[str, Destination] = {}
        self.ledger = Ledger(clock.now)
        self.numbers: dict[str, str] = {}  # phone number -> port of a device with a SIM (subscriber lines)
        self.outside = Ledger(clock.now)  # legs of subscriber devices (a bench's modems): not the board's truth
        self.audio_files: dict[str, float] = {}  # audio file name -> seconds it plays, on every modem's flash

    # ------------------------------------------------------------ inbound

    def call(self, port: str, caller: str, hangup_after_s: float | None, keys: str | None = None,
             keys_after_s: float = 1.0) -> Call:
        """Ring the device on `port` until it answers, the caller leaves, or the ring limit; once answered,
        the caller presses `keys` (one every KEY_GAP_S) from `keys_after_s` on."""
        device = self.ports[port]
        leg = self.ledger.new_leg("in", port, caller)
        leg.call = Call(self, leg)
        if keys:
            leg.on_answer = lambda picked: [picked.after(self.loop, keys_after_s + KEY_GAP_S * i, device.dtmf, d)
                                            for i, d in enumerate(keys)]
        busy = device.leg is not None or device.off_hook
        if busy or device.reg not in (1, 5) or device.booting:
            self.end(leg, "network", "busy" if busy else "unreachable")
            return leg.call
        device.leg = leg
        if hangup_after_s is not None:
            leg.patience = leg.after(self.loop, hangup_after_s, self.caller_hangs_up, leg)
        leg.after(self.loop, self.ring_limit_s, self.release_in, leg, "network", "unanswered")
        device.ring(leg, first=True)
        return leg.call

    def caller_hangs_up(self, leg: Leg) -> None:
        """From any thread (the caller's patience timer or Call.hangup)."""
        with self.loop.lock:
            if leg.dir == "in" and leg.state != "ended":
                self.release_in(leg, "caller", "answered" if leg.t_answer is not None else "abandoned")
        self.loop.kick()

    def release_in(self, leg: Leg, by: str, detail: str) -> None:
        """The caller's side ends an inbound leg (the caller or the operator's ring limit)."""
        if leg.state == "ended":
            return
        device = self.ports[leg.port]
        self.end(leg, by, detail)
        device.remote_gone(leg)

    # ------------------------------------------------------------ outbound

    def dial(self, device, number: str) -> Leg:
        """The device dialled `number`: a new outbound leg on it, played by the number's destination, or
        ringing the device that has that number (subscriber lines, `emulator.subscribers`)."""
        if number in self.numbers:
            from emulator.subscribers import dial_device

            return dial_device(self, device, number, self.ports[self.numbers[number]])
        leg = self.ledger.new_leg("out", device.port, number)
        leg.inbound = leg.near[0] if len(leg.near) == 1 else None  # the only inbound call in progress
        device.leg = leg
        d = self.destinations.get(number)
        if d is None or d.unreachable:
            leg.after(self.loop, 0.3, self._far_fails, device, leg, "unreachable")
            return leg
        taken = self.ledger.busy_lines(number) - 1
        if d.busy or (d.lines is not None and taken >= d.lines):
            leg.after(self.loop, 0.5, self._far_fails, device, leg, "busy")
            return leg
        leg.after(self.loop, d.alert_after_s, self._alerting, device, leg)
        if not d.no_answer:
            leg.after(self.loop, max(0.25, d.answer_after_s), self._far_answers, device, leg, d)
        leg.after(self.loop, self.ring_limit_s, self._far_fails, device, leg, "no_answer")
        return leg

    def device_answered(self, leg: Leg) -> None:
        """A device answered a call another device placed (subscriber lines)."""
        from emulator.subscribers import answered

        answered(self, leg)

    def _far_fails(self, device, leg, detail):
        if leg.state == "ended":
            return
        self.end(leg, "network", detail)
        device.far_failed(leg, detail)

    def _alerting(self, device, leg):
        if leg.state == "dialing":
            leg.state = "alerting"
            device.alerting(leg)

    def _far_answers(self, device, leg, d):
        if leg.state not in ("dialing", "alerting"):
            return
        leg.cancel_timers()
        leg.state, leg.t_answer = "active", time.monotonic()
        device.far_answered(leg)
        leg.after(self.loop, d.talk_s, self._far_hangs_up, device, leg)

    def _far_hangs_up(self, device, leg):
        if leg.state == "active":
            self.end(leg, "destination", "answered")
            device.remote_gone(leg)

    # ------------------------------------------------------------ either way

    def gateway_hangs_up(self, leg: Leg) -> None:
        """The board hangs up (ATH, HOOK ON): a ringing inbound call is rejected, a ringing outbound one cancelled."""
        if leg.t_answer is not None:
            detail = "answered"
        else:
            detail = "rejected" if leg.dir == "in" else "cancelled"
        self.end(leg, "gateway", detail)

    def end(self, leg: Leg, by: str, detail: str) -> None:
        if leg.state == "ended":
            return
        leg.finish(by, detail)
        self.ledger.ended(leg)
        self.outside.ended(leg)
        device = self.ports.get(leg.port)
        if device is not None and device.leg is leg:
            device.leg = None
        if leg.call is not None:
            leg.call._done.set()
        if leg.peer is not None:  # a call between two devices: the other side learns it is over
            from emulator.subscribers import peer_ended

            peer_ended(self, leg)

    def shut_down(self) -> None:
        for leg in list(self.ledger.live.values()) + list(self.outside.live.values()):
            self.end(leg, "network", "shutdown")
