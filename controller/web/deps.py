"""The pages' prologue as FastAPI dependencies, as controller.api.deps is the API's: a page names what it
needs in its signature and the check happens before its body runs.

    def fleet_page(request: Request, s: PageDb, who: FleetViewer) -> Response:   # a GET page
    def save(request: Request, s: PageDb, data: PageForm, who: RouteEditor) -> Response:   # a form's POST

`PageDb` is the request's database session (committed when the page returns, before the answer is sent;
rolled back by controller.web.pageroute.PageRoute when the page fails). A GET page's user (`page_user`)
who is not signed in raises `SignInFirst`, which PageRoute answers with the redirect to /login; a form's
user (`form_user`) must also have sent the session's CSRF token (else 401 / 403). A role the page does not
admit is a 403 PageError, drawn as the error page. Sync pages run in the thread pool, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from controller.web.session import PAGE_DB, SignInFirst, Who, checked, db_session, form, need, signed_in


def _page_db(request: Request) -> Iterator[Session]:
    with db_session(request) as s:
        setattr(request.state, PAGE_DB, s)  # for PageRoute to roll back before drawing the error page
        yield s


# "function" scope: committed before the answer is sent (as the `with db_session(...)` the pages had).
PageDb = Annotated[Session, Depends(_page_db, scope="function")]
PageForm = Annotated[dict[str, str], Depends(form)]


def _browser_user(request: Request, s: PageDb) -> Who:
    who = signed_in(request, s)
    if who is None:
        raise SignInFirst()
    return who


def _form_sender(request: Request, data: PageForm, s: PageDb) -> Who:
    return checked(request, s, data)


# Any signed-in user (a page that decides what each role sees itself); else the redirect to /login.
PageUser = Annotated[Who, Depends(_browser_user)]
FormSender = Annotated[Who, Depends(_form_sender)]


def page_user(*roles: str) -> Any:
    """`Annotated[Who, ...]` for a GET page: signed in (else the redirect to /login) with one of `roles`;
    admins always (and only admins when `roles` is empty, as `need`)."""
    def check(who: PageUser) -> Who:
        need(who, *roles)
        return who

    return Annotated[Who, Depends(check)]


def form_user(*roles: str) -> Any:
    """`Annotated[Who, ...]` for a form's POST: the form parsed (4xx naming the field), its CSRF token the
    session's (else 401 / 403), the user one of `roles`; admins always (only admins when `roles` is empty)."""
    def check(who: FormSender) -> Who:
        need(who, *roles)
        return who

    return Annotated[Who, Depends(check)]
