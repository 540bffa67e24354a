"""The console's sign-in plumbing: the session cookie, CSRF checks, form parsing, role checks, and
`PageError`, a page's 4xx (controller.web.pageroute turns it into an HTML answer with its status; the
pages ask for these checks through controller.web.deps).

Cookies are HttpOnly and SameSite=Strict, and Secure when the request came over https or the setting
`cookie_secure` says the console sits behind TLS. Every POST carries the session's CSRF token (the
sign-in form, before any session, a double-submit token from its own cookie); a missing or wrong one
is 403. Forms are parsed here (url-encoded only, bounded), so a hostile body is a 4xx naming the field.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from controller.auth import SESSION_S, csrf_matches, session_for_cookie
from controller.models import User, WebSession

COOKIE, LOGIN_CSRF, FLASH = "citygate_session", "citygate_login_csrf", "citygate_flash"
FORM_MAX_BYTES, FORM_MAX_FIELDS, FIELD_MAX = 16384, 32, 2000
FLEET = ("admin", "operator", "viewer", "technician")
READ = ("admin", "operator", "viewer")  # call-backs show callers' numbers: not technicians (as the API)


PAGE_DB = "page_db"  # request.state's name for a page's database session (controller.web.deps)


class SignInFirst(Exception):
    """A page asked for by a browser with no live session: PageRoute answers with the redirect to /login."""


class PageError(Exception):
    """A page's 4xx: rendered as the error page (or the form again) by PageRoute."""

    def __init__(self, status: int, field: str | None, reason: str):
        super().__init__(reason)
        self.status, self.field, self.reason = status, field, reason


@dataclass
class Who:
    user: User
    web: WebSession

    @property
    def csrf(self) -> str:
        return self.web.csrf

    def may(self, *roles: str) -> bool:
        return self.user.role == "admin" or self.user.role in roles


def secure(request: Request) -> bool:
    return request.url.scheme == "https" or bool(getattr(request.app.state.settings, "cookie_secure", False))


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None = SESSION_S,
               path: str = "/") -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True, samesite="strict",
                        secure=secure(request))


def db_session(request: Request):
    """One database session per page request, committed when the page returns."""
    return request.app.state.db.session()


def signed_in(request: Request, s: Session) -> Who | None:
    found = session_for_cookie(s, request.cookies.get(COOKIE))
    return Who(*found) if found else None


def to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


def need(who: Who, *roles: str) -> None:
    if not who.may(*roles):
        raise PageError(403, "role", f"{who.user.role} may not do this; needs "
                                     f"{' or '.join(sorted(set(roles) | {'admin'}))}")


async def form(request: Request) -> dict[str, str]:
    """The url-encoded form (first value of each name), or 400/403/413/422 naming what is wrong."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":  # so it cannot carry the form's CSRF token either
        raise PageError(403, "csrf", "a form (application/x-www-form-urlencoded) with its CSRF token is required")
    body = await request.body()
    if len(body) > FORM_MAX_BYTES:
        raise PageError(413, "body", f"a form is at most {FORM_MAX_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=FORM_MAX_FIELDS,
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise PageError(400, "body", f"must be UTF-8 with at most {FORM_MAX_FIELDS} fields") from None
    out: dict[str, str] = {}
    for k, v in pairs:
        if len(v) > FIELD_MAX or "\x00" in v:
            raise PageError(422, k[:64], f"at most {FIELD_MAX} characters, no NUL")
        out.setdefault(k, v)
    return out


def checked(request: Request, s: Session, data: dict[str, str]) -> Who:
    """The signed-in user who sent this form with the right CSRF token, else 401 / 403."""
    who = signed_in(request, s)
    if who is None:
        raise PageError(401, None, "sign in first (your session ended or never began)")
    if not csrf_matches(who.web, data.get("csrf")):
        raise PageError(403, "csrf", "the form's CSRF token is missing or wrong: reload the page and try again")
    return who


def login_csrf(request: Request) -> str:
    token = request.cookies.get(LOGIN_CSRF)
    return token if token and 20 <= len(token) <= 64 else secrets.token_urlsafe(24)


def int_param(value: object, field: str, low: int = 1, high: int = 2**63 - 1) -> int:
    text = value if isinstance(value, str) else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and low <= int(text) <= high):
        raise PageError(422, field, f"must be a whole number from {low} to {high}")
    return int(text)


def flash(request: Request, response: Response, text: str) -> Response:
    set_cookie(request, response, FLASH, text[:300].encode("utf-8").hex(), max_age=60)
    return response


def take_flash(request: Request) -> str | None:
    raw = request.cookies.get(FLASH, "")
    try:
        return bytes.fromhex(raw[:600]).decode("utf-8") if raw else None
    except ValueError:
        return None
