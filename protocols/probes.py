"""Probe calls (DESIGN §5a): the table's `probes` schedule, and when a probe is due.

A probe dials a target only to hear it ring (alerting), so the controller learns whether each centre is
reachable now and its post-dial delay. Kept out of protocols.table: a table without `probes` never
imports this module (a board's heap), and the table's loader stays one piece.

`probes`: `[{"target": id, "every_s": int, "hours": [...]}]`; the target must be one of the table's,
each target probed by one entry at most, `every_s` from MIN_EVERY_S to MAX_EVERY_S, `hours` as a route's
(absent: at any time). Errors name the field (`probes[1].hours[0].end`).
"""

from collections import namedtuple

from protocols import checks
from protocols.checks import at, item

MIN_EVERY_S = 600  # no centre is rung more often than every ten minutes
MAX_EVERY_S = 7 * 86400
MAX_PROBES = 64

Probe = namedtuple("Probe", ("target", "every_s", "hours"))


def load(src, targets, window, shared):
    """The table source's `probes` (absent or null: none) -> a tuple of Probe.

    `window(w, hours_path, i)` reads window i of `hours` as a route's (protocols.table); `shared` holds one
    copy of each hours tuple. Raises protocols.table.TableError naming the field."""
    from protocols.table import TableError

    if "probes" not in src or src.get_raw_null("probes"):
        return ()
    out = []
    seen = {}
    i = 0
    for p in src.elements("probes"):
        path = item("probes", i)
        if i >= MAX_PROBES:
            raise TableError("probes", "has more than the %d probes allowed" % MAX_PROBES)
        checks.need_object(p, path)
        tid = checks.need(p, "target", path, str)
        if tid not in targets:
            raise TableError(at(path, "target"), "names no target of this table")
        if tid in seen:
            raise TableError(at(path, "target"), "is probed by probes[%d] already" % seen[tid])
        seen[tid] = i
        every = checks.need(p, "every_s", path, int)
        if not MIN_EVERY_S <= every <= MAX_EVERY_S:
            raise TableError(at(path, "every_s"), "must be between %d and %d seconds" % (MIN_EVERY_S, MAX_EVERY_S))
        hours = p.get("hours")
        if hours is not None:
            hp = at(path, "hours")
            checks.typed(hours, hp, list)
            hours = tuple(window(hours[j], hp, j) for j in range(len(hours)))
            hours = shared.setdefault(hours, hours)
        out.append(Probe(targets[tid].id, every, hours))
        i += 1
    return tuple(out)


def in_hours(table, probe, now):
    """True when `probe` may run at UTC second `now`: inside its hours (local time of the table's tz)."""
    if probe.hours is None:
        return True
    from protocols import routing, tz

    return routing._open(probe.hours, tz.localtime(now, table.tz))  # the routes' own rule
