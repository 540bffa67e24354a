"""Which routing decisions a new table changes, before it goes out.

Both tables are run through the gateways' own decision code for each inbound port, each caller
group the tables name (any caller, and every caller prefix), at every hour of a week (and every
opening-hours boundary) from the new table's issue date and from each date a route comes into
effect, and on the calendar dates of both: "Toretsk 102 (gsm1) Mon-Fri 14:00-22:00: dial
mariupol-102 → callback".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from controller.compiler import latest_tables
from controller.models import Gateway, TableVersion
from controller.reachability import DAY_NAMES, MAX_CLOSED_DATES, closed_dates, when
from protocols import routing, tz

MAX_CHANGES = 200  # per gateway: past that the list is cut and says so


@dataclass
class Change:
    gateway: str
    city: str
    service: str | None
    port: str
    caller: str  # a caller prefix, or "" for any caller
    when: str
    before: str
    after: str

    def text(self) -> str:
        who = f" callers {self.caller}…" if self.caller else ""
        service = f"{self.service} " if self.service else ""
        return f"{self.city} {service}({self.port}){who} {self.when}: {self.before} → {self.after}"

    def as_dict(self) -> dict:
        return asdict(self) | {"text": self.text()}


def describe(d: routing.Decision | None) -> str:
    """'dial mariupol-102 → mariupol-reserve', 'callback (after_hours)', 'no table'."""
    if d is None:
        return "no table"
    if d.action == "menu":
        return f"menu {d.menu}"
    if d.action == "dial":
        return "dial " + ", ".join(d.targets)
    what = d.action + (" " + d.targets[0] if d.targets else "")
    return what + f" ({d.reason})"


def _spans(tables: list[routing.Table]) -> list[tuple[int, int]]:
    marks = set(range(0, 1440, 60))
    for t in tables:
        for r in t.routes:
            for _mask, start, end in r.hours or ():
                marks.update(m for m in (start, end) if m < 1440)
    minutes = sorted(marks)
    return list(zip(minutes, minutes[1:] + [1440], strict=True))


def samples(new: routing.Table, old: routing.Table | None) -> list[tuple[int, str, int, int]]:
    """(UTC instant, day, first minute, end minute): a week of hours from each anchor, then the closed dates."""
    tables = [new] + ([old] if old is not None else [])
    spans = _spans(tables)
    anchors = {new.issued_at} | {r.start for t in tables for r in t.routes
                                 if r.start is not None and r.start > new.issued_at}
    out = []
    for anchor in sorted(anchors)[:4]:
        lt = tz.localtime(anchor, new.tz)
        midnight = tz.days_from_civil(lt[0], lt[1], lt[2]) * 86400
        for day in range(1, 8):  # the days after the anchor: a whole week in effect
            for first, end in spans:
                t = tz.utc_from_local(midnight + day * 86400 + first * 60, new.tz)
                out.append((t, DAY_NAMES[tz.localtime(t, new.tz)[6] - 1], first, end))
    dates = closed_dates(*tables)[:MAX_CLOSED_DATES]
    for date in dates:
        y, mo, d = int(date[:4]), int(date[5:7]), int(date[8:10])
        for first, end in spans:
            out.append((tz.utc_from_local(tz.days_from_civil(y, mo, d) * 86400 + first * 60, new.tz), date, first, end))
    return out


def table_changes(old: routing.Table | None, new: routing.Table, ports: dict[str, str | None],
                  city: str = "") -> list[Change]:
    """Every (port, caller group) whose decision differs between `old` and `new`, grouped by when."""
    callers = [""] + sorted({p for t in (old, new) if t is not None for r in t.routes for p in r.caller})
    found: dict[tuple, list] = {}
    for t, day, first, end in samples(new, old):
        for port in sorted(ports):
            for caller in callers:
                before = describe(routing.decide(old, port, caller, t) if old is not None else None)
                after = describe(routing.decide(new, port, caller, t))
                if before != after:
                    found.setdefault((port, caller, before, after), []).append((day, first, end))
    changes = [Change(new.gateway, city, ports[port], port, caller, when(spans), before, after)
               for (port, caller, before, after), spans in found.items()]
    return changes[:MAX_CHANGES]


def _load(body: str | None) -> routing.Table | None:
    try:
        return routing.load(body) if body else None
    except routing.TableError:
        return None  # a stored table that no longer loads: everything counts as changed


def pending(s: Session, gateway_ids: list[str] | None = None) -> dict[str, list[Change]]:
    """For each gateway: what its latest compiled table changes against the one it should be running
    (the last published, else the one it applied); gateways already up to date are left out."""
    q = select(Gateway).options(selectinload(Gateway.city), selectinload(Gateway.services)).order_by(Gateway.id)
    if gateway_ids is not None:
        q = q.where(Gateway.id.in_(gateway_ids))
    gateways = list(s.scalars(q))
    latest = latest_tables(s, [gw.id for gw in gateways])
    out = {}
    for gw in gateways:
        tv = latest.get(gw.id)
        running = gw.desired_version or gw.applied_version
        if tv is None or tv.version == running:
            continue
        old = None
        if running:
            old = s.scalars(select(TableVersion.body).where(TableVersion.gateway_id == gw.id,
                                                            TableVersion.version == running)).first()
        ports = {link.port: link.service.number for link in gw.services}
        new = _load(tv.body)
        if new is not None:
            out[gw.id] = table_changes(_load(old), new, ports, gw.city.name)
    return out


def between(gateway: Gateway, old_body: str | None, new_body: str | None) -> list[Change]:
    """What replacing `old_body` by `new_body` changes for this gateway (route edits show this)."""
    new = _load(new_body)
    if new is None or old_body == new_body:
        return []
    ports = {link.port: link.service.number for link in gateway.services}
    return table_changes(_load(old_body), new, ports, gateway.city.name)


def as_json(changes: dict[str, list[Change]]) -> str:
    return json.dumps({gw: [c.as_dict() for c in cs] for gw, cs in changes.items()}, indent=1)
