"""Sign in and out. `/login` checks a name and password (argon2) and sets the session cookie; the form
carries a double-submit CSRF token (its cookie beside it) since no session exists yet. Ten wrong
passwords for one name within five minutes make that name wait (429), in this process."""

from __future__ import annotations

import threading
import time

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from controller.auth import close_session, open_session, user_for_password
from controller.web.pageroute import PageRoute
from controller.web.render import page
from controller.web.session import (
    COOKIE,
    LOGIN_CSRF,
    checked,
    db_session,
    form,
    login_csrf,
    set_cookie,
    signed_in,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
HOME = "/fleet"
FAIL_LIMIT, FAIL_WINDOW_S, FAIL_NAMES = 10, 300, 10_000  # wrong passwords per name and window (per process)
_failures: dict[str, list[float]] = {}
_failures_lock = threading.Lock()


def _too_many(name: str, failed: bool = False) -> bool:
    """Whether `name` had FAIL_LIMIT wrong passwords within FAIL_WINDOW_S (and count one more if `failed`)."""
    now = time.monotonic()
    with _failures_lock:
        recent = [t for t in _failures.get(name, []) if now - t < FAIL_WINDOW_S]
        if failed:
            if len(_failures) >= FAIL_NAMES and name not in _failures:
                _failures.pop(next(iter(_failures)))  # the oldest name: the table stays bounded
            recent.append(now)
        if recent:
            _failures[name] = recent[-FAIL_LIMIT:]
        else:
            _failures.pop(name, None)
        return len(recent) >= FAIL_LIMIT and not failed


def _next(value: object) -> str:
    """Where to go after signing in: a path of this site only (never //host or a scheme)."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") and "\\" not in value \
            and len(value) <= 200 and value.isprintable() and value != "/login":
        return value
    return HOME


def _login_page(request: Request, status: int = 200, error: str | None = None, name: str = "",
                next_: str = HOME) -> Response:
    token = login_csrf(request)
    response = page(request, "login.html", http_status=status, who=None, csrf=token, error=error, name=name,
                    next=next_)
    set_cookie(request, response, LOGIN_CSRF, token, max_age=3600, path="/login")
    return response


@router.get("/")
def home(request: Request) -> Response:
    """Signed in: the fleet; otherwise the sign-in page."""
    with db_session(request) as s:
        if signed_in(request, s) is not None:
            return RedirectResponse(HOME, status_code=303)
    return _login_page(request)


@router.get("/login")
def login_form(request: Request, next: str = "") -> Response:  # noqa: A002 (the query parameter's name)
    with db_session(request) as s:
        if signed_in(request, s) is not None:
            return RedirectResponse(_next(next), status_code=303)
    return _login_page(request, next_=_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    data = await form(request)
    return await run_in_threadpool(_login, request, data)  # argon2 takes a while: not on the event loop


def _login(request: Request, data: dict[str, str]) -> Response:
    sent, cookie = data.get("csrf", ""), request.cookies.get(LOGIN_CSRF, "")
    if not cookie or sent != cookie:
        return _login_page(request, 403, "The form expired (CSRF token missing or wrong): sign in again.")
    name, password, next_ = data.get("name", "").strip(), data.get("password", ""), _next(data.get("next"))
    if not name:
        return _login_page(request, 422, "name: give your user name", name, next_)
    if not password:
        return _login_page(request, 422, "password: give your password", name, next_)
    if _too_many(name):
        return _login_page(request, 429, f"Too many wrong passwords for {name}: wait {FAIL_WINDOW_S // 60} minutes.",
                           name, next_)
    with db_session(request) as s:
        user = user_for_password(s, name, password)
        if user is None:
            _too_many(name, failed=True)
            return _login_page(request, 401, "Wrong name or password (or the user is disabled).", name, next_)
        cookie_value, _ = open_session(s, user)
    response = RedirectResponse(next_, status_code=303)
    set_cookie(request, response, COOKIE, cookie_value)
    response.delete_cookie(LOGIN_CSRF, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    data = await form(request)
    return await run_in_threadpool(_logout, request, data)


def _logout(request: Request, data: dict[str, str]) -> Response:
    with db_session(request) as s:
        checked(request, s, data)
        close_session(s, request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
