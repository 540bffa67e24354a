"""The call machine: one coroutine per inbound call, from ring to record.

Decides with `protocols.routing.decide` on the live busy counts, answers the
caller only once a target answers (late answer: an unanswered caller is never
charged; a menu route answers first to play its prompt, gw.menu), dials the
targets in order on their `via` ports, bridges, fails over on busy / no answer /
failure, applies fallback and after-hours actions, and
always releases both legs. Every inbound call ends as exactly one record.
"""

import asyncio
import time

from gw.callwait import collect_idle as _collect_idle, race as _race, wait_any as _wait_any  # noqa: F401
from protocols import routing

RELEASE_WAIT_MS = 3000  # a line's hang-up (ATH, HOOK ON) answers within a command timeout
_OUTCOME_OF_REJECT = {"after_hours": "after_hours", "closed_day": "after_hours", "denied": "denied"}


class _Call:
    """What the machine knows of one inbound call while it runs."""

    def __init__(self, line, caller, start, t0):
        self.line = line
        self.caller = caller
        self.start = start  # UTC seconds, for the decision and the record
        self.t0 = t0  # monotonic ms, for durations
        self.caller_gone = asyncio.Event()
        self.far_gone = asyncio.Event()
        self.out = None  # the outbound line while dialling or talking
        self.out_target = None  # the target id it dials
        self.releasing = 0  # 1: its record stored, its legs being released; 2: its own line's hang-up sent too
        self.released = asyncio.Event()
        self.answered = False  # the caller's leg is up (a menu answers it before any target does)
        self.menu = None  # the gw.menu.MenuSession collecting this caller's key
        # (table, decision, target id or None) when decided as it rang, the target's ATD then written (_dial_at_once)
        self.rang = None
        self.stamps = None  # time.ticks_us() when the +CLIP was read and the first ATD written (logged)


