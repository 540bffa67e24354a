"""What a rollout would change for a gateway, decision by decision (controller.impact)."""

from fastapi import APIRouter
from pydantic import BaseModel

from controller import impact
from controller.api.deps import Reader, SessionDep, errors
from controller.api.routes.gateways import GatewayPath, load

router = APIRouter(prefix="/gateways", tags=["gateways"], responses=errors(404))


class ChangeOut(BaseModel):
    gateway: str
    city: str
    service: str | None
    port: str
    caller: str
    when: str
    before: str
    after: str
    text: str


class ImpactOut(BaseModel):
    gateway: str
    changes: list[ChangeOut]


@router.get("/{gateway_id}/impact", response_model=ImpactOut, dependencies=[Reader])
def gateway_impact(gateway_id: GatewayPath, s: SessionDep) -> ImpactOut:
    """The latest compiled table against the one the gateway runs (the last published, else the applied):
    each inbound port and caller group, every hour of a week and the calendar dates. Empty: nothing to roll out."""
    load(s, gateway_id)  # 404 for an unknown gateway
    found = impact.pending(s, [gateway_id]).get(gateway_id, [])
    return ImpactOut(gateway=gateway_id, changes=[ChangeOut(**c.as_dict()) for c in found])
