"""What the command modules share: the settings' database, errors printed with the field and a hint
(exit 2), and how times, optional values and a change's impact are shown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from controller.cli.base import console


def _db(create: bool = False):
    """The settings' database, its schema brought up to date. A SQLite file that does not exist is not
    made here (an empty ./citygate.db would hide a missing CITYGATE_DATABASE_URL): only with `create`."""

    from sqlalchemy.engine import make_url

    from controller.db import Database
    from controller.settings import get_settings

    settings = get_settings()
    url = make_url(settings.database_url)
    if not create and url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        if not path.exists():
            raise _fail("CITYGATE_DATABASE_URL", f"no database at {path.resolve()} ({settings.database_url})",
                        "point CITYGATE_DATABASE_URL at the controller's database (`citygate demo` prints the "
                        "line to paste), or make a new one with `citygate db upgrade`")
    db = Database(settings.database_url)
    db.upgrade()
    return db


def _fail(field: str | None, reason: str, hint: str = "") -> typer.Exit:
    """Print what is wrong (and how to fix it) on stderr; the caller raises the returned Exit(2)."""
    text = f"[red]error[/]: [bold]{field or 'request'}[/]: {reason}" + (f"\n{hint}" if hint else "")
    Console(stderr=True).print(text, highlight=False)
    return typer.Exit(2)


def _domain_error(e) -> typer.Exit:
    """A services.errors.DomainError (what the API would answer) as `field: reason` on stderr. The API's
    own HTTP answers, for the few commands that call it, are read in controller.cli.remote."""
    return _fail(e.field, e.reason)


def _when(ts: int | None) -> str:
    """UTC seconds as a time; a stored value that is no date (any integer may be stored) as itself."""
    if ts is None:
        return "never"
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    except (OverflowError, OSError, ValueError, TypeError):
        return str(ts)


def _actor() -> str:
    """Who runs this command, for the secret audit: `cli:<login>`."""
    import getpass
    import os

    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return f"cli:uid {os.getuid()}"


def _opt(v) -> str:
    return "-" if v is None else str(v)


def _print_impact(changes: dict, title: str) -> None:
    """Decision changes per gateway, one line each: 'Toretsk 102 (gsm1) every day 22:00-24:00: dial a → b'."""
    if not any(changes.values()):
        console.print(f"{title}: no routing decision changes")
        return
    for gid, cs in changes.items():
        if cs:
            console.print(f"[bold]{title} — {gid}[/] ({len(cs)} change{'s' if len(cs) != 1 else ''})")
            for c in cs:
                console.print(f"  {c.text()}", highlight=False, markup=False)
