"""The controller's HTTP API: `create_app(db, bridge)` -> FastAPI, every route under /api/v1."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller.api.body_limit import BodyLimit
from controller.api.deps import COMMON_ERRORS, ApiError
from controller.api.routes import api_router
from controller.api.routes.common import unstorable
from controller.db import Database
from controller.metrics import CONTENT_TYPE, AppMetrics, HttpMetrics
from controller.services.errors import DomainError
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


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Every HTTP error in the one documented shape: FastAPI's own (a body that is not JSON: 400; an
    unknown path: 404; a wrong method: 405) carry a text detail, which becomes the reason."""
    detail = exc.detail
    if not (isinstance(detail, list) and all(isinstance(d, dict) and "reason" in d for d in detail)):
        detail = [{"field": "body" if exc.status_code == 400 else None, "reason": str(detail)}]
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _storable_parameters(request: Request) -> None:
    """Path and query parameters the database can hold (no NUL character: PostgreSQL text refuses it)."""
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        reason = unstorable(value)
        if reason:
            raise ApiError(422, name, reason)


def _integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
    return JSONResponse({"detail": [{"field": _resource(request),
                                     "reason": "conflicts with existing data (a duplicate or a row in use)"}]},
                        status_code=409)


def _domain_error(request: Request, exc: DomainError) -> JSONResponse:
    """A service's domain error (controller.services.errors) in the API's one error shape."""
    return JSONResponse({"detail": [{"field": exc.field, "reason": exc.reason}]}, status_code=exc.status)


def _db_up(db: Database) -> bool:
    try:
        with db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True
    except Exception:  # unreachable, whatever the driver says: /healthz and /metrics report it
        return False


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
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(BodyLimit)
    app.state.metrics = AppMetrics(db, bridge, lambda: _db_up(db))  # a registry of this app's own
    app.add_middleware(HttpMetrics, metrics=app.state.metrics)
    app.include_router(api_router, prefix=PREFIX, responses=COMMON_ERRORS,
                       dependencies=[Depends(_storable_parameters)])

    @app.get("/healthz", tags=["health"], responses={503: {"description": "not healthy; `reasons` say why"}})
    def healthz() -> JSONResponse:
        """200 when the process reaches its database and ingest runs and keeps up; 503 with the reasons if not."""
        from controller.ingest.health import health, summary

        reasons = [] if _db_up(db) else ["the API cannot reach the database"]
        body: dict = {}
        if bridge is not None:
            reasons += health(bridge, app.state.settings.ingest_max_lag_s)
            body["ingest"] = summary(bridge)
        return JSONResponse({"ok": not reasons, "reasons": reasons, **body}, status_code=503 if reasons else 200)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def metrics() -> Response:
        """Ingest, fleet and HTTP figures in Prometheus' text format (controller.metrics; counts only)."""
        return Response(app.state.metrics.text(), media_type=CONTENT_TYPE)

    return app