class CallMachine:
    # Decide and write the first ATD in the line reader's task as the +CLIP is read (_dial_at_once). It was off while
    # the outbox's batch write opened each slot beside its segment: with a 32 KiB table on esp32-2gsm there was no
    # second 688 B piece for that (gw.outbox now keeps the staged lines; one file open at a time)
    dial_at_once = True

    def __init__(self, lines, store, clock, hw, table_ref, log=print, on_record=None):
        self.lines = lines  # port name -> Line
        self.store = store
        self.clock = clock
        self.hw = hw
        self.table_ref = table_ref  # a callable returning the current routing.Table or None
        self.log = log
        self.on_record = on_record  # called after each record is stored (the link sends events)
        self.busy = {}  # target id -> calls dialling or talking
        # routing.turn_key_of(...) -> round-robin counter; the store's snapshots carry them over a reboot (a turn
        # as old as the last snapshot, at most a minute or a segment of calls: a few callers start one target early)
        snaps = getattr(store, "snaps", None)
        self.turns = snaps.turns if snaps is not None else {}
        self.by_line = {}  # port name -> _Call using that line (inbound or outbound leg)
        self.calls = 0
        for line in lines.values():
            line.listener = self.on_line_event

    def in_progress(self):
        return len([c for p, c in self.by_line.items() if c.line.name == p])

    def on_line_event(self, line, event, arg):
        """Called by the line drivers; never blocks."""
        if event == "ring":
            busy = self.by_line.get(line.name)
            if busy is not None and not busy.releasing:
                self.log("calls: ring on busy line " + line.name + " ignored")
                return
            call = _Call(line, arg, self.clock.now(), self.clock.ms())
            self.by_line[line.name] = call  # line events now belong to the new call
            # the last call on this line is done with it (its hang-up sent: rings before its OK are not reported)
            if self.dial_at_once and (busy is None or busy.releasing == 2):
                try:
                    self._dial_at_once(call)
                except Exception as e:  # a bug here must not lose the call: _run decides again
                    call.rang = None
                    self.log("calls: dial at once: %r" % e)
            asyncio.create_task(self._run(call, busy))
        elif event == "hangup":
            call = self.by_line.get(line.name)
            if call is None:
                return
            if call.line is line:
                call.caller_gone.set()
            else:
                call.far_gone.set()
        elif event == "dtmf" or event == "played":  # a key, or the end of a prompt (menus)
            call = self.by_line.get(line.name)
            if call is not None and call.line is line and call.menu is not None:
                call.menu.on_event(event, arg)
        elif event == "time":  # the network's time (NITZ): the clock follows it off any call's path
            self.clock.set(arg, line.name)
        elif event == "alarm":
            code, detail = arg
            self.store.append({"t": "alarm", "at": self.clock.now(), "code": code, "detail": detail,
                               "port": line.name})

    def _dial_at_once(self, call):
        """Decide and write the first target's ATD here, in the line reader's task, as the +CLIP is read: no other
        task runs before it (issue 14: +CLIP to ATD within the ATD line's own UART time). When the first target
        cannot be dialled at once (its line busy, its UART in a command, a menu route), _run goes the long way."""
        table = self.table_ref()
        if table is None:
            return
        d = routing.decide(table, call.line.name, call.caller, call.start, busy=self.busy, turn=self.turns)
        if d.turn_key is not None and d.action != "menu":  # the next call on this route starts one target on
            _advance(self.turns, d.turn_key)
        call.rang = (table, d, None)
        if (d.action != "dial" and d.action != "forward") or not d.targets:
            return
        tid = d.targets[0]
        target = table.targets[tid]
        if target.denied or table.is_denied(target.number):
            return
        if target.max_calls is not None and self.busy.get(tid, 0) >= target.max_calls:
            return
        out = self._free_line(target.via)
        if out is not None and hasattr(out, "dial_now") and out.dial_now(target.number):
            call.rang = (table, d, tid)
            self._claim(call, out, tid)

    async def _run(self, call, previous=None):
        self.log("calls: %s rings from %s" % (call.line.name, call.caller))
        if previous is not None:  # a new call right after ATH: let the last one finish releasing first
            await previous.released.wait()
        rec = {"t": "call", "start": call.start, "port": call.line.name, "caller": call.caller, "route": None,
               "outcome": "rejected", "target": None, "attempts": 0, "ring_s": 0, "talk_s": 0,
               "reason": "no_route", "tries": []}
        try:
            await self._route(call, rec)
        except Exception as e:  # a bug must not leave legs up or lose the record
            self.log("calls: error " + repr(e))
            rec["outcome"], rec["reason"] = "failed", "failed"
        finally:
            call.releasing = 1
            if rec["outcome"] != "answered":
                rec["ring_s"] = self._secs(call.t0)
            self.calls += 1
            # on flash before the legs are released: a power cut during the hang-ups loses no record
            try:
                self.store.append(rec)
            except MemoryError:  # the legs are released all the same (a line left up takes no more calls)
                self.log("calls: the record of %s not stored: MemoryError" % rec["caller"])
            await self._release(call)
            call.released.set()
            self.log("calls: %s from %s: %s (%s) via %s%s" % (rec["port"], rec["caller"], rec["outcome"],
                                                             rec["reason"], rec["target"], _latency(call)))
            if self.on_record:
                self.on_record(rec)
            if not self.by_line:
                _collect_idle()

    async def _route(self, call, rec):
        # The decision is made once, with every route's turn at hand, and the clock is the board's (gw.clock, set
        # by network time off this path): as the call rang (_dial_at_once), else here.
        table, d, _ = call.rang or (None, None, None)
        if d is None:
            table = self.table_ref()
            if table is None:
                rec["reason"] = "no_route"
                return
            d = routing.decide(table, call.line.name, call.caller, call.start, busy=self.busy, turn=self.turns)
            if d.turn_key is not None and d.action != "menu":
                _advance(self.turns, d.turn_key)
        if d.action == "menu":  # answer, play the prompt, collect a key; then decide with it
            from gw import menu  # loaded with the first menu call: no heap for it on boards without menus

            keys = await menu.ask(call, table.menus[d.menu], rec, self.log, self._secs)
            d = routing.decide(table, call.line.name, call.caller, call.start, busy=self.busy, turn=self.turns,
                               keys=keys)
            if call.caller_gone.is_set():  # hung up in the menu: the option only when a key was pressed
                rec["route"], rec["outcome"], rec["reason"] = d.route, "abandoned", "caller_hangup"
                if keys:
                    rec["option"] = d.option
                return
            if d.turn_key is not None:
                _advance(self.turns, d.turn_key)
        if d.option is not None:
            rec["option"] = d.option
        rec["route"], rec["reason"] = d.route, d.reason
        if d.action == "dial" or d.action == "forward":
            if await self._dial_in_order(call, rec, table, d.targets):
                return
            if call.caller_gone.is_set():
                return
            if d.action == "dial":
                await self._fallback(call, rec, table, d.fallback)
            else:
                rec["outcome"] = "failed"
            return
        self._settle(rec, d.action, d.reason)

    def _settle(self, rec, action, reason):
        if action == "callback":
            rec["outcome"] = "callback"
        elif action == "reject":
            rec["outcome"] = _OUTCOME_OF_REJECT.get(reason, "rejected")
        rec["reason"] = reason

    async def _fallback(self, call, rec, table, act):
        name, tid = act
        if name == "forward" and not table.targets[tid].denied:
            if await self._dial_in_order(call, rec, table, [tid]):
                return
            if call.caller_gone.is_set():
                return
            rec["outcome"] = "failed"
            return
        rec["outcome"] = "callback" if name == "callback" else "failed"

    async def _dial_in_order(self, call, rec, table, tids):
        """Try each target; True when one answered and the call was bridged to its end."""
        for tid in tids:
            started = not rec["attempts"] and call.rang is not None and call.rang[2] == tid  # ATD out as it rang
            if call.caller_gone.is_set() and not started:
                rec["outcome"], rec["reason"] = "abandoned", "caller_hangup"
                return False
            target = table.targets[tid]
            if started:
                out = call.out  # checked and claimed by _dial_at_once
            else:
                if target.denied or table.is_denied(target.number):
                    continue  # the table check again, right before dialling: never dial a denied number
                cap = target.max_calls
                if cap is not None and self.busy.get(tid, 0) >= cap:
                    continue
                out = self._free_line(target.via) or await self._line_after_release(target.via)
                if out is None:
                    rec["reason"] = "all_busy"
                    continue
            rec["attempts"] += 1
            rec["target"] = tid
            result = await self._attempt(call, out, tid, target, started)
            if rec["attempts"] == 1:
                atd_us = getattr(out, "atd_us", None)
                call.stamps = None if atd_us is None else (getattr(call.line, "ring_us", 0), atd_us)
            rec["tries"].append([tid, result])
            if result == "answered":
                rec["outcome"], rec["reason"] = "answered", "ok"
                rec["ring_s"] = self._secs(call.t0)
                talk0 = self.clock.ms()
                await self._talk(call, out)
                rec["talk_s"] = self._secs(talk0)
                return True  # the centre's leg stays counted until _release hangs it up, after the record
            self._done_with(out, tid)
            if result == "abandoned":
                rec["outcome"], rec["reason"] = "abandoned", "caller_hangup"
                return False
            rec["reason"] = result
        if call.caller_gone.is_set():
            rec["outcome"], rec["reason"] = "abandoned", "caller_hangup"
        return False

    def _secs(self, t0):
        return (self.clock.since_ms(t0) + 500) // 1000

    def _free_line(self, via):
        for port in via:
            line = self.lines.get(port)
            if line is not None and line.ready and port not in self.by_line:
                return line
        return None

    async def _line_after_release(self, via):
        """A line of `via` whose last call is being hung up (its record stored, the ATH / HOOK ON in flight) is
        free in a moment: wait for that, bounded, rather than turn the caller away as all busy."""
        for port in via:
            held = self.by_line.get(port)
            if held is not None and held.releasing:
                try:
                    await asyncio.wait_for_ms(held.released.wait(), RELEASE_WAIT_MS)
                except asyncio.TimeoutError:
                    return None
                return self._free_line(via)
        return None

    def _claim(self, call, out, tid):  # `out` dials `tid` for `call`
        call.out, call.out_target = out, tid
        call.far_gone = asyncio.Event()
        self.by_line[out.name] = call
        self.busy[tid] = self.busy.get(tid, 0) + 1

    async def _attempt(self, call, out, tid, target, started=False):
        """Dial one target while watching the caller; 'abandoned' if the caller left first. `started`: its ATD was
        written as the call rang (_dial_at_once), the line already claimed."""
        if not started:
            self._claim(call, out, tid)
        # the dial's task runs next: its ATD is written on its first step (a dial inside this task would take
        # the stray cancellations of its wait_for timers into the rest of the call)
        dialling = out.dial(target.number, target.ring_timeout_s, started=True) if started else \
            out.dial(target.number, target.ring_timeout_s)
        result = await _race(asyncio.create_task(dialling), call.caller_gone)
        if result is None:
            await out.hangup()
            return "abandoned"
        if result != "answered":
            return result
        if call.caller_gone.is_set() or not (call.answered or await call.line.answer()):
            await out.hangup()
            return "abandoned"
        return "answered"

    async def _talk(self, call, out):
        self.hw.bridge(call.line.name, out.name)
        try:
            while not (call.caller_gone.is_set() or call.far_gone.is_set()):
                await _wait_any(call.caller_gone, call.far_gone)
        finally:
            self.hw.unbridge(call.line.name, out.name)

    def _done_with(self, out, tid):
        self.by_line.pop(out.name, None)
        self.busy[tid] = max(0, self.busy.get(tid, 0) - 1)

    async def _release(self, call):
        if call.out is not None and self.by_line.get(call.out.name) is call:
            await call.out.hangup()
            self._done_with(call.out, call.out_target)
        call.releasing = 2
        await call.line.hangup()
        if self.by_line.get(call.line.name) is call:
            del self.by_line[call.line.name]


def _latency(call):
    """The firmware's own +CLIP -> first ATD, and both stamps (bench/firmware_bench.py reads them from the console:
    on the unix port ticks_us is the host's CLOCK_MONOTONIC, the emulator's clock)."""
    st = call.stamps
    if st is None:
        return ""
    return "; clip_atd_us=%d clip_read_us=%d atd_write_us=%d" % (time.ticks_diff(st[1], st[0]), st[0], st[1])


def _advance(turns, key):
    if key not in turns and len(turns) >= 64:  # keys of tables long gone: start over (bounded)
        turns.clear()
    turns[key] = (turns.get(key, 0) + 1) % 0x40000000
