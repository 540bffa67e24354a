"""Probe calls to centres (DESIGN §5a probes): schedules per centre, and what the probes found.

A schedule (no row = off, the default) says how often the gateways that dial a centre probe it, in
which local hours (a route's windows; none = any time) and after how many failed probes in a row an
alert opens (controller.ingest.alerts.probe_alerts). Schedules are checked by the gateways' own
validator and compiled into the `probes` of every table that dials the centre.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.compiler import CompileError, Region, compile_gateway
from controller.ingest.alerts import PROBE_FAILED
from controller.models import PROBES, Centre, Gateway, ProbeSchedule, Record
from controller.services.errors import FieldError, NotFound
from protocols import routing

DEFAULTS = {"every_s": 3600, "hours": None, "alert_after": 3, "enabled": True}
MAX_ALERT_AFTER = 100
IN_A_ROW_MAX = 100  # failed probes in a row are counted up to this


def as_dict(p: ProbeSchedule, code: str) -> dict:
    return {"centre": code, "every_s": p.every_s, "hours": p.hours, "alert_after": p.alert_after,
            "enabled": p.enabled}


def centre(s: Session, code) -> Centre:
    c = s.scalars(select(Centre).where(Centre.code == code)).first() if isinstance(code, str) else None
    if c is None:
        raise NotFound("centre", f"no call centre {code!r}")
    return c


def list_schedules(s: Session) -> list[dict]:
    rows = s.execute(select(ProbeSchedule, Centre.code).join(Centre, Centre.id == ProbeSchedule.centre_id)
                     .order_by(Centre.code))
    return [as_dict(p, code) for p, code in rows]


def get_schedule(s: Session, code) -> dict:
    c = centre(s, code)
    p = s.get(ProbeSchedule, c.id)
    if p is None:
        raise NotFound("centre", f"{c.code} has no probe schedule (probes are off)")
    return as_dict(p, c.code)


def set_schedule(s: Session, code, values: dict) -> dict:
    """Create or change a centre's schedule (fields left out keep their value, or the default)."""
    c = centre(s, code)
    p = s.get(ProbeSchedule, c.id)
    unknown = [k for k in values if k not in DEFAULTS]
    if unknown:
        raise FieldError(f"schedules.{unknown[0]}", "is not a probe schedule field")
    merged = {**DEFAULTS, **(as_dict(p, c.code) if p else {}), **values}
    merged.pop("centre", None)
    _check(c, merged)
    if p is None:
        p = ProbeSchedule(centre_id=c.id)
        s.add(p)
    for k, v in merged.items():
        setattr(p, k, v)
    s.flush()
    _recompile(s, c.code)
    return as_dict(p, c.code)


def delete_schedule(s: Session, code) -> None:
    c = centre(s, code)
    p = s.get(ProbeSchedule, c.id)
    if p is None:
        raise NotFound("centre", f"{c.code} has no probe schedule")
    s.delete(p)
    s.flush()
    _recompile(s, c.code)


def _check(c: Centre, v: dict) -> None:
    if type(v["enabled"]) is not bool:
        raise FieldError("schedules.enabled", "must be true or false")
    if type(v["alert_after"]) is not int or not 1 <= v["alert_after"] <= MAX_ALERT_AFTER:
        raise FieldError("schedules.alert_after", f"must be an integer from 1 to {MAX_ALERT_AFTER}")
    probe = {"target": c.code, "every_s": v["every_s"], **({"hours": v["hours"]} if v["hours"] is not None else {})}
    doc = {"schema": 1, "gateway": "probe-check", "version": 1, "tz": "UTC0", "deny": [], "closed": [],
           "targets": {c.code: {"number": c.number, "via": ["out"]}}, "routes": [], "probes": [probe]}
    try:
        routing.load(doc)
    except routing.TableError as e:
        rest = e.path.removeprefix("probes[0]").lstrip(".")
        raise FieldError(f"schedules.{rest}" if rest else "schedules", e.reason) from None


def _recompile(s: Session, code: str) -> None:
    """Compile every gateway that dials the centre (their tables' `probes` changed)."""
    dialling = Region(s).dialling()
    ids = sorted(g for g, codes in dialling.items() if code in codes)
    for gw in s.scalars(select(Gateway).where(Gateway.id.in_(ids)).order_by(Gateway.id)):
        try:
            compile_gateway(s, gw)
        except CompileError as e:
            raise FieldError("schedules", f"{e.reason} (in the table of {e.gateway}, at {e.path})") from None


def status(s: Session, centre_code: str | None = None, gateway: str | None = None) -> list[dict]:
    """Per gateway and centre probed: the last probe (when, port, outcome, post-dial delay) and how many
    probes in a row failed up to it."""
    q = (select(Record.gateway_id, Record.target, func.max(Record.at)).where(PROBES, Record.target.is_not(None))
         .group_by(Record.gateway_id, Record.target))
    if centre_code is not None:
        q = q.where(Record.target == centre_code)
    if gateway is not None:
        q = q.where(Record.gateway_id == gateway)
    out = []
    for gw, target, _ in sorted(s.execute(q).all(), key=lambda r: (r[1], r[0]))[:1000]:
        recent = list(s.scalars(select(Record).where(PROBES, Record.gateway_id == gw, Record.target == target)
                                .order_by(Record.at.desc(), Record.seq.desc()).limit(IN_A_ROW_MAX)))
        last = recent[0]
        failed = 0
        for r in recent:
            if r.outcome == "denied":
                continue
            if r.outcome not in PROBE_FAILED:
                break
            failed += 1
        data = last.data if isinstance(last.data, dict) else {}
        pdd = data.get("pdd_ms")
        out.append({"centre": target, "gateway": gw, "at": last.at, "port": last.port, "outcome": last.outcome,
                    "pdd_ms": pdd if type(pdd) is int else None, "failed_in_a_row": failed})
    return out

