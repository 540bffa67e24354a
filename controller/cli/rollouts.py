"""`citygate rollout`: publish compiled tables, canary gateways first, and follow them (controller.services.rollouts;
`start` publishes through the controller's broker, or asks a running controller with --api)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from controller.cli.base import app, console
from controller.cli.common import _db, _domain_error, _fail, _print_impact, _when
from controller.cli.output import CSV_OPTION, JSON_OPTION, Col, emit
from controller.cli.remote import refused, unreachable

rollout_app = typer.Typer(help="Publish compiled tables, canary gateways first.", no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")


_STATUS_STYLE = {"applied": "green", "rejected": "red", "offline": "yellow", "pending": "cyan"}
TARGET_COLS = [Col("gateway", ident=True), Col("stage"), Col("version", right=True),
               Col("status", show=lambda v: f"[{_STATUS_STYLE.get(v, 'white')}]{v}[/]"),
               Col("online", show=lambda v: {True: "yes", False: "no"}.get(v, "-")),
               Col("applied_version", "applied", right=True), Col("reason"), Col("updated")]


def _rollout_tables(view: dict, as_csv: bool = False, as_json: bool = False) -> None:
    """A rollout as services.rollouts.describe (or the API) gives it."""
    if as_json:
        typer.echo(json.dumps(view, indent=1))
        return
    rows = [t | {"updated": _when(t["updated_at"])} for t in view["targets"]]
    title = f"rollout {view['id']}: {view['status']}" + (f" ({view['reason']})" if view["reason"] else "")
    emit(console, rows, TARGET_COLS, title, as_csv)
    if not as_csv:
        console.print(", ".join(f"{k} {v}" for k, v in view["counts"].items()))


@rollout_app.command("status")
def rollout_status(rollout_id: Annotated[int | None, typer.Argument(metavar="[ID]", help="Default: the latest")]
                   = None, as_csv: CSV_OPTION = False, as_json: JSON_OPTION = False) -> None:
    """A rollout's targets and their status (without ID: recent rollouts, then the latest one's targets)."""
    from sqlalchemy import select

    from controller.models import Rollout
    from controller.services.rollouts import describe as view

    with _db().session() as s:
        if rollout_id is None:
            recent = list(s.scalars(select(Rollout).order_by(Rollout.id.desc()).limit(10)))
            if not recent:
                raise _fail("ID", "no rollout yet", "start one with `citygate rollout start`")
            views = [view(s, r) for r in recent]
            if not (as_csv or as_json):
                rows = [{"id": v["id"], "created": _when(v["created_at"]), "status": v["status"],
                         "canary": ", ".join(v["canary"]) or None, **v["counts"], "reason": v["reason"]}
                        for v in views]
                cols = [Col("id", right=True), Col("created"), Col("status"), Col("canary"),
                        *(Col(k, right=True) for k in ("pending", "applied", "rejected", "offline")), Col("reason")]
                emit(console, rows, cols, "recent rollouts")
            current = views[0]
        else:
            r = s.get(Rollout, rollout_id)
            if r is None:
                raise _fail("ID", f"no rollout {rollout_id}", "list them with `citygate rollout status`")
            current = view(s, r)
    _rollout_tables(current, as_csv, as_json)


@rollout_app.command("impact")
def rollout_impact(
    gateway: Annotated[list[str] | None, typer.Option("--gateway", help="Only this gateway (repeat)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of lines")] = False,
) -> None:
    """What a rollout would change: each gateway's latest compiled table against the one it runs, decision by
    decision (each inbound port and caller group, every hour of a week, the calendar dates)."""
    from controller import impact

    with _db().session() as s:
        changes = impact.pending(s, list(gateway) if gateway else None)
    if as_json:
        typer.echo(impact.as_json(changes))
    else:
        _print_impact(changes, "rollout impact")


def _connect_bridge(db, broker: str | None, user: str | None, password: str | None):
    """A Bridge connected to the controller's broker, or exit 2 saying what must run."""
    import socket

    from controller.ingest.bridge import Bridge, broker_endpoint
    from controller.settings import get_settings

    need = ("`citygate serve` must be running with an external broker (CITYGATE_BROKER=mqtt://host:port, "
            "e.g. Mosquitto) so this command can publish through it; pass that URL as --broker")
    if not broker or not broker.startswith(("mqtt://", "mqtts://")):
        raise _fail("--broker", f"the broker is {broker or 'not set'!r}: an embedded broker lives inside one "
                    "`citygate serve` process and cannot be reached from here", need)
    host, port, *_ = broker_endpoint(broker)
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as e:
        raise _fail("--broker", f"cannot reach {host}:{port} ({e.strerror or e})", need) from None
    bridge = Bridge(db, broker, user, password, client_id="citygate-cli", ca_file=get_settings().broker_ca)
    bridge.start()
    if not bridge.connected.is_set():
        bridge.stop()
        raise _fail("--broker", f"the broker at {host}:{port} did not accept the connection "
                    "(check --user / --password, CITYGATE_BROKER_USER / _PASSWORD)", need)
    return bridge


