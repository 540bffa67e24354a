"""States and table acks in a batch: gateways' online, applied version and last report, and their
pending rollout targets, read in one select each and written with one executemany per shape."""

from __future__ import annotations

import json

from sqlalchemy import JSON, select
from sqlalchemy.orm import Session

from controller.db import driver_marks
from controller.limits import bounded, clip
from controller.models import Alert, Gateway, RolloutTarget, now

_GW_COLS = ("id", "online", "desired_version", "applied_version")


def apply_states_and_acks(s: Session, items: list[tuple[str, str, dict]]) -> list[str]:
    """Update gateways and pending rollout targets from states and acks, in arrival order.

    The changes are worked out on plain rows, then written with one executemany per shape of
    change: a rollout to a thousand gateways brings a thousand acks at once. Returns the gateways
    that came back online running another table than they should (to re-publish to).
    """
    g = Gateway.__table__.c
    gws = {r.id: dict(r._mapping) for r in s.execute(
        select(*(g[c] for c in _GW_COLS)).where(g.id.in_({gw for gw, _, _ in items})))}
    t = RolloutTarget.__table__.c
    acked = {gw for gw, kind, _ in items if kind == "table_ack" and gw in gws}
    pending: dict[str, list[dict]] = {}
    if acked:
        for r in s.execute(select(t.id, t.gateway_id, t.version).where(t.gateway_id.in_(acked),
                                                                        t.status == "pending")):
            pending.setdefault(r.gateway_id, []).append({"id": r.id, "version": r.version})
    changes: dict[str, dict] = {}  # gateway id -> the columns to write
    done: dict[int, dict] = {}  # rollout target id -> its new status, reason, updated_at
    republish: list[str] = []
    at = now()
    for gw_id, kind, msg in items:
        gw = gws.get(gw_id)
        if gw is None:
            if kind == "state":
                s.add(Alert(gateway_id=gw_id, code="unknown_gateway", detail="state from an unregistered gateway"))
            continue
        change = changes.setdefault(gw_id, {})
        if kind == "state":
            if _on_state(gw, change, msg, at) and gw_id not in republish:
                republish.append(gw_id)
        else:
            _on_ack(s, gw_id, change, msg, pending.get(gw_id, []), done, at)
    _write_rows(s, Gateway.__table__, "id", changes)
    _write_rows(s, RolloutTarget.__table__, "id", done)
    return republish


def _write_rows(s: Session, table, key: str, changes: dict) -> None:
    """UPDATE table SET <cols> WHERE key = k for every k: one executemany per set of columns.

    As SQL text with plain values for the driver (JSON columns serialised here): SQLAlchemy's
    per-row parameter processing cost more than the update itself for a rollout's thousand acks.
    """
    mark, json_mark = driver_marks(s)
    shapes: dict[tuple, list[tuple]] = {}
    for k, cols in changes.items():
        if cols:
            shapes.setdefault(tuple(sorted(cols)), []).append((cols, k))
    for names, changed in shapes.items():
        is_json = [isinstance(table.c[c].type, JSON) for c in names]
        rows = [tuple(json.dumps(cols[c]) if j and cols[c] is not None else cols[c]
                      for c, j in zip(names, is_json, strict=True)) + (k,) for cols, k in changed]
        sets = ", ".join(f"{c} = {json_mark if j else mark}" for c, j in zip(names, is_json, strict=True))
        s.connection().exec_driver_sql(f"UPDATE {table.name} SET {sets} WHERE {key} = {mark}", rows)


def _on_state(gw: dict, change: dict, msg: dict, at: int) -> bool:
    """Returns True when the gateway came back running another table than it should."""
    was_online = gw["online"]
    gw["online"] = change["online"] = bool(msg.get("online"))
    change["last_seen"] = at
    if gw["online"]:
        change["state"] = bounded(msg)  # strings cut to TEXT_MAX whatever the decoder let through
        gw["applied_version"] = change["applied_version"] = msg.get("table_version")
        change["applied_sha256"] = msg.get("table_sha256")
    stale = gw["online"] and gw["desired_version"] is not None and gw["applied_version"] != gw["desired_version"]
    return bool(stale and not was_online)


def _on_ack(s: Session, gw_id: str, change: dict, ack: dict, pending: list[dict], done: dict, at: int) -> None:
    applied = ack["status"] == "applied"
    if applied:
        change.update(applied_version=ack["version"], applied_sha256=ack["sha256"], last_reject=None)
    else:
        change["last_reject"] = clip(ack.get("reason") or "")
        s.add(Alert(gateway_id=gw_id, code="table_rejected", detail=clip(ack.get("reason") or "")))
    for t in pending:
        if t["id"] in done:
            continue
        if applied and ack["version"] >= t["version"]:
            done[t["id"]] = {"status": "applied", "updated_at": at}
        elif not applied and ack.get("version") in (t["version"], 0):
            done[t["id"]] = {"status": "rejected", "reason": clip(ack.get("reason") or ""), "updated_at": at}
