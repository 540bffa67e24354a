"""Call reports: outcome counts, ratios and the service level per city, gateway, route or target, per hour,
day or month (UTC); a service's year (local time) and its milestones. The counting is controller.services
(shared with the CLI, the console's Reports pages and the scheduled reports)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from controller.api.deps import Reader, SessionDep, errors
from controller.api.routes.common import TimeParam, parse_time
from controller.services import report_year
from controller.services.report_local import DEFAULT_WITHIN_S, MAX_WITHIN_S
from controller.services.reports import call_report_data, period

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/calls", dependencies=[Reader])
def call_report(
    s: SessionDep,
    group: Literal["city", "gateway", "route", "target", "option"] = "city",
    interval: Literal["hour", "day", "month"] = "day",
    from_: Annotated[TimeParam, Query(alias="from", description="UTC seconds or ISO-8601, inclusive")] = None,
    to: Annotated[TimeParam, Query(description="UTC seconds or ISO-8601, exclusive")] = None,
    route: Annotated[str | None, Query(max_length=48, description="only this route's calls (a menu's, say)")] = None,
    within_s: Annotated[int | None, Query(ge=1, le=MAX_WITHIN_S, description=(
        f"service level: answered within this many seconds of ringing (the pages use {DEFAULT_WITHIN_S}); "
        "counted from the call records, so only when asked"))] = None,
) -> dict:
    """Offered, answered, abandoned, failed, rejected, after_hours, callback, denied, talk seconds, answer
    ratio, average talk time and abandon ratio, per group and period (UTC), with totals per group; with
    `within_s`, the service level too (`within`: answered within `within_s` seconds of ringing; per offered
    call). Without it, whole-hour windows are summed from the hourly aggregates (fast over a year).
    `group=option`: per menu key pressed (null: calls without a menu)."""
    return call_report_data(s, group, interval, from_, to, route, within_s)


@router.get("/outbound", dependencies=[Reader])
def outbound_report(
    s: SessionDep,
    interval: Literal["hour", "day", "month"] = "day",
    from_: Annotated[TimeParam, Query(alias="from", description="UTC seconds or ISO-8601, inclusive")] = None,
    to: Annotated[TimeParam, Query(description="UTC seconds or ISO-8601, exclusive")] = None,
) -> dict:
    """Operators' calls to citizens per city and period (UTC): placed, answered, not reached (the agent or
    the citizen did not answer, the citizen was busy, the call failed), talk seconds."""
    from controller.services.call_reports import outbound_report as report

    lo, hi = parse_time(from_, "from"), parse_time(to, "to")
    return {"interval": interval, "from": lo, "to": hi, "rows": report(s, interval, lo, hi, period)}


Service = Annotated[str, Query(min_length=1, max_length=128, description="the service's number (122) or name")]


@router.get("/year", dependencies=[Reader], responses=errors(404))
def year_report(
    s: SessionDep,
    service: Service,
    year: Annotated[int | None, Query(ge=report_year.YEARS[0], le=report_year.YEARS[1],
                                      description="local calendar year; default: this year")] = None,
    within_s: Annotated[int, Query(ge=1, le=MAX_WITHIN_S, description="service level: answered within this "
                                   "many seconds of ringing")] = DEFAULT_WITHIN_S,
) -> dict:
    """A service's year in the region's local time (the 122 line's yearly report): calls offered, answered,
    answer ratio, service level, talk time total and average, busiest month, day and hour, call-backs
    requested, placed and reached, per month and per city."""
    if year is None:
        from datetime import datetime

        from controller.services.report_local import region_zone

        year = datetime.now(region_zone(s)).year
    return report_year.year_figures(s, service, year, within_s)


@router.get("/milestones", dependencies=[Reader], responses=errors(404))
def milestones(
    s: SessionDep,
    service: Service,
    every: Annotated[int, Query(ge=1, le=report_year.MAX_EVERY, description="every N-th call")] = 100_000,
    limit: Annotated[int, Query(ge=1, le=report_year.MAX_MILESTONES)] = 100,
    answered: Annotated[bool, Query(description="count answered calls only (default: every call offered)")] = False,
) -> dict:
    """The N-th caller of a service (the 100,000th, the 200,000th...): which call each milestone was (time in
    UTC and local, city, gateway, port, outcome), oldest first; never the caller's number."""
    return report_year.milestones(s, service, every, limit, answered)
