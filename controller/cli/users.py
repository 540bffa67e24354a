"""`citygate user ...` and `citygate token ...`: people sign in to the console with a password, machines
use API tokens. Registered on the main app by controller.cli."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from controller.cli.base import app
from controller.cli.common import _db, _fail
from controller.cli.output import CSV_OPTION, JSON_OPTION, Col, emit
from controller.services import users
from controller.services.errors import DomainError

console = Console()
user_app = typer.Typer(help="Users: a role, a password for the console, API tokens.", no_args_is_help=True)
app.add_typer(user_app, name="user")
token_app = typer.Typer(help="API tokens (for machines; people sign in with a password).", no_args_is_help=True)
app.add_typer(token_app, name="token")


def _when(t: int | None) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M") if t else "-"


def _read_password(from_stdin: bool) -> str | None:
    """From stdin (one line), else asked twice on a terminal; None when neither (an API-only user)."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if sys.stdin.isatty():
        return typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return None


def _domain(e: DomainError) -> typer.Exit:
    return _fail(e.field, e.reason)


@user_app.command("add")
def user_add(name: Annotated[str, typer.Argument()],
             role: Annotated[str, typer.Option(help="admin | operator | viewer | technician")] = "viewer",
             password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin "
                                                          "(one line) instead of asking")] = False) -> None:
    """Add a user: asks for a console password (on a terminal, or --password-stdin) and prints a first API
    token (shown once). Without a terminal or --password-stdin the user has tokens only."""
    password = _read_password(password_stdin)
    try:
        with _db().session() as s:
            _, token = users.add(s, name, role, password)
    except DomainError as e:
        raise _domain(e) from None
    sign_in = "signs in with a password" if password is not None else "no password: API tokens only " \
        "(`citygate user password NAME` sets one)"
    console.print(f"user [bold]{name}[/] ({role}), {sign_in}; token (shown once): {token}", soft_wrap=True)


@user_app.command("password")
def user_password(name: Annotated[str, typer.Argument()],
                  password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False) -> None:
    """Set a user's console password (asks on a terminal, or --password-stdin); their sessions end."""
    password = _read_password(password_stdin)
    if password is None:
        raise _fail("password", "give it on a terminal or with --password-stdin")
    try:
        with _db().session() as s:
            users.set_password(s, name, password)
    except DomainError as e:
        raise _domain(e) from None
    console.print(f"password of [bold]{name}[/] set; their browser sessions ended")


@user_app.command("list")
def user_list(as_csv: CSV_OPTION = False, as_json: JSON_OPTION = False) -> None:
    """Every user: role, whether they have a password, disabled, live tokens."""
    with _db().session() as s:
        rows = users.list_users(s)
    emit(console, rows, [Col("name", ident=True), Col("role"), Col("password", show=lambda v: "yes" if v else "no"),
                         Col("disabled", show=lambda v: "DISABLED" if v else "-"), Col("tokens", right=True),
                         Col("created_at", "created (UTC)", show=_when)], "users", as_csv, as_json)


@user_app.command("disable")
def user_disable(name: Annotated[str, typer.Argument()],
                 enable: Annotated[bool, typer.Option("--enable", help="Enable the user again")] = False) -> None:
    """Disable a user: no sign-in, their sessions end, every token of theirs stops working."""
    try:
        with _db().session() as s:
            users.set_disabled(s, name, not enable)
    except DomainError as e:
        raise _domain(e) from None
    console.print(f"user [bold]{name}[/] {'enabled' if enable else 'disabled: sessions ended, tokens refused'}")


@token_app.command("create")
def token_create(name: Annotated[str, typer.Argument(help="User name")],
                 label: Annotated[str, typer.Option()] = "") -> None:
    """Create another API token for a user (shown once)."""
    from sqlalchemy import select

    from controller.auth import create_token
    from controller.models import User

    with _db().session() as s:
        user = s.scalars(select(User).where(User.name == name)).first()
        if user is None:
            raise _fail("name", f"no user {name!r}", f"add one with `citygate user add {name} --role ...`")
        console.print(create_token(s, user, label))


@token_app.command("list")
def token_list(user: Annotated[str | None, typer.Option(help="Only this user's")] = None,
               as_csv: CSV_OPTION = False, as_json: JSON_OPTION = False) -> None:
    """Every token's id, owner, label and state (the token itself was shown once and is not stored)."""
    try:
        with _db().session() as s:
            rows = users.list_tokens(s, user)
    except DomainError as e:
        raise _domain(e) from None
    emit(console, rows, [Col("id", ident=True, right=True), Col("user", ident=True), Col("label"),
                         Col("created_at", "created (UTC)", show=_when),
                         Col("revoked", show=lambda v: "REVOKED" if v else "live")], "API tokens", as_csv, as_json)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="The id `citygate token list` shows")]) -> None:
    """Revoke a token: the API refuses it from now on (401)."""
    try:
        with _db().session() as s:
            t = users.revoke_token(s, token_id)
            label = t.label
    except DomainError as e:
        raise _domain(e) from None
    console.print(f"token {token_id}{f' ({label})' if label else ''} revoked")
