"""`citygate report year | milestones | schedule run` and `citygate privacy purge`: what the year page, the
scheduled reports and the retention duty do, from the command line, on the settings' database
(controller.services.report_year, report_schedule, report_privacy). Registered in controller/cli/__init__.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.admin import report_app
from controller.cli.base import app, console
from controller.cli.common import _db, _domain_error, _fail
from controller.services.errors import DomainError

schedule_app = typer.Typer(help="Scheduled reports (daily, weekly, monthly): CSV + HTML in a folder, a webhook.",
                           no_args_is_help=True)
report_app.add_typer(schedule_app, name="schedule")
privacy_app = typer.Typer(help="Callers' numbers: masked for viewers; cleared after the retention period.",
                          no_args_is_help=True)
app.add_typer(privacy_app, name="privacy")


def _json(data) -> None:
    typer.echo(json.dumps(data, indent=1, default=str))


@report_app.command("year")
def report_year_cmd(
    service: Annotated[str, typer.Option(help="The service's number, e.g. 122")],
    year: Annotated[int, typer.Option(help="Local calendar year")],
    within_s: Annotated[int, typer.Option(help="Service level: answered within this many seconds")] = 20,
) -> None:
    """A service's year in the region's local time (key figures, months, cities) as JSON."""
    from controller.services.report_year import year_figures

    try:
        with _db().session() as s:
            _json(year_figures(s, service, year, within_s))
    except DomainError as e:
        raise _domain_error(e) from None


@report_app.command("milestones")
def report_milestones_cmd(
    service: Annotated[str, typer.Option(help="The service's number, e.g. 505")],
    every: Annotated[int, typer.Option(help="Every N-th call")] = 100_000,
    answered: Annotated[bool, typer.Option(help="Count answered calls only")] = False,
) -> None:
    """Which call was the service's N-th, 2N-th... (time, city, gateway; never the caller's number), as JSON."""
    from controller.services.report_year import milestones

    try:
        with _db().session() as s:
            _json(milestones(s, service, every, 1000, answered))
    except DomainError as e:
        raise _domain_error(e) from None


@schedule_app.command("run")
def schedule_run(
    period: Annotated[str, typer.Option(help="daily (yesterday), weekly (last Monday to Sunday) or monthly "
                                             "(last month), in the region's local time")],
    folder: Annotated[Path | None, typer.Option("--dir", help="Default: CITYGATE_REPORT_DIR, else "
                                                              "<data_dir>/reports")] = None,
    send: Annotated[bool, typer.Option(help="Also POST it to CITYGATE_REPORT_WEBHOOK_URL")] = True,
) -> None:
    """Make the last whole period's report now (as the leader does once the period is over) and send it."""
    from controller.services.report_schedule import PERIODS, deliver, produce
    from controller.settings import get_settings

    if period not in PERIODS:
        raise _fail("period", f"one of {', '.join(PERIODS)}")
    settings = get_settings()
    target = folder or settings.report_dir or Path(settings.data_dir) / "reports"
    try:
        with _db().session() as s:
            report = produce(s, period, Path(target), within_s=settings.report_service_level_s)
    except DomainError as e:
        raise _domain_error(e) from None
    except OSError as e:
        raise _fail("dir", f"cannot write to {target}: {e.strerror or e}") from None
    console.print(f"{report['name']}: {report['totals']['offered']} calls offered, "
                  f"{report['totals']['answered']} answered\n  {report['csv']}\n  {report['html']}", highlight=False)
    if send and settings.report_webhook_url:
        try:
            status = deliver(settings.report_webhook_url, report)
        except OSError as e:  # refused, timed out, or an HTTP error status
            raise _fail("report_webhook_url", f"not sent: {e}") from None
        Path(report["csv"]).with_suffix(".sent").write_text(f"{status}\n")
        console.print(f"  sent: HTTP {status}", highlight=False)


@privacy_app.command("purge")
def privacy_purge(
    days: Annotated[int | None, typer.Option(help="Clear numbers of calls older than this many days "
                                                  "(default: CITYGATE_CALLER_RETENTION_DAYS)")] = None,
) -> None:
    """Clear callers' numbers from call records older than the retention period (every count stays)."""
    from controller.services.report_privacy import cutoff, purge
    from controller.settings import get_settings

    days = get_settings().caller_retention_days if days is None else days
    try:
        before = cutoff(days)
    except DomainError as e:
        raise _fail("days", e.reason) from None
    if before is None:
        raise _fail("days", "no retention period: give --days or set CITYGATE_CALLER_RETENTION_DAYS")
    with _db().session() as s:
        changed = purge(s, before)
    console.print(f"numbers cleared from {changed['records']} records and {changed['outbound_requests']} "
                  f"outbound requests older than {days} days", highlight=False)
