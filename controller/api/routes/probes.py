"""Probe calls to centres (DESIGN §5a probes): a schedule per centre, and the last probe's result.

Thin: controller.services.probes holds the rules (errors name the field: `probes.hours[0].end`)."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from controller.api.deps import FleetReader, Operator, Reader, SessionDep, errors
from controller.api.routes.common import TEXT_PARAM, In, utc_text
from controller.services import probes

router = APIRouter(prefix="/probes", tags=["probes"], responses=errors(404))
CentreCode = Annotated[str, Path(max_length=48, description="the centre's code")]


class ScheduleIn(In):
    every_s: int | None = Field(None, ge=600, le=7 * 86400, description="seconds between probes (default 3600)")
    hours: list[dict[str, Any]] | None = Field(None, max_length=64, description='local windows as a route\'s, '
                                               '[{"days": "12345", "start": "08:00", "end": "18:00"}]; null = always')
    alert_after: int | None = Field(None, ge=1, le=100, description="failed probes in a row that open an alert "
                                                                    "(default 3)")
    enabled: bool | None = None


class ScheduleOut(BaseModel):
    centre: str
    every_s: int
    hours: list[dict[str, Any]] | None
    alert_after: int
    enabled: bool


class StatusOut(BaseModel):
    centre: str
    gateway: str
    at: int | None
    utc: str | None
    port: str | None
    outcome: str | None
    pdd_ms: int | None
    failed_in_a_row: int


@router.get("/schedules", response_model=list[ScheduleOut], dependencies=[Reader])
def list_schedules(s: SessionDep):
    """Centres with a probe schedule (any other centre is not probed)."""
    return probes.list_schedules(s)


@router.get("/schedules/{centre}", response_model=ScheduleOut, dependencies=[Reader])
def get_schedule(centre: CentreCode, s: SessionDep):
    return probes.get_schedule(s, centre)


@router.put("/schedules/{centre}", response_model=ScheduleOut, dependencies=[Operator])
def set_schedule(centre: CentreCode, body: ScheduleIn, s: SessionDep):
    """Probe this centre (fields left out keep their value, else the defaults: hourly, always, alert after 3);
    the gateways that dial it are compiled."""
    values = body.model_dump(exclude_unset=True)  # a null hours means always; other nulls keep the value
    return probes.set_schedule(s, centre, {k: v for k, v in values.items() if v is not None or k == "hours"})


@router.delete("/schedules/{centre}", status_code=204, dependencies=[Operator], responses=errors(409))
def delete_schedule(centre: CentreCode, s: SessionDep):
    """Stop probing this centre."""
    probes.delete_schedule(s, centre)
    return Response(status_code=204)


@router.get("/status", response_model=list[StatusOut], dependencies=[FleetReader])
def probe_status(s: SessionDep, centre: Annotated[str | None, Query(max_length=TEXT_PARAM)] = None,
                 gateway: Annotated[str | None, Query(max_length=TEXT_PARAM)] = None):
    """Per gateway and centre: the last probe (outcome, post-dial delay in ms) and failed probes in a row."""
    return [{**row, "utc": utc_text(row["at"])} for row in probes.status(s, centre, gateway)]
