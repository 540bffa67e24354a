"""A centre's lines are shared: each gateway that dials it gets a share of its capacity as `max_calls`.

Each gateway enforces only its own cap, so four gateways allowed 3 calls each could put 12 calls on a
centre with 3 lines. The compiler splits each centre's lines among the gateways that dial it so that the
caps never add up to more than its lines, whatever the numbers (issue 11 part 5):

- at least as many lines as gateways: one line each, the rest by each gateway's peak of concurrent calls
  to that centre over the last 28 days (largest remainders; equal shares without history);
- fewer lines than gateways: one line each to the gateways with the highest peaks (ties: the smaller
  gateway id), none to the others. A gateway with no line gets `max_calls` 0 for that target, which the
  contract allows (DESIGN §4: 0 or more) and the routing decision treats as a target at its cap: its calls
  go to the route's next target or its fallback (reason `all_busy`), and the firmware never dials it, not
  even as a forward or a probe. The split's warning names the centre, its lines, the number of gateways
  and those that got no line; compile responses, `citygate route add` and GET /api/v1/capacity show it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.models import Record

HISTORY_S = 28 * 86400


@dataclass
class Split:
    centre: str
    capacity: int
    shares: dict[str, int] = field(default_factory=dict)  # gateway id -> max_calls
    peaks: dict[str, int] = field(default_factory=dict)

    @property
    def no_line(self) -> list[str]:
        """The gateways that dial this centre but got none of its lines (fewer lines than gateways)."""
        return sorted(g for g, n in self.shares.items() if n == 0)

    @property
    def warning(self) -> str | None:
        n = len(self.shares)
        if 0 < self.capacity < n:
            return (f"centre {self.centre} has {self.capacity} lines but {n} gateways dial it: no line for "
                    f"{', '.join(self.no_line)} (their calls go to the route's next target or fallback)")
        return None


def split(capacity: int, weights: dict[str, int]) -> dict[str, int]:
    """Lines per gateway, never more than `capacity` in all: one each and the rest by weight (largest
    remainders; ties by id); with fewer lines than gateways, one each to the heaviest (ties: the smaller id)
    and 0 to the others. A negative weight counts as 0."""
    ids = sorted(weights)
    if not ids or capacity <= 0:  # a centre with no lines takes no calls from anyone
        return dict.fromkeys(ids, 0)
    if capacity <= len(ids):
        ranked = sorted(ids, key=lambda g: (-max(weights[g], 0), g))
        return {g: int(g in ranked[:capacity]) for g in ids}
    weight = {g: max(weights[g], 0) for g in ids}
    if not any(weight.values()):  # no history: equal shares
        weight = dict.fromkeys(ids, 1)
    total, spare = sum(weight.values()), capacity - len(ids)
    # integer quotas (no float rounding can make the shares add up to more than the lines)
    quota = {g: divmod(spare * weight[g], total) for g in ids}
    shares = {g: 1 + quota[g][0] for g in ids}
    left = capacity - sum(shares.values())  # fewer than len(ids), never negative
    for g in sorted(ids, key=lambda g: (-quota[g][1], g))[:left]:
        shares[g] += 1
    return shares


def peak_concurrency(s: Session, gateways: list[str], now: int | None = None) -> dict[tuple[str, str], int]:
    """The most calls each gateway had in progress at once to each centre over the last 28 days (ringing
    and talking), from the stored call records."""
    since = (now or int(time.time())) - HISTORY_S
    events: dict[tuple[str, str], list[tuple[int, int]]] = {}
    rows = s.execute(select(Record.gateway_id, Record.target, Record.at, Record.ring_s, Record.talk_s)
                     .where(Record.kind == "call", Record.target.is_not(None), Record.at >= since,
                            Record.gateway_id.in_(gateways)))
    for gw, target, at, ring, talk in rows:
        if at is None:
            continue
        ev = events.setdefault((gw, target), [])
        ev.append((at, 1))
        ev.append((at + max(1, (ring or 0) + (talk or 0)), -1))
    peaks = {}
    for key, ev in events.items():
        ev.sort()  # an end before a start at the same second: back-to-back calls do not overlap
        level = best = 0
        for _, step in ev:
            level += step
            best = max(best, level)
        peaks[key] = best
    return peaks


def plan(s: Session, dialling: dict[str, set[str]], capacities: dict[str, int | None]) -> dict[str, Split]:
    """For each centre with a capacity: the gateways that dial it (`dialling`: gateway -> centre codes) and
    their shares."""
    by_centre: dict[str, list[str]] = {}
    for gw, codes in dialling.items():
        for code in codes:
            by_centre.setdefault(code, []).append(gw)
    peaks = peak_concurrency(s, sorted(dialling)) if dialling else {}
    out = {}
    for code, gws in by_centre.items():
        cap = capacities.get(code)
        if cap is None:
            continue
        weights = {g: peaks.get((g, code), 0) for g in gws}
        out[code] = Split(code, cap, split(cap, weights), weights)
    return out
