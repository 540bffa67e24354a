"""Staged rollouts: publish compiled tables to a canary set first, then to the rest.

`start_rollout` compiles the chosen gateways, records a Rollout with one RolloutTarget per gateway
and publishes the canary tables (all of them when there is no canary). `advance_rollouts`, run
periodically and after acks, moves rollouts on:

- a canary rejected its table, or the canaries' answered ratio dropped -> `halted`, with the reason;
- every canary applied (and `soak_s` passed) -> publish the rest, status `rest`;
- every target applied -> `done`; all settled but some rejected -> `halted`.

A target is `pending` until its gateway reports the version (acks and birth states both count),
shown `offline` while its gateway is offline, `rejected` with the gateway's reason. Both functions commit
before they publish, so an ack arriving at once finds its rows.
"""

from __future__ import annotations

import time

from sqlalchemy import bindparam, case, func, insert, select, tuple_, update
from sqlalchemy.orm import Session, selectinload

from controller.compiler import compile_all
from controller.models import Gateway, Record, Rollout, RolloutTarget, TableVersion

ACTIVE = ("canary", "rest")


class RolloutError(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def start_rollout(s: Session, bridge, gateways: list[str] | None = None, canary: list[str] | None = None,
                  now: int | None = None) -> Rollout:
    """Compile `gateways` (None = all), record the rollout, publish its first stage."""
    canary = list(dict.fromkeys(canary or []))
    ids = list(dict.fromkeys(gateways)) if gateways is not None else list(s.scalars(select(Gateway.id)
                                                                                     .order_by(Gateway.id)))
    known = {gw.id: gw for gw in s.scalars(select(Gateway).where(Gateway.id.in_(ids + canary)).options(
        selectinload(Gateway.city), selectinload(Gateway.services)))}
    for field, names in (("gateways", ids), ("canary", canary)):
        for i, gid in enumerate(names):
            if gid not in known:
                raise RolloutError(f"{field}[{i}]", f"no gateway {gid!r}")
    for i, gid in enumerate(canary):
        if gid not in ids:
            raise RolloutError(f"canary[{i}]", f"{gid!r} is not one of the rollout's gateways")
    if not ids:
        raise RolloutError("gateways", "no gateway to roll out to")
    created = now or int(time.time())
    rollout = Rollout(status="canary" if canary else "rest", canary=canary, created_at=created)
    s.add(rollout)
    s.flush()
    chosen, first = set(canary), ("canary" if canary else "rest")
    gws = [known[g] for g in ids]
    rows, publish = [], []
    for gw, compiled in zip(gws, compile_all(s, gws, now), strict=True):
        stage = "canary" if gw.id in chosen else "rest"
        status = _stored(target_status("pending", gw, compiled.version))
        rows.append({"rollout_id": rollout.id, "gateway_id": gw.id, "version": compiled.version, "stage": stage,
                     "status": status, "reason": None, "updated_at": created})
        if stage == first and status == "pending":
            publish.append((gw.id, gw.key_hex, compiled.version, compiled.body))
    s.connection().execute(insert(RolloutTarget.__table__), rows)  # one executemany for a whole fleet
    s.commit()
    _publish_bodies(s, bridge, publish)
    if len(publish) < sum(1 for r in rows if r["stage"] == first):  # some were applied already: move on
        advance_rollouts(s, bridge, now=now, only=rollout.id)
    return rollout


def target_status(status: str, gw: Gateway | None, version: int) -> str:
    """A target's status now: reported versions make it applied; offline gateways show as offline.

    `offline` is only shown, never stored: the bridge updates pending targets from acks.
    """
    if status in ("applied", "rejected") or gw is None:
        return status
    if gw.applied_version is not None and gw.applied_version >= version:
        return "applied"
    return "pending" if gw.online else "offline"


def _stored(status: str) -> str:
    return "pending" if status == "offline" else status


def advance_rollouts(s: Session, bridge, now: int | None = None, soak_s: int = 0, min_calls: int = 20,
                     max_drop: float = 0.2, only: int | None = None) -> list[Rollout]:
    """Move every active rollout on (see the module doc); returns those whose status changed."""
    now = now or int(time.time())
    q = select(Rollout).where(Rollout.status.in_(ACTIVE)).order_by(Rollout.id)
    if only is not None:
        q = q.where(Rollout.id == only)
    changed, publish = [], []
    for r in s.scalars(q):
        gws = {gw.id: gw for gw in s.scalars(select(Gateway).where(Gateway.id.in_([t.gateway_id for t in r.targets])))}
        for t in r.targets:
            status = _stored(target_status(t.status, gws.get(t.gateway_id), t.version))
            if status != t.status:
                t.status, t.updated_at = status, now
        before = r.status
        if r.status == "canary":
            publish += _canary_step(s, r, bridge, now, soak_s, min_calls, max_drop)
        if r.status == "rest":
            _rest_step(r)
        if r.status != before:
            changed.append(r)
    s.commit()
    _publish(s, bridge, publish)
    return changed


def _canary_step(s, r: Rollout, bridge, now, soak_s, min_calls, max_drop) -> list[RolloutTarget]:
    canary = [t for t in r.targets if t.stage == "canary"]
    rejected = [t for t in canary if t.status == "rejected"]
    if rejected:
        t = rejected[0]
        r.status, r.reason = "halted", f"canary {t.gateway_id} rejected version {t.version}: {t.reason or 'no reason'}"
        return []
    if any(t.status != "applied" for t in canary):
        return []
    since = max(t.updated_at for t in canary)
    drop = answered_drop(s, [t.gateway_id for t in canary], r.created_at, since, now, min_calls, max_drop)
    if drop:
        r.status, r.reason = "halted", drop
        return []
    if now - since < soak_s or bridge is None:
        return []
    r.status = "rest"
    return [t for t in r.targets if t.stage == "rest" and t.status == "pending"]


def _rest_step(r: Rollout) -> None:
    statuses = {t.status for t in r.targets}
    if statuses == {"applied"}:
        r.status, r.reason = "done", None
    elif statuses <= {"applied", "rejected"}:
        bad = [f"{t.gateway_id}: {t.reason or 'no reason'}" for t in r.targets if t.status == "rejected"]
        r.status, r.reason = "halted", "rejected by " + "; ".join(bad)


def answered_drop(s: Session, gateways: list[str], started: int, since: int, now: int, min_calls: int,
                  max_drop: float) -> str | None:
    """Why to halt when the canaries answer clearly fewer calls than before the rollout, else None.

    Compares the answered ratio since the canaries applied with the same length of time before the rollout.
    """
    span = max(now - since, 3600)

    def ratio(lo: int, hi: int) -> tuple[int, float]:
        offered, answered = s.execute(select(func.count(), func.coalesce(func.sum(
            case((Record.outcome == "answered", 1), else_=0)), 0)).where(
            Record.kind == "call", Record.gateway_id.in_(gateways), Record.at >= lo, Record.at < hi)).one()
        return int(offered), (int(answered) / offered if offered else 0.0)

    n_after, after = ratio(since, now + 1)
    n_before, before = ratio(started - span, started)
    if n_after >= min_calls and n_before >= min_calls and after < before - max_drop:
        return (f"answered ratio at the canaries fell from {before:.2f} ({n_before} calls) to {after:.2f} "
                f"({n_after} calls)")
    return None


def _publish(s: Session, bridge, targets: list[RolloutTarget]) -> None:
    """Publish each target's version (keys and bodies read in one select)."""
    wanted = {(t.gateway_id, t.version) for t in targets if t.status != "applied"}
    if bridge is None or not wanted:
        return
    g, v = Gateway.__table__.c, TableVersion.__table__.c
    rows = s.execute(select(g.id, g.key_hex, v.version, v.body).join(TableVersion.__table__, v.gateway_id == g.id)
                     .where(tuple_(v.gateway_id, v.version).in_(list(wanted))))
    _publish_bodies(s, bridge, [tuple(r) for r in rows])


def _publish_bodies(s: Session, bridge, items: list[tuple[str, str, int, bytes | str]]) -> None:
    """Make each (gateway, key, version, body) the gateway's desired version, commit, then sign and publish."""
    if bridge is None or not items:
        return
    g = Gateway.__table__
    s.connection().execute(update(g).where(g.c.id == bindparam("gw")).values(desired_version=bindparam("v")),
                           [{"gw": gw_id, "v": version} for gw_id, _, version, _ in items])
    loaded = {key[1][0]: obj for key, obj in s.identity_map.items() if key[0] is Gateway}
    for gw_id, *_ in items:  # the session's copies are stale now
        if gw_id in loaded:
            s.expire(loaded[gw_id], ["desired_version"])
    s.commit()  # desired before it is on the wire: a gateway acking at once is judged against it
    for gw_id, key_hex, _, body in items:
        bridge.publish_sealed(gw_id, key_hex, body)
