"""The API's routers, one module per resource, gathered into `api_router`."""

from fastapi import APIRouter

from controller.api.routes import alerts, call_routes, calls, gateway_ops, gateways, region, reports, rollouts

api_router = APIRouter()
for _r in (*region.routers, call_routes.router, gateways.router, gateway_ops.router, rollouts.router,
           reports.router, calls.router, alerts.router):
    api_router.include_router(_r)
