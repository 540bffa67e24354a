"""Region configuration -> one routing table per gateway (DESIGN §4).

Each table is validated with the very `protocols.routing.load` the gateway runs, compared with
the gateway's latest version (no new version when nothing changed), and kept in `table_versions`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.models import Centre, DenyPrefix, Gateway, Holiday, Route, TableVersion
from controller.timezones import zone_rule
from protocols import routing


class CompileError(ValueError):
    """The configuration cannot make a valid table for a gateway: says which and why."""

    def __init__(self, gateway: str, path: str, reason: str):
        super().__init__(f"{gateway}: {path}: {reason}")
        self.gateway, self.path, self.reason = gateway, path, reason


@dataclass
class Compiled:
    gateway: str
    version: int
    body: bytes
    sha256: str
    changed: bool


def table_doc(s: Session, gw: Gateway, version: int, issued_at: int) -> dict:
    """The table body (as a dict) the configuration gives this gateway."""
    city = gw.city
    routes, used = [], []
    for link in sorted(gw.services, key=lambda g: g.port):
        rows = s.scalars(select(Route).where(Route.city_id == city.id, Route.service_id == link.service_id)
                         .order_by(Route.valid_from.is_not(None), Route.valid_from, Route.id)).all()
        for r in rows:
            route = {"id": r.name, "port": link.port, "targets": list(r.targets), "strategy": r.strategy}
            for key, value in (("caller", r.caller), ("hours", r.hours), ("fallback", r.fallback),
                               ("after_hours", r.after_hours), ("from", r.valid_from), ("until", r.valid_until)):
                if value:
                    route[key] = value
            routes.append(route)
            used += r.targets
            used += [a["target"] for a in (r.fallback, r.after_hours) if a and a.get("target")]
    centres = {c.code: c for c in s.scalars(select(Centre).where(Centre.code.in_(set(used))))}
    targets = {}
    for code in sorted(set(used)):
        c = centres.get(code)
        if c is None:
            raise CompileError(gw.id, f"routes.{code}", f"names centre {code!r}, which does not exist")
        t = {"number": c.number, "via": list(gw.out_ports), "ring_timeout_s": c.ring_timeout_s}
        if c.capacity is not None:
            t["max_calls"] = c.capacity
        targets[code] = t
    closed = sorted(h.date for h in s.scalars(select(Holiday).where(
        (Holiday.city_id.is_(None)) | (Holiday.city_id == city.id))))
    deny = sorted(p.prefix for p in s.scalars(select(DenyPrefix)))
    return {"schema": 1, "gateway": gw.id, "version": version, "issued_at": issued_at,
            "tz": zone_rule(city.zone), "deny": deny, "closed": closed, "targets": targets, "routes": routes}


def _meaning(doc: dict) -> str:
    """What a table says, without its version stamp: equal meaning = no new version."""
    return json.dumps({k: v for k, v in doc.items() if k not in ("version", "issued_at")}, sort_keys=True)


def compile_gateway(s: Session, gw: Gateway, at: int | None = None) -> Compiled:
    """Compile, validate and (when it changed) store a new table version for one gateway."""
    latest = s.scalars(select(TableVersion).where(TableVersion.gateway_id == gw.id)
                       .order_by(TableVersion.version.desc()).limit(1)).first()
    at = at or int(time.time())
    doc = table_doc(s, gw, (latest.version + 1) if latest else 1, at)
    if latest is not None and _meaning(json.loads(latest.body)) == _meaning(doc):
        return Compiled(gw.id, latest.version, latest.body.encode(), latest.sha256, False)
    body = json.dumps(doc, separators=(",", ":")).encode()
    try:
        routing.load(body)
    except routing.TableError as e:
        raise CompileError(gw.id, e.path, e.reason) from None
    sha = hashlib.sha256(body).hexdigest()
    s.add(TableVersion(gateway_id=gw.id, version=doc["version"], body=body.decode(), sha256=sha))
    s.flush()  # compiled is not desired: a version becomes desired when it is published (rollouts)
    return Compiled(gw.id, doc["version"], body, sha, True)


def latest_table(s: Session, gateway_id: str) -> TableVersion | None:
    return s.scalars(select(TableVersion).where(TableVersion.gateway_id == gateway_id)
                     .order_by(TableVersion.version.desc()).limit(1)).first()


def capacity_warnings(s: Session) -> list[str]:
    """Centres whose lines the gateways routing to them can outnumber."""
    load: dict[str, int] = {}
    for gw in s.scalars(select(Gateway)):
        tv = latest_table(s, gw.id)
        if tv is None:
            continue
        doc = json.loads(tv.body)
        for code, t in doc["targets"].items():
            load[code] = load.get(code, 0) + min(t.get("max_calls") or len(t["via"]), len(t["via"]))
    out = []
    for c in s.scalars(select(Centre).where(Centre.code.in_(list(load)))):
        if c.capacity is not None and load[c.code] > c.capacity:
            out.append(f"centre {c.code} has {c.capacity} lines but the gateways routed to it can place "
                       f"{load[c.code]} calls at once")
    return out


def table_count(s: Session) -> int:
    return s.scalar(select(func.count()).select_from(TableVersion)) or 0
