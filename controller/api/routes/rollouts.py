"""Rollouts over HTTP: compile and publish tables, a canary set first; watch them land (services.rollouts)."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.api.deps import Operator, Reader, SessionDep, errors, get_bridge
from controller.api.routes.common import In, Offset, Page, RowId
from controller.models import Rollout
from controller.services import rollouts

router = APIRouter(prefix="/rollouts", tags=["rollouts"], responses=errors(404))
GatewayId = Annotated[str, Field(max_length=64)]


class RolloutIn(In):
    gateways: list[GatewayId] | None = Field(None, max_length=100_000, description="gateway ids; null = every gateway")
    canary: list[GatewayId] = Field(default_factory=list, max_length=1000,
                                    description="published first; the rest once they apply")


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
    return RolloutOut(**rollouts.describe(s, r))


@router.post("", response_model=RolloutOut, status_code=201, dependencies=[Operator], responses=errors(503))
def create_rollout(body: RolloutIn, request: Request, s: SessionDep):
    """Compile the gateways' tables and publish them: canaries now, the rest once every canary applied."""
    return view(s, rollouts.begin(s, get_bridge(request), body.gateways, body.canary))


@router.get("", response_model=Page[RolloutOut], dependencies=[Reader])
def list_rollouts(s: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  offset: Offset = 0):
    """Rollouts, newest first."""
    rows = s.scalars(select(Rollout).order_by(Rollout.id.desc()).limit(limit).offset(offset))
    return {"data": [view(s, r) for r in rows], "count": s.scalar(select(func.count()).select_from(Rollout))}


@router.get("/{rollout_id}", response_model=RolloutOut, dependencies=[Reader])
def get_rollout(rollout_id: RowId, s: SessionDep):
    return view(s, rollouts.load(s, rollout_id))
