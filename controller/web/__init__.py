"""The admin console (server-rendered pages with Jinja2 templates, plain forms, one stylesheet of our own).
Pages call controller.services, never the API's routes (`GET /api/v1/overview` is in controller.api).

`router` gathers them; controller.service includes it beside the API.
"""

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from controller.web import (
    alerts,
    callbacks,
    fleet,
    login,
    region_page,
    reports,
    routes_edit,
    routes_page,
    routes_rollout,
)

router = APIRouter()
for _r in (login.router, fleet.router, callbacks.router, alerts.router, reports.router,
           routes_page.router, routes_edit.router, routes_rollout.router, region_page.router):
    router.include_router(_r)
_CSS = files("controller.web").joinpath("static/console.css")


@router.get("/static/console.css", include_in_schema=False)
def stylesheet() -> Response:
    return Response(_CSS.read_bytes(), media_type="text/css", headers={"Cache-Control": "max-age=300"})
