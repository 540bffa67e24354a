"""Rollouts: compile and publish tables, a canary set first; watch them land."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.api.deps import ApiError, Operator, Reader, SessionDep, get_bridge, not_found
from controller.api.routes.common import In, Page
from controller.compiler import CompileError
from controller.models import Gateway, Rollout
from controller.rollouts import RolloutError, start_rollout, target_status

router = APIRouter(prefix="/rollouts", tags=["rollouts"])


class RolloutIn(In):
    gateways: list[str] | None = Field(None, description="gateway ids; null = every gateway")
    canary: list[str] = Field(default_factory=list, description="published first; the rest once they apply")


class TargetOut(BaseModel):
    gateway: str
    stage: str
    version: int
    status: str
    reason: str | None
    updated_at: int
    online: bool | None
    applied_version: int | None


class RolloutOut(BaseModel):
    id: int
    status: str
    reason: str | None
    created_at: int
    canary: list[str]
    counts: dict[str, int]
    targets: list[TargetOut]


def view(s: Session, r: Rollout) -> RolloutOut:
    gws = {gw.id: gw for gw in s.scalars(select(Gateway).where(Gateway.id.in_([t.gateway_id for t in r.targets])))}
    targets = []
    for t in sorted(r.targets, key=lambda t: (t.stage != "canary", t.gateway_id)):
        gw = gws.get(t.gateway_id)
        targets.append(TargetOut(gateway=t.gateway_id, stage=t.stage, version=t.version,
                                 status=target_status(t.status, gw, t.version), reason=t.reason,
                                 updated_at=t.updated_at, online=gw.online if gw else None,
                                 applied_version=gw.applied_version if gw else None))
    counts = {k: sum(t.status == k for t in targets) for k in ("pending", "applied", "rejected", "offline")}
    return RolloutOut(id=r.id, status=r.status, reason=r.reason, created_at=r.created_at, canary=list(r.canary),
                      counts=counts, targets=targets)


@router.post("", response_model=RolloutOut, status_code=201, dependencies=[Operator])
def create_rollout(body: RolloutIn, request: Request, s: SessionDep):
    """Compile the gateways' tables and publish them: canaries now, the rest once every canary applied."""
    return view(s, begin(s, get_bridge(request), body.gateways, body.canary))


def begin(s: Session, bridge, gateways: list[str] | None, canary: list[str]) -> Rollout:
    """`start_rollout`, its refusals as 422 ApiErrors naming the field."""
    try:
        return start_rollout(s, bridge, gateways, canary)
    except RolloutError as e:
        raise ApiError(422, f"rollouts.{e.field}", e.reason) from None
    except CompileError as e:
        raise ApiError(422, f"rollouts.gateways.{e.gateway}", f"its table does not compile: {e.path}: {e.reason}") \
            from None


@router.get("", response_model=Page[RolloutOut], dependencies=[Reader])
def list_rollouts(s: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  offset: Annotated[int, Query(ge=0)] = 0):
    """Rollouts, newest first."""
    rows = s.scalars(select(Rollout).order_by(Rollout.id.desc()).limit(limit).offset(offset))
    return {"data": [view(s, r) for r in rows], "count": s.scalar(select(func.count()).select_from(Rollout))}


@router.get("/{rollout_id}", response_model=RolloutOut, dependencies=[Reader])
def get_rollout(rollout_id: int, s: SessionDep):
    r = s.get(Rollout, rollout_id)
    if r is None:
        raise not_found("rollout_id", f"rollout {rollout_id}")
    return view(s, r)
