"""`citygate callback` and `citygate alert`: the call-back queue and the alerts from the command line, as
the console's /callbacks and /alerts pages work them (the same services; "call back now" goes through the
running controller's API, which owns the gateways' command path)."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.cli.base import app, console
from controller.cli.common import _actor, _db, _domain_error, _fail, _when
from controller.cli.output import CSV_OPTION, JSON_OPTION, Col, emit
from controller.cli.remote import refused, unreachable
from controller.services.errors import DomainError

callback_app = typer.Typer(help="The call-back queue: callers a gateway promised a call back.", no_args_is_help=True)
app.add_typer(callback_app, name="callback")
alert_app = typer.Typer(help="Alerts: list, acknowledge, resolve.", no_args_is_help=True)
app.add_typer(alert_app, name="alert")

ID = Annotated[int, typer.Argument(help="The call-back's id (the call record's, as `callback list` shows)",
                                   min=1, max=2**63 - 1)]


@callback_app.command("list")
def callback_list(city: Annotated[str, typer.Option(help="Only this city's callers")] = "",
                  as_csv: CSV_OPTION = False, as_json: JSON_OPTION = False) -> None:
    """Open call-backs, oldest first: when, city, caller, gateway, route, attempts, notes."""
    from controller.services import callbacks

    try:
        with _db().session() as s:
            rows, total = callbacks.queue(s, city)
            out = [r | {"when": _when(r["at"]), "notes": " | ".join(n.text for n in r["notes"])} for r in rows]
    except DomainError as e:
        raise _domain_error(e) from None
    emit(console, out, [Col("id", ident=True, right=True), Col("when"), Col("city"), Col("caller", ident=True),
                        Col("gateway", ident=True), Col("route"), Col("attempts", right=True), Col("notes")],
         f"call-backs waiting: {total}" + (f" (the oldest {len(rows)})" if total > len(rows) else ""),
         as_csv, as_json)


@callback_app.command("done")
def callback_done(call_id: ID) -> None:
    """Mark a call-back done (the caller was reached another way)."""
    from controller.services import callbacks

    try:
        with _db().session() as s:
            rec = callbacks.done(s, call_id)
            console.print(f"call-back {call_id} ({rec.caller}) done at {_when(rec.callback_done_at)}")
    except DomainError as e:
        raise _domain_error(e) from None


@callback_app.command("note")
def callback_note(call_id: ID, text: Annotated[str, typer.Argument(help="The note (1-500 characters)")]) -> None:
    """Add a note to a call-back ("no answer at 14:10, try after 16:00")."""
    from controller.services import callbacks

    try:
        with _db().session() as s:
            callbacks.add_note(s, call_id, _actor(), text)
    except DomainError as e:
        raise _domain_error(e) from None
    console.print(f"note added to call-back {call_id}")


@callback_app.command("call")
def callback_call(
    call_id: ID,
    agent: Annotated[str, typer.Option(help="The operator's phone, rung first (E.164, e.g. +380629000505)")],
    api: Annotated[str, typer.Option(help="The running controller (`citygate serve` / `demo`)",
                                     envvar="CITYGATE_API")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(help="An operator's API token", envvar="CITYGATE_TOKEN")] = None,
) -> None:
    """Call back now: the caller's gateway rings the agent, then the caller (done once the caller answers)."""
    import httpx

    if not token:
        raise _fail("--token", "the API needs a token", "give an operator's token with --token or CITYGATE_TOKEN "
                    "(`citygate token create NAME` makes one)")
    try:
        r = httpx.post(f"{api.rstrip('/')}/api/v1/callbacks/{call_id}/call", json={"agent": agent},
                       headers={"Authorization": f"Bearer {token}"}, timeout=60)
    except httpx.HTTPError as e:
        raise unreachable(api, e, "is the controller running? use the address it printed") from None
    if r.status_code != 202:
        raise refused(r)
    body = r.json()
    console.print(f"call-back {call_id}: placed through {body.get('gateway')} (outbound call {body.get('id')}); "
                  "the agent's phone rings first")


@alert_app.command("list")
def alert_list(
    state: Annotated[str, typer.Option(help="open | past | all")] = "open",
    gateway: Annotated[str, typer.Option(help="Only this gateway's alerts")] = "",
    as_csv: CSV_OPTION = False, as_json: JSON_OPTION = False,
) -> None:
    """Alerts, newest first: code, gateway, detail, opened, acknowledged (who), resolved."""
    from controller.services import alerts

    try:
        with _db().session() as s:
            rows, total = alerts.list_alerts(s, state, gateway)
            out = [{"id": a.id, "code": a.code, "gateway": a.gateway_id, "detail": a.detail,
                    "opened": _when(a.created_at),
                    "acknowledged": f"{_when(a.acknowledged_at)} by {a.acknowledged_by}" if a.acknowledged_at
                    else None, "resolved": _when(a.resolved_at) if a.resolved_at else None} for a in rows]
    except DomainError as e:
        raise _domain_error(e) from None
    emit(console, out, [Col("id", ident=True, right=True), Col("code", ident=True), Col("gateway", ident=True),
                        Col("detail"), Col("opened"), Col("acknowledged"), Col("resolved")],
         f"alerts ({state}): {total}", as_csv, as_json)


def _work(alert_id: int, verb: str) -> None:
    from controller.services import alerts

    try:
        with _db().session() as s:
            a = (alerts.acknowledge if verb == "acknowledged" else alerts.resolve)(s, alert_id, _actor())
            console.print(f"alert {a.id} ({a.code}, {a.gateway_id or 'controller'}) {verb}")
    except DomainError as e:
        raise _domain_error(e) from None


@alert_app.command("ack")
def alert_ack(alert_id: Annotated[int, typer.Argument(min=1, max=2**63 - 1)]) -> None:
    """Acknowledge an alert: someone is on it (who and when are kept)."""
    _work(alert_id, "acknowledged")


@alert_app.command("resolve")
def alert_resolve(alert_id: Annotated[int, typer.Argument(min=1, max=2**63 - 1)]) -> None:
    """Resolve an alert by hand (a rule's alert also resolves itself once its condition clears)."""
    _work(alert_id, "resolved")
