"""What a gateway would do with a call (the shared `protocols.routing.decide` on its latest compiled
table), and commands sent to a gateway over MQTT."""

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, field_validator

from controller.api.deps import INT32_MAX, ApiError, FleetReader, SessionDep, Technician, errors, get_bridge
from controller.api.routes.common import TIME_MAX, TIME_MIN, In
from controller.api.routes.gateways import GatewayPath, load
from controller.commands import CommandsBusy
from controller.services import fleet
from protocols import messages

router = APIRouter(prefix="/gateways", tags=["gateways"], responses=errors(404))


class PreviewIn(In):
    port: str = Field(max_length=16, description="inbound port, e.g. gsm1")
    caller: str = Field("", max_length=32, description="caller number")
    at: int | Annotated[str, Field(max_length=40)] | None = Field(
        None, description="UTC seconds (years 1 to 9999), or ISO-8601: with an offset it is exact, without one it "
                          "is the gateway's local time; null = now")
    busy: dict[Annotated[str, Field(max_length=48)], Annotated[int, Field(ge=0, le=INT32_MAX)]] | None = Field(
        None, max_length=256, description="calls in progress per target")
    turn: int = Field(0, ge=0, le=INT32_MAX, description="round-robin counter")

    @field_validator("at")
    @classmethod
    def _in_range(cls, v):
        if type(v) is int and not TIME_MIN <= v <= TIME_MAX:
            raise ValueError(f"must be between {TIME_MIN} and {TIME_MAX} (years 1 to 9999)")
        return v


class PreviewOut(BaseModel):
    gateway: str
    table_version: int
    at: int
    utc: str
    local_time: str
    weekday: int
    utc_offset_s: int
    decision: dict[str, Any]
    numbers: dict[str, str]


class CommandIn(In):
    op: str = Field(min_length=1, max_length=32, description="resend_state, selftest, reboot, meminfo, counters")
    args: dict[str, Any] = Field(default_factory=dict, max_length=32)


@router.post("/{gateway_id}/preview", response_model=PreviewOut, dependencies=[FleetReader])
def preview(gateway_id: GatewayPath, body: PreviewIn, s: SessionDep):
    """The decision the gateway would take for this call, from its latest compiled table."""
    load(s, gateway_id)
    return PreviewOut(**fleet.preview(s, gateway_id, body.port, body.caller, body.at, body.busy, body.turn))


@router.post("/{gateway_id}/commands", dependencies=[Technician], responses=errors(503, 504))
def command(gateway_id: GatewayPath, body: CommandIn, request: Request, s: SessionDep) -> dict:
    """Send a command over MQTT and wait for the gateway's answer (504 when none comes)."""
    gw = load(s, gateway_id)
    bridge = get_bridge(request)
    s.commit()  # end the read transaction: the wait can take seconds
    try:
        return bridge.command(gw.id, body.op, body.args)
    except messages.MessageError as e:  # a bad op or args: refused before anything was sent (commands.check)
        raise ApiError(422, f"commands.{e.path}", e.reason) from None
    except CommandsBusy as e:
        raise ApiError(503, "gateway_id", str(e)) from None
    except TimeoutError as e:
        raise ApiError(504, "gateway_id", str(e)) from None
