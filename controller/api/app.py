"""The controller's HTTP API: `create_app(db, bridge)` -> FastAPI, every route under /api/v1."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from controller.api.routes import api_router
from controller.db import Database
from controller.settings import Settings, get_settings

PREFIX = "/api/v1"


def _path(loc) -> str:
    """("hours", 0, "end") -> "hours[0].end"; pydantic's ("services", "x", "[key]") -> "services.x[key]"."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out and not str(part).startswith("[") else str(part)
    return out


def _resource(request: Request) -> str:
    """The last fixed segment of the matched route: /api/v1/gateways/{id}/preview -> preview."""
    route = request.scope.get("route")
    parts = [p for p in getattr(route, "path", request.url.path).split("/") if p and not p.startswith("{")]
    return parts[-1] if parts else "body"


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    detail = []
    for err in exc.errors():
        where, *loc = err.get("loc") or ("body",)
        if where == "body":
            field = _path([_resource(request), *loc])
        else:
            field = _path(loc) or where
        detail.append({"field": field, "reason": err.get("msg", "is invalid").removeprefix("Value error, ")})
    return JSONResponse({"detail": detail}, status_code=422)


def _integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
    return JSONResponse({"detail": [{"field": _resource(request),
                                     "reason": "conflicts with existing data (a duplicate or a row in use)"}]},
                        status_code=409)


def create_app(db: Database, bridge=None, settings: Settings | None = None) -> FastAPI:
    """The API on `db`; `bridge` (controller.bridge.Bridge) publishes tables and runs commands, if given."""
    app = FastAPI(title="citygate controller", version="1", openapi_url="/openapi.json",
                  description="Region configuration, fleet, rollouts, call reports. Bearer tokens; roles "
                              "admin, operator, viewer, technician.")
    app.state.db = db
    app.state.bridge = bridge
    app.state.settings = settings or get_settings()
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.include_router(api_router, prefix=PREFIX)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict:
        """Liveness: the process answers and reaches its database."""
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return {"ok": True}

    return app
