"""Operators call citizens (DESIGN §5a `call`): place a call, or call a call-back back now.

Thin: controller.services.outbound picks the gateway, sends the command and keeps the request; the
gateway's answer comes back at once (409 when it refused, 504 when it did not answer), how the call
ended comes later in its `outbound` record (`GET /calls?kind=outbound`, `GET /outbound-calls`)."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from controller.api.deps import INT64_MAX, CurrentUser, Operator, Reader, SessionDep, errors, get_bridge
from controller.api.routes.common import In, Offset, Page
from controller.services import outbound
from controller.services.report_privacy import masks_for, shown

router = APIRouter(tags=["outbound"], responses=errors(404, 409, 503, 504))
NumberText = Annotated[str, Field(max_length=16, description="E.164 with +, or a short number")]


class OutboundIn(In):
    agent: NumberText = Field(description="the operator's phone: rung first")
    citizen: NumberText = Field(description="called once the agent answers")
    gateway: str | None = Field(None, max_length=32, description="default: an online gateway of the citizen's "
                                                                  "city with a free out port")
    city: str | None = Field(None, max_length=128, description="the citizen's city, when no gateway is given "
                                                               "(default: where they last called from)")


class CallBackIn(In):
    agent: NumberText = Field(description="the operator's phone: rung first")
    gateway: str | None = Field(None, max_length=32, description="default: the gateway that took the call, "
                                                                  "else another of its city")


class PlacedOut(BaseModel):
    id: int
    gateway: str
    via: str | None
    agent: str
    citizen: str
    callback_id: int | None
    command: str | None
    ok: bool
    result: Any = None
    error: str | None = None
    outcome: str | None


class RequestOut(BaseModel):
    id: int
    command_id: str
    gateway_id: str
    agent: str
    citizen: str
    via: str | None
    callback_id: int | None
    requested_by: str
    created_at: int
    outcome: str | None
    ended_at: int | None


def _send(request: Request):
    """The bridge's command, looked up when the call is sent: bad input is a 422 even without a broker."""
    return lambda gw, op, args: get_bridge(request).command(gw, op, args)


@router.post("/outbound-calls", response_model=PlacedOut, status_code=202, dependencies=[Operator])
def place_call(body: OutboundIn, request: Request, s: SessionDep, user: CurrentUser):
    """Ring the agent, then the citizen, and bridge them: 202 once the gateway took the call."""
    return outbound.place(s, _send(request), user, body.agent, body.citizen, body.gateway, body.city)


@router.post("/callbacks/{call_id}/call", response_model=PlacedOut, status_code=202, dependencies=[Operator])
def call_back_now(call_id: Annotated[int, Path(ge=1, le=INT64_MAX)], body: CallBackIn, request: Request,
                  s: SessionDep, user: CurrentUser):
    """"Call back now": the call-back is marked done once its outbound record says the citizen answered;
    otherwise its attempts are counted."""
    return outbound.call_back(s, _send(request), user, call_id, body.agent, body.gateway)


@router.get("/outbound-calls", response_model=Page[RequestOut], dependencies=[Reader])
def list_outbound(s: SessionDep, request: Request, user: CurrentUser,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Offset = 0):
    """Operators' call requests, newest first, with how each ended (null until its record arrives); the
    citizens' numbers masked for viewers (the mask_callers setting)."""
    rows, total = outbound.list_requests(s, limit, offset)
    masked = masks_for(user.role, getattr(request.app.state.settings, "mask_callers", True))
    return {"data": shown(rows, masked, ("citizen",)), "count": total}
