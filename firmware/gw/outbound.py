"""Operators call citizens (DESIGN §5a, the `call` command): agent first, then the citizen, bridged.

A GSM module carries one call, so an outbound call takes two free lines: the citizen's leg on `via` (or the
first free out port: a port the table's targets dial from), whose number the citizen sees and the record
names, and the agent's leg on another free line. Both are claimed in the call machine's `by_line` the moment
the command is accepted, so inbound calls never dial out on them and rings there are ignored; the machine's
hangup events reach the hold below like any call's. `deny` is checked on both numbers when the command
comes and again right before each dial. Every accepted call ends as one `outbound` record.
"""

import asyncio

from gw.calls import _race, _wait_any

AGENT_NO_ANSWER = {"busy": "agent_no_answer", "no_answer": "agent_no_answer"}
CITIZEN_NOT_REACHED = {"busy": "citizen_busy", "no_answer": "citizen_no_answer"}
DEFAULT_RING_S = 30


class Hold:
    """What the call machine sees on a line used by an outbound call or a probe: `line` is the leg whose
    hangup sets `caller_gone` (the agent's); a hangup on any other held line sets `far_gone`."""

    def __init__(self, line):
        self.line = line
        self.out = None
        self.caller_gone = asyncio.Event()
        self.far_gone = asyncio.Event()
        self.releasing = False
        self.released = asyncio.Event()


def out_ports(table, lines):
    """Port names in the order an outbound leg takes them: the ports the table's targets dial from, then
    the others (each once)."""
    order = []
    if table is not None:
        for t in table.targets.values():
            for p in t.via:
                if p not in order:
                    order.append(p)
    for p in sorted(lines):
        if p not in order:
            order.append(p)
    return order


def free_line(machine, ports, kind=None):
    """The first ready line among `ports` no call holds (of `kind` when given), or None."""
    for p in ports:
        line = machine.lines.get(p)
        if line is not None and line.ready and p not in machine.by_line and (kind is None or line.kind == kind):
            return line
    return None


def release(machine, hold, *lines):
    for line in lines:
        if machine.by_line.get(line.name) is hold:
            del machine.by_line[line.name]
    hold.releasing = True
    hold.released.set()


class Outbound:
    def __init__(self, machine, store, clock, table_ref, log=print, on_record=None):
        self.m = machine
        self.store = store
        self.clock = clock
        self.table_ref = table_ref
        self.log = log
        self.on_record = on_record
        self.calls = 0

    def _denied(self, number):
        table = self.table_ref()
        return table is not None and table.is_denied(number)

    def start(self, cid, args):
        """Accept or refuse at once -> (ok, result, error); an accepted call runs in a task of its own.
        `args` passed protocols.messages' checks (numbers, via, ring_timeout_s)."""
        agent, citizen = args["agent"], args["citizen"]
        if self._denied(agent) or self._denied(citizen):
            return False, None, "denied"
        via = args.get("via")
        ports = [via] if via is not None else out_ports(self.table_ref(), self.m.lines)
        out = free_line(self.m, ports)
        if out is None:
            return False, None, "no_free_port"
        rest = out_ports(self.table_ref(), self.m.lines)
        rest.remove(out.name)
        agent_line = free_line(self.m, rest)
        if agent_line is None:
            return False, None, "no_free_port"
        hold = Hold(agent_line)
        self.m.by_line[agent_line.name] = hold
        self.m.by_line[out.name] = hold
        ring = args.get("ring_timeout_s") or DEFAULT_RING_S
        asyncio.create_task(self._run(cid, hold, agent_line, out, agent, citizen, ring))
        return True, {"port": out.name, "agent_port": agent_line.name}, None

    async def _run(self, cid, hold, a, c, agent, citizen, ring):
        t0 = self.clock.ms()
        rec = {"t": "outbound", "cmd": cid, "start": self.clock.now(), "port": c.name, "agent": agent,
               "citizen": citizen, "outcome": "failed", "ring_s": 0, "talk_s": 0}
        try:
            rec["outcome"], talk0 = await self._legs(hold, a, c, agent, citizen, ring)
            if talk0 is not None:
                rec["ring_s"] = self._secs(t0)
                try:
                    self.m.hw.bridge(a.name, c.name)
                    while not (hold.caller_gone.is_set() or hold.far_gone.is_set()):
                        await _wait_any(hold.caller_gone, hold.far_gone)
                finally:
                    self.m.hw.unbridge(a.name, c.name)
                rec["talk_s"] = self._secs(talk0)
        except Exception as e:  # a bug must not leave legs up or lose the record
            self.log("outbound: error " + repr(e))
            rec["outcome"] = "failed"
        finally:
            await c.hangup()
            await a.hangup()
            release(self.m, hold, a, c)
            if rec["outcome"] != "answered":
                rec["ring_s"] = self._secs(t0)
            self.calls += 1
            self.log("outbound: %s agent %s citizen %s via %s: %s" % (cid, agent, citizen, c.name, rec["outcome"]))
            self.store.append(rec)
            if self.on_record:
                self.on_record(rec)

    async def _legs(self, hold, a, c, agent, citizen, ring):
        """Ring the agent, then the citizen -> (outcome, ms when both were up or None)."""
        if self._denied(agent):  # the table may have changed since the command came
            return "failed", None
        res = await a.dial(agent, ring)
        if res != "answered":
            return AGENT_NO_ANSWER.get(res, "failed"), None
        if hold.caller_gone.is_set() or self._denied(citizen):
            return "failed", None
        hold.out = c
        dialling = asyncio.create_task(c.dial(citizen, ring))
        res = await _race(dialling, hold.caller_gone)  # the agent may give up while the citizen rings
        if res is None:
            return "citizen_no_answer", None
        if res != "answered":
            return CITIZEN_NOT_REACHED.get(res, "failed"), None
        return "answered", self.clock.ms()

    def _secs(self, t0):
        return (self.clock.since_ms(t0) + 500) // 1000
