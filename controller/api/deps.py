"""Request dependencies (database session, bearer-token user, role checks) and the API's error type."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, params
from pydantic import BaseModel
from sqlalchemy.orm import Session

from controller.auth import user_for_token
from controller.models import User

BEARER = {"WWW-Authenticate": "Bearer"}
INT64_MAX = 2**63 - 1  # ids and offsets: what the database's BIGINT holds
INT32_MAX = 2**31 - 1  # counts and ids kept in INTEGER columns


class ErrorItem(BaseModel):
    field: str | None
    reason: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx of the API: which field (a path like `routes.hours[0].end`, a parameter, or null) and why."""
    detail: list[ErrorItem]


_WHY = {400: "The request body is not JSON", 401: "No bearer token, or an unknown or revoked one",
        403: "The user's role may not do this", 404: "What the path names does not exist",
        409: "Conflicts with existing data (a duplicate, or a row in use)", 413: "The body is larger than 8 MiB",
        422: "A parameter or a body field is invalid: each error names the field and says why",
        503: "The controller runs without an MQTT bridge", 504: "The gateway did not answer in time"}


def errors(*codes: int) -> dict[int | str, dict]:
    """OpenAPI `responses=` for these error statuses, each with the one error body."""
    return {code: {"model": ErrorBody, "description": _WHY[code]} for code in codes}


COMMON_ERRORS = errors(400, 401, 403, 413, 422)  # every route: parsing, auth, roles, size, validation


class ApiError(HTTPException):
    """A 4xx/5xx whose body is `{"detail": [{"field", "reason"}]}`."""

    def __init__(self, status: int, field: str | None, reason: str, headers: dict | None = None):
        super().__init__(status, [{"field": field, "reason": reason}], headers=headers)


def not_found(field: str, what: str) -> ApiError:
    return ApiError(404, field, f"no {what}")


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, committed when the endpoint returns, rolled back when it raises."""
    with request.app.state.db.session() as s:
        yield s


# "function" scope: commit before the response is sent, so a failed commit is an error response.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def current_user(request: Request, s: SessionDep) -> User:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Authorization", "a bearer token is required", BEARER)
    user = user_for_token(s, token.strip())
    if user is None:
        raise ApiError(401, "Authorization", "the token is unknown or revoked", BEARER)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require(*roles: str) -> params.Depends:
    """`Depends` admitting admins and the given roles: `dependencies=[require("operator")]` or
    `Annotated[User, require("operator")]`. Its callable's `.roles` tells which (tests read it)."""
    allowed = frozenset(roles) | {"admin"}

    def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise ApiError(403, "role", f"{user.role} may not do this; needs {' or '.join(sorted(allowed))}")
        return user

    check.roles = allowed
    return Depends(check)


def get_bridge(request: Request):
    """The MQTT bridge, or 503 when the controller runs without one."""
    bridge = request.app.state.bridge
    if bridge is None:
        raise ApiError(503, None, "no MQTT bridge: the controller runs without a broker")
    return bridge


# Who may do what (admin may do everything).
READ = ("operator", "viewer")  # region, reports, calls, rollouts
FLEET = ("operator", "viewer", "technician")  # gateways and alerts, read
OPERATE = ("operator",)  # region writes, rollouts, callbacks
PROVISION = ("technician",)  # register, bundle, keys, commands

Reader = require(*READ)
FleetReader = require(*FLEET)
Operator = require(*OPERATE)
Technician = require(*PROVISION)
