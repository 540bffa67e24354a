"""Rollouts as the API and the CLI start and show them: controller.rollouts does the publishing; this names
the field a refusal is about and describes a rollout with each target's status."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.compiler import CompileError
from controller.models import Gateway, Rollout
from controller.rollouts import RolloutError, start_rollout, target_status
from controller.services.errors import FieldError, NotFound

COUNTED = ("pending", "applied", "rejected", "offline")


def begin(s: Session, bridge, gateways: list[str] | None, canary: list[str]) -> Rollout:
    """`start_rollout`, its refusals as FieldErrors naming the field."""
    try:
        return start_rollout(s, bridge, gateways, canary)
    except RolloutError as e:
        raise FieldError(f"rollouts.{e.field}", e.reason) from None
    except CompileError as e:
        raise FieldError(f"rollouts.gateways.{e.gateway}", f"its table does not compile: {e.path}: {e.reason}") \
            from None


def load(s: Session, rollout_id: int) -> Rollout:
    r = s.get(Rollout, rollout_id)
    if r is None:
        raise NotFound("rollout_id", f"no rollout {rollout_id}")
    return r


def describe(s: Session, r: Rollout) -> dict:
    """{id, status, reason, created_at, canary, counts, targets}: canaries first, each target's status as
    its gateway stands now."""
    gws = {gw.id: gw for gw in s.scalars(select(Gateway).where(Gateway.id.in_([t.gateway_id for t in r.targets])))}
    targets = []
    for t in sorted(r.targets, key=lambda t: (t.stage != "canary", t.gateway_id)):
        gw = gws.get(t.gateway_id)
        targets.append({"gateway": t.gateway_id, "stage": t.stage, "version": t.version,
                        "status": target_status(t.status, gw, t.version), "reason": t.reason,
                        "updated_at": t.updated_at, "online": gw.online if gw else None,
                        "applied_version": gw.applied_version if gw else None})
    counts = {k: sum(t["status"] == k for t in targets) for k in COUNTED}
    return {"id": r.id, "status": r.status, "reason": r.reason, "created_at": r.created_at,
            "canary": list(r.canary), "counts": counts, "targets": targets}
