"""Probe calls (DESIGN §5a): is each centre reachable right now, and how long until it rings?

The board runs the table's `probes` schedule itself, uplink or not, and the `probe` command runs one now.
A probe dials the target's number on a free GSM line of its `via` (the line must tell alerting: +CLCC stat
3), only while the target has a free line (`max_calls`, counting the calls in progress, the probe counted
as one while it runs), never when the number is denied, and hangs up as soon as it rings or at
`ring_timeout_s`: no operator is disturbed by an answered call. It ends as one `probe` record with the
post-dial delay (`pdd_ms`).

Schedule: each probe target is first due FIRST_DUE_S after a table first names it (at boot: the stored one), then
every `every_s` after each run; one that is out of its hours, or finds no free line or port, is tried again
RETRY_S later. Times are the monotonic clock's: setting the UTC clock moves no probe.
"""

import asyncio
import time

from gw.outbound import Hold, free_line, release
from protocols.builders import MAX_PDD_MS

FIRST_DUE_S = 10
RETRY_S = 30
TICK_MS = 1000
OUTCOMES = ("ringing", "busy", "no_answer", "unreachable")  # a dial's result kept as it is; others: failed


class Prober:
    def __init__(self, machine, store, clock, table_ref, log=print, on_record=None):
        self.m = machine
        self.store = store
        self.clock = clock
        self.table_ref = table_ref
        self.log = log
        self.on_record = on_record
        self.due = {}  # target id -> clock.ms() when its scheduled probe is due
        self.probes = 0

    def start(self, tid):
        """Probe target `tid` now -> (ok, result, error) at once; the probe runs in a task of its own."""
        table = self.table_ref()
        target = table.targets.get(tid) if table is not None else None
        if target is None:
            return False, None, "unknown_target"
        if target.denied or table.is_denied(target.number):
            return False, None, "denied"
        cap = target.max_calls
        if cap is not None and self.m.busy.get(tid, 0) >= cap:
            return False, None, "no_free_line"
        line = free_line(self.m, target.via, "gsm")
        if line is None:
            return False, None, "no_free_port"
        hold = Hold(line)
        self.m.by_line[line.name] = hold
        self.m.busy[tid] = self.m.busy.get(tid, 0) + 1
        asyncio.create_task(self._run(tid, target, hold))
        return True, {"port": line.name}, None

    async def _run(self, tid, target, hold):
        line = hold.line
        rec = {"t": "probe", "start": self.clock.now(), "target": tid, "port": line.name, "outcome": "failed",
               "pdd_ms": None}
        try:
            res = await line.dial(target.number, target.ring_timeout_s, True)
            if res == "answered":  # answered before any alerting was heard: it did ring; free the operator
                await line.hangup()
                res = "ringing"
            rec["outcome"] = res if res in OUTCOMES else "failed"
            pdd = getattr(line, "pdd_ms", None)
            if pdd is not None:
                rec["pdd_ms"] = max(0, min(pdd, MAX_PDD_MS))
        except Exception as e:  # a bug must not leave the line up or lose the record
            self.log("probe: error " + repr(e))
            await line.hangup()
        finally:
            release(self.m, hold, line)
            self.m.busy[tid] = max(0, self.m.busy.get(tid, 0) - 1)
            self._record(rec)

    def _record(self, rec):
        self.probes += 1
        self.log("probe: %s via %s: %s (pdd %s ms)" % (rec["target"], rec["port"], rec["outcome"], rec["pdd_ms"]))
        self.store.append(rec)
        if self.on_record:
            self.on_record(rec)

    # ------------------------------------------------------------ the table's schedule

    async def run(self):
        """Run the running table's probes when due, for ever."""
        while True:
            await asyncio.sleep_ms(TICK_MS)
            try:
                self._tick()
            except Exception as e:  # never stop the schedule
                self.log("probe: schedule error " + repr(e))

    def _tick(self):
        table = self.table_ref()
        probes = table.probes if table is not None else ()
        now = self.clock.ms()
        if len(self.due) > len(probes):  # targets no longer probed
            keep = [p.target for p in probes]
            for tid in list(self.due):
                if tid not in keep:
                    del self.due[tid]
        for p in probes:
            due = self.due.get(p.target)
            if due is None:
                due = self.due[p.target] = time.ticks_add(now, FIRST_DUE_S * 1000)
            if time.ticks_diff(now, due) < 0:
                continue
            self.due[p.target] = time.ticks_add(now, self._run_due(table, p) * 1000)

    def _run_due(self, table, p):
        """Start a due probe -> seconds until it is due again."""
        if p.hours is not None:
            if not self.clock.synced:
                return RETRY_S  # local time unknown: whether it is in its hours too
            from protocols import probes

            if not probes.in_hours(table, p, self.clock.now()):
                return RETRY_S
        target = table.targets[p.target]
        if target.denied or table.is_denied(target.number):  # never dialled; the controller learns why
            self._record({"t": "probe", "start": self.clock.now(), "target": p.target, "port": None,
                          "outcome": "denied", "pdd_ms": None})
            return p.every_s
        ok, _, why = self.start(p.target)
        return p.every_s if ok else RETRY_S
