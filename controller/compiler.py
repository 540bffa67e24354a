"""Region configuration -> one routing table per gateway (DESIGN §4).

Each table is validated with the very `protocols.routing.load` the gateway runs, compared with
the gateway's latest version (no new version when nothing changed), and kept in `table_versions`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

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


class Region:
    """The configuration the tables read, loaded in a few selects: compiling many gateways reads it once."""

    def __init__(self, s: Session):
        self.routes: dict[tuple[int, int], list[Route]] = {}
        for r in s.scalars(select(Route).order_by(Route.valid_from.is_not(None), Route.valid_from, Route.id)):
            self.routes.setdefault((r.city_id, r.service_id), []).append(r)
        self.centres = {c.code: c for c in s.scalars(select(Centre))}
        self.holidays: dict[int | None, list[str]] = {}
        for h in s.scalars(select(Holiday)):
            self.holidays.setdefault(h.city_id, []).append(h.date)
        self.deny = sorted(p.prefix for p in s.scalars(select(DenyPrefix)))
        self._zones: dict[str, str] = {}

    def zone_rule(self, zone: str) -> str:
        """The zone's POSIX rule, read from its TZif file once per compile (not per gateway)."""
        rule = self._zones.get(zone)
        if rule is None:
            rule = self._zones[zone] = zone_rule(zone)
        return rule


def table_doc(s: Session, gw: Gateway, version: int, issued_at: int, region: Region | None = None) -> dict:
    """The table body (as a dict) the configuration gives this gateway."""
    region = region or Region(s)
    city = gw.city
    routes, used = [], []
    for link in sorted(gw.services, key=lambda g: g.port):
        for r in region.routes.get((city.id, link.service_id), []):
            route = {"id": r.name, "port": link.port, "targets": list(r.targets), "strategy": r.strategy}
            for key, value in (("caller", r.caller), ("hours", r.hours), ("fallback", r.fallback),
                               ("after_hours", r.after_hours), ("from", r.valid_from), ("until", r.valid_until)):
                if value:
                    route[key] = value
            routes.append(route)
            used += r.targets
            used += [a["target"] for a in (r.fallback, r.after_hours) if a and a.get("target")]
    targets = {}
    for code in sorted(set(used)):
        c = region.centres.get(code)
        if c is None:
            raise CompileError(gw.id, f"routes.{code}", f"names centre {code!r}, which does not exist")
        t = {"number": c.number, "via": list(gw.out_ports), "ring_timeout_s": c.ring_timeout_s}
        if c.capacity is not None:
            t["max_calls"] = c.capacity
        targets[code] = t
    closed = sorted(region.holidays.get(None, []) + region.holidays.get(city.id, []))
    return {"schema": 1, "gateway": gw.id, "version": version, "issued_at": issued_at,
            "tz": region.zone_rule(city.zone), "deny": list(region.deny), "closed": closed, "targets": targets,
            "routes": routes}


def _meaning(doc: dict) -> str:
    """What a table says, without its version stamp: equal meaning = no new version."""
    return json.dumps({k: v for k, v in doc.items() if k not in ("version", "issued_at")}, sort_keys=True)


_ISSUED_AT = re.compile(r'"issued_at":(\d+)')


def _unchanged(doc: dict, latest: TableVersion) -> bool:
    """Does `doc` say what the stored table says? A comparison of text with the stored stamps first
    (bodies are written compact, in table_doc's key order), the full comparison only when that differs."""
    stamp = _ISSUED_AT.search(latest.body)
    if stamp is not None:
        same = dict(doc, version=latest.version, issued_at=int(stamp.group(1)))
        if json.dumps(same, separators=(",", ":")) == latest.body:
            return True
    return _meaning(json.loads(latest.body)) == _meaning(doc)


def compile_gateway(s: Session, gw: Gateway, at: int | None = None) -> Compiled:
    """Compile, validate and (when it changed) store a new table version for one gateway."""
    return compile_all(s, [gw], at)[0]


def _compile(s: Session, gw: Gateway, at: int | None, region: Region, latest: TableVersion | None) -> Compiled:
    at = at or int(time.time())
    doc = table_doc(s, gw, (latest.version + 1) if latest else 1, at, region)
    if latest is not None and _unchanged(doc, latest):
        return Compiled(gw.id, latest.version, latest.body.encode(), latest.sha256, False)
    body = json.dumps(doc, separators=(",", ":")).encode()
    try:
        routing.load(body)
    except routing.TableError as e:
        raise CompileError(gw.id, e.path, e.reason) from None
    sha = hashlib.sha256(body).hexdigest()
    s.add(TableVersion(gateway_id=gw.id, version=doc["version"], body=body.decode(), sha256=sha))
    return Compiled(gw.id, doc["version"], body, sha, True)


def compile_all(s: Session, gateways: list[Gateway] | None = None, at: int | None = None) -> list[Compiled]:
    """compile_gateway for many gateways (None = all) with the region and their latest tables read once."""
    if gateways is None:
        gateways = list(s.scalars(select(Gateway).options(selectinload(Gateway.city), selectinload(Gateway.services))
                                  .order_by(Gateway.id)))
    region = Region(s)
    latest = latest_tables(s, [gw.id for gw in gateways])
    out = [_compile(s, gw, at, region, latest.get(gw.id)) for gw in gateways]
    s.flush()  # compiled is not desired: a version becomes desired when it is published (rollouts)
    return out


def latest_tables(s: Session, ids: list[str]) -> dict[str, TableVersion]:
    """The latest table version of each of these gateways, in one select."""
    top = (select(TableVersion.gateway_id, func.max(TableVersion.version).label("v"))
           .where(TableVersion.gateway_id.in_(ids)).group_by(TableVersion.gateway_id).subquery())
    q = select(TableVersion).join(top, (TableVersion.gateway_id == top.c.gateway_id)
                                  & (TableVersion.version == top.c.v))
    return {tv.gateway_id: tv for tv in s.scalars(q)}


def latest_table(s: Session, gateway_id: str) -> TableVersion | None:
    return latest_tables(s, [gateway_id]).get(gateway_id)


def capacity_warnings(s: Session) -> list[str]:
    """Centres whose lines the gateways routing to them can outnumber."""
    load: dict[str, int] = {}
    for tv in latest_tables(s, list(s.scalars(select(Gateway.id)))).values():
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
