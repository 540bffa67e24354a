"""What a gateway would do with a call (the shared `protocols.routing.decide` on its latest compiled
table), and commands sent to a gateway over MQTT."""

import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from controller.api.deps import ApiError, FleetReader, SessionDep, Technician, get_bridge
from controller.api.routes.common import In
from controller.api.routes.gateways import load
from controller.compiler import latest_table
from protocols import routing, tz

router = APIRouter(prefix="/gateways", tags=["gateways"])


class PreviewIn(In):
    port: str = Field(description="inbound port, e.g. gsm1")
    caller: str = Field("", description="caller number")
    at: int | str | None = Field(None, description="UTC seconds, or ISO-8601: with an offset it is exact, "
                                                   "without one it is the gateway's local time; null = now")
    busy: dict[str, int] | None = Field(None, description="calls in progress per target")
    turn: int = Field(0, ge=0, description="round-robin counter")


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
    args: dict[str, Any] = Field(default_factory=dict)


def when(at: int | str | None, table: routing.Table) -> int:
    """The preview's `at` -> UTC seconds; a naive ISO time is wall time in the table's zone."""
    if at is None:
        return int(time.time())
    if isinstance(at, int):
        return at
    if at.strip().lstrip("-").isdigit():
        return int(at)
    try:
        dt = datetime.fromisoformat(at.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "preview.at", "must be UTC seconds or an ISO-8601 time") from None
    if dt.tzinfo is not None:
        return int(dt.timestamp())
    wall = int(dt.replace(tzinfo=UTC).timestamp())
    guess = wall - table.tz.utc_offset(wall)
    return wall - table.tz.utc_offset(guess)


@router.post("/{gateway_id}/preview", response_model=PreviewOut, dependencies=[FleetReader])
def preview(gateway_id: str, body: PreviewIn, s: SessionDep):
    """The decision the gateway would take for this call, from its latest compiled table."""
    gw = load(s, gateway_id)
    tv = latest_table(s, gw.id)
    if tv is None:
        raise ApiError(404, "gateway_id", f"{gw.id} has no compiled table yet")
    table = routing.load(tv.body)
    now = when(body.at, table)
    d = routing.decide(table, body.port, body.caller, now, busy=body.busy, turn=body.turn)
    lt = tz.localtime(now, table.tz)
    return PreviewOut(
        gateway=gw.id, table_version=table.version, at=now,
        utc=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        local_time="%s %02d:%02d:%02d" % (tz.date_str(lt), lt[3], lt[4], lt[5]), weekday=lt[6],
        utc_offset_s=table.tz.utc_offset(now), decision=d.as_dict(),
        numbers={t: table.targets[t].number for t in d.targets})


@router.post("/{gateway_id}/commands", dependencies=[Technician])
def command(gateway_id: str, body: CommandIn, request: Request, s: SessionDep) -> dict:
    """Send a command over MQTT and wait for the gateway's answer (504 when none comes)."""
    gw = load(s, gateway_id)
    bridge = get_bridge(request)
    s.commit()  # end the read transaction: the wait can take seconds
    try:
        return bridge.command(gw.id, body.op, body.args)
    except TimeoutError as e:
        raise ApiError(504, "gateway_id", str(e)) from None
