"""The API's routers, one module per resource, gathered into `api_router`."""

from fastapi import APIRouter

from controller.api.routes import (
    alerts,
    call_routes,
    calls,
    capacity,
    gateway_ops,
    gateways,
    impact,
    menus,
    outbound,
    overview,
    probes,
    provisioning,
    region,
    reports,
    rollouts,
)

api_router = APIRouter()
for _r in (*region.routers, call_routes.router, gateways.router, gateway_ops.router, impact.router, provisioning.router,
           rollouts.router, reports.router, calls.router, alerts.router, capacity.router,
           menus.router, outbound.router, probes.router, overview.router):
    api_router.include_router(_r)