def _rollout_through_api(api: str, token: str | None, gateways: list[str] | None, canary: list[str],
                         wait: float) -> None:
    """POST /api/v1/rollouts on the running controller, then follow it for up to `wait` seconds."""
    import time

    import httpx

    if not token:
        raise _fail("--token", "the API needs a token", "give an operator's or admin's token with --token or "
                    "CITYGATE_TOKEN (`citygate demo` prints one; `citygate token create NAME` makes one)")
    base = api.rstrip("/") + "/api/v1/rollouts"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        r = httpx.post(base, json={"gateways": gateways, "canary": canary}, headers=headers, timeout=120)
        deadline = time.monotonic() + wait
        while r.status_code in (200, 201) and r.json()["status"] not in ("done", "halted") \
                and time.monotonic() < deadline:
            time.sleep(1)
            r = httpx.get(f"{base}/{r.json()['id']}", headers=headers, timeout=30)
    except httpx.HTTPError as e:
        raise unreachable(api, e, "is the controller running (`citygate serve`, or `citygate demo`)? use the "
                          "address it printed") from None
    if r.status_code not in (200, 201):
        raise refused(r)
    _rollout_tables(r.json())


@rollout_app.command("start")
def rollout_start(
    gateway: Annotated[list[str] | None, typer.Option("--gateway", help="A gateway to roll out to (repeat; "
                                                      "default: every gateway)")] = None,
    canary: Annotated[list[str] | None, typer.Option("--canary", help="Published first; the rest once these "
                                                     "applied (repeat)")] = None,
    broker: Annotated[str | None, typer.Option(help="mqtt://host:port of the controller's broker "
                                               "(default: CITYGATE_BROKER)")] = None,
    user: Annotated[str | None, typer.Option(help="MQTT user (default: CITYGATE_BROKER_USER + '.cli', else "
                                             "citygate-controller.cli when a password is given: an account of "
                                             "its own, so it never throws `citygate serve` off the broker)")]
    = None,
    password: Annotated[str | None, typer.Option(help="MQTT password (default: CITYGATE_BROKER_PASSWORD)")] = None,
    api: Annotated[str | None, typer.Option(help="The running controller's address, e.g. http://127.0.0.1:8080: "
                                            "start the rollout through its API (needs --token); any broker",
                                            envvar="CITYGATE_API")] = None,
    token: Annotated[str | None, typer.Option(help="An API token of an operator or admin",
                                              envvar="CITYGATE_TOKEN")] = None,
    wait: Annotated[float, typer.Option(help="Through the API: seconds to follow the rollout until it is done "
                                        "or halted (0: do not wait)")] = 0,
) -> None:
    """Compile the gateways' tables and publish them, canaries first: through the running controller's API
    (--api, --token), or straight through its broker (--broker: an external one).

    The running controller (`citygate serve`) sees the acks and publishes the rest once every canary applied.
    """
    import time

    from rich.progress import Progress, SpinnerColumn, TextColumn

    if api:
        _rollout_through_api(api, token, list(gateway) if gateway else None, list(canary or []), wait)
        return

    from controller.brokers.access import CONTROLLER_USER, role_user
    from controller.services.errors import DomainError
    from controller.services.rollouts import begin
    from controller.services.rollouts import describe as view
    from controller.settings import get_settings

    settings = get_settings()
    db = _db()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=Console(stderr=True),
                  transient=True) as progress:
        task = progress.add_task(f"connecting to {broker or settings.broker}")
        serves, configured = settings.broker_credentials()
        password = password or configured
        serves = serves or (CONTROLLER_USER if password else None)
        # not serve's own account: Mosquitto names each client by its username (`broker config`), so two
        # processes sharing one would throw each other off and share serve's persistent session
        user = user or (role_user(serves, "cli") if serves else None)
        bridge = _connect_bridge(db, broker or settings.broker, user, password)
        try:
            progress.update(task, description="compiling and publishing tables")
            try:
                with db.session() as s:
                    rollout_id = begin(s, bridge, list(gateway) if gateway else None, list(canary or [])).id
            except DomainError as e:
                raise _domain_error(e) from None
            deadline = time.monotonic() + 15
            for info in bridge.published:
                progress.update(task, description=f"waiting for the broker to take {len(bridge.published)} tables")
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            missing = sum(not info.is_published() for info in bridge.published)
        finally:
            from protocols import topics

            for kind in topics.GATEWAY_PUBLISHES:  # leave no subscriptions queuing for this client id
                bridge.client.unsubscribe(topics.filter(kind))
            bridge.stop()
    with db.session() as s:
        from controller.models import Rollout

        current = view(s, s.get(Rollout, rollout_id))
    _rollout_tables(current)
    if missing:
        raise _fail("--broker", f"{missing} tables were not confirmed by the broker within 15 s",
                    f"check the broker, then `citygate rollout status {rollout_id}`")
    console.print(f"follow it with `citygate rollout status {rollout_id}`")
