"""The fleet as an admin reads it: every gateway with its city, link, signal, tables, outbox, firmware,
heap and open alarms; one gateway's state, last calls and alerts; commands sent to it; its preview."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.commands import CommandsBusy
from controller.compiler import latest_table, latest_tables
from controller.models import Alert, City, Gateway, Record, RolloutTarget
from controller.services.errors import Conflict, FieldError, NoAnswer, NotFound, Unavailable
from controller.services.gateway_state import live_ports, state_dict, state_int, state_text
from controller.services.times import TIME_MAX, TIME_MIN
from protocols import messages, routing, tz

CONSOLE_OPS = ("selftest", "resend_state", "reboot")  # what the gateway page offers
SORTS = ("id", "city", "online", "last_seen", "outbox", "heap_free", "alerts", "applied_version")
STATUSES = ("", "online", "offline", "pending", "alerting")


def _row(gw: Gateway, city: str, compiled: int | None, alerts: int) -> dict:
    st = state_dict(gw.state)
    return {"id": gw.id, "city": city, "online": bool(gw.online), "last_seen": state_int(gw.last_seen),
            "signal": {p: v.get("csq") for p, v in live_ports(st).items() if v.get("kind") == "gsm"},
            "ports": live_ports(st), "applied_version": gw.applied_version, "desired_version": gw.desired_version,
            "compiled_version": compiled, "last_reject": gw.last_reject, "outbox": state_int(st.get("outbox")),
            "fw": state_text(st.get("fw")), "heap_free": state_int(st.get("heap_free")),
            "heap_min_free": state_int(st.get("heap_min_free")), "uptime_s": state_int(st.get("uptime_s")),
            "calls_in_progress": state_int(st.get("calls_in_progress")), "alerts": alerts, "profile": gw.profile}


def _open_alerts(s: Session) -> dict[str, int]:
    return dict(s.execute(select(Alert.gateway_id, func.count()).where(Alert.resolved_at.is_(None))
                          .group_by(Alert.gateway_id)).all())


def fleet(s: Session, city: str = "", status: str = "", sort: str = "city", desc: bool = False) -> list[dict]:
    """Every gateway (filtered by city name and status, sorted by one of SORTS)."""
    if status not in STATUSES:
        raise FieldError("status", f"must be one of {', '.join(s for s in STATUSES if s)} or empty")
    if sort not in SORTS:
        raise FieldError("sort", f"must be one of {', '.join(SORTS)}")
    q = select(Gateway, City.name).join(City, Gateway.city_id == City.id)
    if city:
        q = q.where(City.name == city)
    rows = list(s.execute(q))
    compiled = {gid: tv.version for gid, tv in latest_tables(s, [gw.id for gw, _ in rows]).items()}
    alerts = _open_alerts(s)
    out = [_row(gw, name, compiled.get(gw.id), alerts.get(gw.id, 0)) for gw, name in rows]
    keep = {"online": lambda r: r["online"], "offline": lambda r: not r["online"],
            "pending": lambda r: r["applied_version"] != r["desired_version"]
            or r["compiled_version"] != r["desired_version"],
            "alerting": lambda r: r["alerts"] > 0}.get(status)
    out = [r for r in out if keep is None or keep(r)]
    # None sorts first ascending; ties by id so the order is stable
    out.sort(key=lambda r: (r[sort] is not None, r[sort] if r[sort] is not None else 0, r["id"]), reverse=desc)
    return out


def cities(s: Session) -> list[str]:
    return list(s.scalars(select(City.name).order_by(City.name)))


def gateway(s: Session, gateway_id: str) -> dict:
    """One gateway: its fleet row, its whole last state, its last calls and its alerts."""
    gw = s.get(Gateway, gateway_id) if isinstance(gateway_id, str) and len(gateway_id) <= 64 else None
    if gw is None:
        raise NotFound("gateway_id", f"no gateway {gateway_id!r}")
    tv = latest_table(s, gw.id)
    alerts = list(s.scalars(select(Alert).where(Alert.gateway_id == gw.id)
                            .order_by(Alert.resolved_at.is_not(None), Alert.created_at.desc()).limit(20)))
    row = _row(gw, gw.city.name, tv.version if tv else None, sum(a.resolved_at is None for a in alerts))
    calls = list(s.scalars(select(Record).where(Record.gateway_id == gw.id, Record.kind == "call")
                           .order_by(Record.at.desc(), Record.id.desc()).limit(20)))
    state = {k: v for k, v in state_dict(gw.state).items() if k != "ports" and (
        v is None or type(v) is bool or state_int(v) is not None or state_text(v, 128) is not None)}
    return {**row, "state": state, "calls": calls, "alert_rows": alerts, "history": history(s, gw.id),
            "port_names": sorted(set(gw.ports or []) | set(row["ports"]))}


HISTORY = 40


def history(s: Session, gateway_id: str) -> list[dict]:
    """What the gateway went through, newest first: tables sent and what it answered (applied, rejected and
    why, offline), alarms and alerts opened and resolved (a board's alarms arrive as alerts)."""
    events = []
    for t in s.scalars(select(RolloutTarget).where(RolloutTarget.gateway_id == gateway_id)
                       .order_by(RolloutTarget.updated_at.desc(), RolloutTarget.id.desc()).limit(HISTORY)):
        events.append({"at": t.updated_at, "what": "table", "text": f"v{t.version} {t.status}"
                       + (f" (rollout {t.rollout_id}, {t.stage})") + (f": {t.reason}" if t.reason else "")})
    for a in s.scalars(select(Alert).where(Alert.gateway_id == gateway_id)
                       .order_by(Alert.created_at.desc(), Alert.id.desc()).limit(HISTORY)):
        events.append({"at": a.created_at, "what": "alert", "text": f"{a.code} opened: {a.detail}"})
        if a.resolved_at is not None:
            events.append({"at": a.resolved_at, "what": "alert", "text": f"{a.code} resolved"})
    dated = [e for e in events if type(e["at"]) is int and TIME_MIN <= e["at"] <= TIME_MAX]
    odd = [e for e in events if e not in dated]  # a stored time may be anything: listed last, as it is
    return (sorted(dated, key=lambda e: e["at"], reverse=True) + odd)[:HISTORY]


def command(s: Session, send: Callable[[str, str, dict], dict], gateway_id: str, op: str) -> dict:
    """Send one of CONSOLE_OPS to the gateway through the bridge and return its answer."""
    if op not in CONSOLE_OPS:
        raise FieldError("commands.op", f"must be one of {', '.join(CONSOLE_OPS)}")
    gw = gateway(s, gateway_id)
    s.commit()  # the gateway's answer can take seconds
    try:
        reply = send(gw["id"], op, {})
    except messages.MessageError as e:
        raise FieldError(f"commands.{e.path}", e.reason) from None
    except CommandsBusy as e:
        raise Unavailable("gateway_id", str(e)) from None
    except TimeoutError as e:
        raise NoAnswer("gateway_id", str(e)) from None
    if not reply.get("ok"):
        raise Conflict("commands.op", f"{gw['id']} refused {op}: {reply.get('error') or 'no reason'}")
    return reply


def when(at: int | str | None, table: routing.Table, field: str = "preview.at") -> int:
    """A preview's `at` -> UTC seconds (years 1 to 9999): UTC seconds, or ISO-8601; with an offset it is
    exact, without one it is wall time in the table's zone; None = now."""
    if at is None or at == "":
        return int(time.time())
    if isinstance(at, int):
        out = at
    elif at.strip().lstrip("-").isdigit() and len(at.strip()) <= 20:
        out = int(at)
    else:
        try:
            dt = datetime.fromisoformat(at.strip().replace("Z", "+00:00"))
            wall = int(dt.replace(tzinfo=dt.tzinfo or UTC).timestamp())
        except (ValueError, OverflowError):
            raise FieldError(field, "must be UTC seconds or an ISO-8601 time") from None
        out = wall
        if dt.tzinfo is None and TIME_MIN <= wall <= TIME_MAX:
            out = tz.utc_from_local(wall, table.tz)
    if not TIME_MIN <= out <= TIME_MAX:
        raise FieldError(field, f"must be between {TIME_MIN} and {TIME_MAX} (years 1 to 9999)")
    return out


def preview(s: Session, gateway_id: str, port: str, caller: str, at: int | str | None,
            busy: dict | None = None, turn: int = 0) -> dict:
    """What the gateway would do with this call, by the gateways' own routing code on its latest table."""
    gw = s.get(Gateway, gateway_id) if isinstance(gateway_id, str) and len(gateway_id) <= 64 else None
    if gw is None:
        raise NotFound("gateway_id", f"no gateway {gateway_id!r}")
    tv = latest_table(s, gw.id)
    if tv is None:
        raise NotFound("gateway_id", f"{gw.id} has no compiled table yet")
    table = routing.load(tv.body)
    now = when(at, table)
    d = routing.decide(table, port, caller, now, busy=busy, turn=turn)
    lt = tz.localtime(now, table.tz)
    return {"gateway": gw.id, "table_version": table.version, "at": now,
            "utc": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "local_time": "%s %02d:%02d:%02d" % (tz.date_str(lt), lt[3], lt[4], lt[5]), "weekday": lt[6],
            "utc_offset_s": table.tz.utc_offset(now), "decision": d.as_dict(),
            "numbers": {t: table.targets[t].number for t in d.targets}}
