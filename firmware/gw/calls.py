"""The call machine: one coroutine per inbound call, from ring to record.

Decides with `protocols.routing.decide` on the live busy counts, answers the
caller only once a target answers (late answer: an unanswered caller is never
charged), dials the targets in order on their `via` ports, bridges, fails over
on busy / no answer / failure, applies fallback and after-hours actions, and
always releases both legs. Every inbound call ends as exactly one record.
"""

import asyncio

from protocols import routing

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
        self.releasing = False
        self.released = asyncio.Event()


class CallMachine:
    def __init__(self, lines, store, clock, hw, table_ref, log=print, on_record=None):
        self.lines = lines  # port name -> Line
        self.store = store
        self.clock = clock
        self.hw = hw
        self.table_ref = table_ref  # a callable returning the current routing.Table or None
        self.log = log
        self.on_record = on_record  # called after each record is stored (the link sends events)
        self.busy = {}  # target id -> calls dialling or talking
        self.turns = {}  # route id -> round-robin counter
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
            self.log("calls: %s rings from %s" % (line.name, arg))
            call = _Call(line, arg, self.clock.now(), self.clock.ms())
            self.by_line[line.name] = call  # line events now belong to the new call
            asyncio.create_task(self._run(call, busy))
        elif event == "hangup":
            call = self.by_line.get(line.name)
            if call is None:
                return
            if call.line is line:
                call.caller_gone.set()
            else:
                call.far_gone.set()
        elif event == "alarm":
            code, detail = arg
            self.store.append({"t": "alarm", "at": self.clock.now(), "code": code, "detail": detail,
                               "port": line.name})

    async def _run(self, call, previous=None):
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
            call.releasing = True
            await self._release(call)
            call.released.set()
            if rec["outcome"] != "answered":
                rec["ring_s"] = self._secs(call.t0)
            self.calls += 1
            self.log("calls: %s from %s: %s (%s) via %s" % (rec["port"], rec["caller"], rec["outcome"],
                                                           rec["reason"], rec["target"]))
            self.store.append(rec)
            if self.on_record:
                self.on_record(rec)

    async def _route(self, call, rec):
        await self.clock.refresh(call.line)
        call.start = rec["start"] = self.clock.now()
        table = self.table_ref()
        if table is None:
            rec["reason"] = "no_route"
            return
        d = routing.decide(table, call.line.name, call.caller, call.start, busy=self.busy)
        route = _route_of(table, d.route)
        if route is not None and route.strategy == "round_robin":
            turn = self.turns.get(route.id, 0)
            self.turns[route.id] = turn + 1
            d = routing.decide(table, call.line.name, call.caller, call.start, busy=self.busy, turn=turn)
        rec["route"], rec["reason"] = d.route, d.reason
        if d.action == "dial" or d.action == "forward":
            if await self._dial_in_order(call, rec, table, d.targets):
                return
            if call.caller_gone.is_set():
                return
            if d.action == "dial":
                await self._fallback(call, rec, table, route.fallback)
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
            if call.caller_gone.is_set():
                rec["outcome"], rec["reason"] = "abandoned", "caller_hangup"
                return False
            target = table.targets[tid]
            if target.denied or table.is_denied(target.number):
                continue  # the table check again, right before dialling: never dial a denied number
            cap = target.max_calls
            if cap is not None and self.busy.get(tid, 0) >= cap:
                continue
            out = self._free_line(target.via)
            if out is None:
                rec["reason"] = "all_busy"
                continue
            rec["attempts"] += 1
            rec["target"] = tid
            result = await self._attempt(call, out, tid, target)
            rec["tries"].append([tid, result])
            if result == "answered":
                rec["outcome"], rec["reason"] = "answered", "ok"
                rec["ring_s"] = self._secs(call.t0)
                talk0 = self.clock.ms()
                await self._talk(call, out)
                rec["talk_s"] = self._secs(talk0)
                self._done_with(out, tid)
                return True
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

    async def _attempt(self, call, out, tid, target):
        """Dial one target while watching the caller; 'abandoned' if the caller left first."""
        call.out = out
        call.far_gone = asyncio.Event()
        self.by_line[out.name] = call
        self.busy[tid] = self.busy.get(tid, 0) + 1
        dialling = asyncio.create_task(out.dial(target.number, target.ring_timeout_s))
        result = await _race(dialling, call.caller_gone)
        if result is None:
            await out.hangup()
            return "abandoned"
        if result != "answered":
            return result
        if call.caller_gone.is_set() or not await call.line.answer():
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
            await out.hangup()

    def _done_with(self, out, tid):
        self.by_line.pop(out.name, None)
        self.busy[tid] = max(0, self.busy.get(tid, 0) - 1)

    async def _release(self, call):
        if call.out is not None and self.by_line.get(call.out.name) is call:
            await call.out.hangup()
            self.by_line.pop(call.out.name, None)
        await call.line.hangup()
        if self.by_line.get(call.line.name) is call:
            del self.by_line[call.line.name]


def _route_of(table, rid):
    if rid is None:
        return None
    for r in table.routes:
        if r.id == rid:
            return r
    return None


async def _race(task, event):
    """Await `task` unless `event` fires first (then cancel it and return None)."""
    async def watch():
        await event.wait()
        task.cancel()

    watcher = asyncio.create_task(watch())
    try:
        return await task
    except asyncio.CancelledError:
        if event.is_set():
            return None
        raise
    finally:
        watcher.cancel()


async def _wait_any(a, b):
    """Return once either event is set."""
    done = asyncio.Event()

    async def relay(ev):
        await ev.wait()
        done.set()

    tasks = [asyncio.create_task(relay(a)), asyncio.create_task(relay(b))]
    try:
        await done.wait()
    finally:
        for t in tasks:
            t.cancel()
