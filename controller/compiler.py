"""Region configuration -> one routing table per gateway (DESIGN §4).

Each table is validated with the very `protocols.routing.load` the gateway runs, compared with
the gateway's latest version (no new version when nothing changed), and kept in `table_versions`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from controller import capacity, reachability
from controller.models import Centre, DenyPrefix, Gateway, Holiday, Menu, ProbeSchedule, Route, Service, TableVersion
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
    warnings: list[str] = field(default_factory=list)  # routes another route takes calls from, and when


class Region:
    """The configuration the tables read, loaded in a few selects: compiling many gateways reads it once."""

    def __init__(self, s: Session):
        self.routes: dict[tuple[int, int], list[Route]] = {}
        # at equal caller prefixes the earlier route is picked (DESIGN §5 step 2): the narrower in time
        # goes first (fewer open hours a week, then the later start: the newer schedule), so a night
        # route is not listed after an always-open one that would take its calls
        for r in sorted(s.scalars(select(Route)), key=reachability.specific_first):
            self.routes.setdefault((r.city_id, r.service_id), []).append(r)
        self.reach: dict[tuple, list] = {}  # shadows per distinct routes + zone + closed dates
        self._session = s
        self._splits: dict[str, capacity.Split] | None = None
        self._dialling: dict[str, set[str]] | None = None
        self.centres = {c.code: c for c in s.scalars(select(Centre))}
        self.closes_on_holidays = {sv.id: sv.closed_on_holidays for sv in s.scalars(select(Service))}
        self.holidays: dict[int | None, list[str]] = {}
        for h in s.scalars(select(Holiday)):
            self.holidays.setdefault(h.city_id, []).append(h.date)
        self.deny = sorted(p.prefix for p in s.scalars(select(DenyPrefix)))
        self._zones: dict[str, str] = {}
        self.menus = {(m.service_id, m.city_id): m for m in s.scalars(select(Menu))}
        by_id = {c.id: code for code, c in self.centres.items()}
        self.probes = {by_id[p.centre_id]: p for p in s.scalars(select(ProbeSchedule).where(ProbeSchedule.enabled))
                       if p.centre_id in by_id}

    def menu(self, service_id: int, city_id: int) -> Menu | None:
        """The service's menu in this city: the city's own, else the one for every city, else none."""
        return self.menus.get((service_id, city_id)) or self.menus.get((service_id, None))

    def dialling(self) -> dict[str, set[str]]:
        """Every gateway's centres: what its routes dial or forward to."""
        if self._dialling is None:
            self._dialling = {}
            for gw in self._session.scalars(select(Gateway).options(selectinload(Gateway.services))):
                codes: set[str] = set()
                for link in gw.services:
                    menu = self.menu(link.service_id, gw.city_id)
                    for r in self.routes.get((gw.city_id, link.service_id), []):
                        codes.update(menu_targets(menu) if menu else r.targets or [])
                        codes.update(a["target"] for a in (r.fallback, r.after_hours)
                                     if isinstance(a, dict) and a.get("target"))
                self._dialling[gw.id] = codes
        return self._dialling

    def splits(self) -> dict[str, capacity.Split]:
        """Each centre's lines split among the gateways that dial it (controller.capacity)."""
        if self._splits is None:
            self._splits = capacity.plan(self._session, self.dialling(),
                                         {code: c.capacity for code, c in self.centres.items()})
        return self._splits

    def max_calls(self, gateway_id: str, code: str) -> int | None:
        sp = self.splits().get(code)
        return None if sp is None else sp.shares.get(gateway_id, sp.capacity)

    def shadows(self, table: routing.Table) -> list[reachability.Shadow]:
        """reachability.shadows, once per distinct set of routes (gateways of a city share theirs)."""
        if len(table.routes) < 2:
            return []
        key = (table.tz_text, tuple(sorted(table.closed or ())), tuple(table.routes), table.issued_at // 86400)
        found = self.reach.get(key)
        if found is None:
            found = self.reach[key] = reachability.shadows(table)
        return found

    def zone_rule(self, zone: str) -> str:
        """The zone's POSIX rule, read from its TZif file once per compile (not per gateway)."""
        rule = self._zones.get(zone)
        if rule is None:
            rule = self._zones[zone] = zone_rule(zone)
        return rule


def route_entry(r: Route, port: str = "*", menu: str | None = None) -> dict:
    """A route as a table's routes[] entry: its targets and strategy, or the menu it plays instead. The key
    order is the table's bytes: keep it."""
    entry = {"id": r.name, "port": port}
    if menu is None:
        entry |= {"targets": list(r.targets or []), "strategy": r.strategy}
    else:
        entry["menu"] = menu
    for key, value in (("caller", r.caller), ("hours", r.hours), ("fallback", r.fallback),
                       ("after_hours", r.after_hours), ("from", r.valid_from), ("until", r.valid_until)):
        if value:
            entry[key] = value
    return entry


def menu_doc(m: Menu) -> dict:
    """A menu as the table's `menus` entry (DESIGN §5a; an option's label stays in the controller)."""
    options = {}
    for key, o in sorted((m.options or {}).items()):
        opt = {"targets": list(o.get("targets") or []), "strategy": o.get("strategy") or "sequential"}
        if o.get("fallback"):
            opt["fallback"] = o["fallback"]
        options[key] = opt
    return {"prompt": m.prompt, "timeout_s": m.timeout_s, "tries": m.tries, "default": m.default_option,
            "options": options}


def menu_targets(m: Menu) -> list[str]:
    """The centres a menu's options dial or forward to."""
    out = []
    for o in (m.options or {}).values():
        out += o.get("targets") or []
        fb = o.get("fallback")
        if isinstance(fb, dict) and fb.get("target"):
            out.append(fb["target"])
    return out


def table_doc(s: Session, gw: Gateway, version: int, issued_at: int, region: Region | None = None) -> dict:
    """The table body (as a dict) the configuration gives this gateway."""
    region = region or Region(s)
    city = gw.city
    # DESIGN §5a: the region's and the city's holidays as calendars; every route names the ones that close
    # it (none for a service holidays never close: police 102 answers on Independence Day)
    calendars = {cid: sorted(days) for cid, days in (("region", region.holidays.get(None, [])),
                                                      (f"city-{city.id}", region.holidays.get(city.id, []))) if days}
    routes, used, menus = [], [], {}
    for link in sorted(gw.services, key=lambda g: g.port):
        menu = region.menu(link.service_id, city.id)
        if menu is not None:  # the service's routes play its menu instead of dialling their own targets
            menus[menu.name] = menu_doc(menu)
            used += menu_targets(menu)
        for r in region.routes.get((city.id, link.service_id), []):
            route = route_entry(r, link.port, menu.name if menu is not None else None)
            route["closed"] = list(calendars) if region.closes_on_holidays.get(link.service_id, True) else []
            routes.append(route)
            used += r.targets if menu is None else []
            used += [a["target"] for a in (r.fallback, r.after_hours) if a and a.get("target")]
    targets = {}
    for code in sorted(set(used)):
        c = region.centres.get(code)
        if c is None:
            raise CompileError(gw.id, f"routes.{code}", f"names centre {code!r}, which does not exist")
        t = {"number": c.number, "via": list(gw.out_ports), "ring_timeout_s": c.ring_timeout_s}
        cap = region.max_calls(gw.id, code)
        if cap is not None:
            t["max_calls"] = cap
        targets[code] = t
    doc = {"schema": 1, "gateway": gw.id, "version": version, "issued_at": issued_at,
           "tz": region.zone_rule(city.zone), "deny": list(region.deny), "calendars": calendars,
           "targets": targets, "routes": routes}
    if menus:  # only when there are some: a table without them means what it meant (no new versions)
        doc["menus"] = menus
    # a target with no line for this gateway (max_calls 0: controller.capacity) is never probed from it
    probes = [{"target": code, **probe_doc(region.probes[code])} for code in sorted(targets)
              if code in region.probes and targets[code].get("max_calls") != 0]
    if probes:
        doc["probes"] = probes
    return doc


def probe_doc(p: ProbeSchedule) -> dict:
    """A probe schedule as the table's `probes` entry, without its target (DESIGN §5a)."""
    return {"every_s": p.every_s, **({"hours": p.hours} if p.hours else {})}


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
    return next(c for c in compile_all(s, [gw], at) if c.gateway == gw.id)


def _compile(s: Session, gw: Gateway, at: int | None, region: Region, latest: TableVersion | None) -> Compiled:
    at = at or int(time.time())
    doc = table_doc(s, gw, (latest.version + 1) if latest else 1, at, region)
    if latest is not None and _unchanged(doc, latest):
        return Compiled(gw.id, latest.version, latest.body.encode(), latest.sha256, False)
    body = json.dumps(doc, separators=(",", ":")).encode()
    try:
        table = routing.load(body)
    except routing.TableError as e:
        raise CompileError(gw.id, e.path, e.reason) from None
    warnings = [f"{gw.id}: {sp.warning}" for code, sp in sorted(region.splits().items())
                if sp.warning and gw.id in sp.shares]
    for shadow in region.shadows(table):
        if shadow.never:
            raise CompileError(gw.id, f"routes[{shadow.index}]", shadow.message())
        warnings.append(f"{gw.id}: {shadow.message()}")
    sha = hashlib.sha256(body).hexdigest()
    s.add(TableVersion(gateway_id=gw.id, version=doc["version"], body=body.decode(), sha256=sha))
    return Compiled(gw.id, doc["version"], body, sha, True, warnings)


def compile_all(s: Session, gateways: list[Gateway] | None = None, at: int | None = None) -> list[Compiled]:
    """compile_gateway for many gateways (None = all) with the region and their latest tables read once."""
    if gateways is None:
        gateways = list(s.scalars(select(Gateway).options(selectinload(Gateway.city), selectinload(Gateway.services))
                                  .order_by(Gateway.id)))
    region = Region(s)
    sharers = _line_sharers(s, gateways, region)
    latest = latest_tables(s, [gw.id for gw in [*gateways, *sharers]])
    out = [_compile(s, gw, at, region, latest.get(gw.id)) for gw in gateways]
    for gw in sharers:  # their share of a centre's lines changed with these gateways' routes
        _compile(s, gw, at, region, latest.get(gw.id))
    s.flush()  # compiled is not desired: a version becomes desired when it is published (rollouts)
    return out


def _line_sharers(s: Session, gateways: list[Gateway], region: Region) -> list[Gateway]:
    """Other gateways sharing a centre's lines with these whose compiled share no longer is the one they
    have: theirs are recompiled too, so the caps never add up to more than the centre's lines."""
    dialling, splits = region.dialling(), region.splits()
    have = {gw.id for gw in gateways}
    shared = {code for g in have for code in dialling.get(g, ()) if code in splits}
    candidates = sorted(g for g, codes in dialling.items() if g not in have and codes & shared)
    stale = []
    for gid, tv in latest_tables(s, candidates).items():  # a gateway never compiled stays so
        targets = json.loads(tv.body).get("targets", {})
        if any(code in targets and targets[code].get("max_calls") != splits[code].shares.get(gid)
               for code in dialling[gid] & shared):
            stale.append(gid)
    if not stale:
        return []
    return list(s.scalars(select(Gateway).where(Gateway.id.in_(stale)).order_by(Gateway.id)
                          .options(selectinload(Gateway.city), selectinload(Gateway.services))))


def latest_tables(s: Session, ids: list[str]) -> dict[str, TableVersion]:
    """The latest table version of each of these gateways, in one select."""
    top = (select(TableVersion.gateway_id, func.max(TableVersion.version).label("v"))
           .where(TableVersion.gateway_id.in_(ids)).group_by(TableVersion.gateway_id).subquery())
    q = select(TableVersion).join(top, (TableVersion.gateway_id == top.c.gateway_id)
                                  & (TableVersion.version == top.c.v))
    return {tv.gateway_id: tv for tv in s.scalars(q)}


def latest_table(s: Session, gateway_id: str) -> TableVersion | None:
    return latest_tables(s, [gateway_id]).get(gateway_id)
