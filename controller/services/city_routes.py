"""A city's routes as the console's Routes page shows them, and what each of the city's gateways would
change if it got its latest compiled table (controller.impact, the same code as GET /gateways/{id}/impact)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from controller import impact
from controller.compiler import latest_tables
from controller.models import City, Gateway, Route
from controller.services.errors import NotFound


def city_routes(s: Session, city: str) -> dict:
    """{city, zone, routes: [...], gateways: [{id, online, applied, desired, latest, changes: [text]}]}."""
    c = s.scalars(select(City).where(City.name == city)).first() if len(city) <= 128 else None
    if c is None:
        raise NotFound("city", f"no city {city!r}")
    routes = s.scalars(select(Route).options(selectinload(Route.service)).where(Route.city_id == c.id)
                       .order_by(Route.name, Route.valid_from)).all()
    gateways = s.scalars(select(Gateway).where(Gateway.city_id == c.id).order_by(Gateway.id)).all()
    ids = [gw.id for gw in gateways]
    latest = latest_tables(s, ids)
    pending = impact.pending(s, ids)
    return {"city": c.name, "zone": c.zone,
            "routes": [{"name": r.name, "service": r.service.number, "service_name": r.service.name,
                        "targets": list(r.targets or []), "strategy": r.strategy, "hours": r.hours,
                        "caller": list(r.caller or []), "fallback": r.fallback, "after_hours": r.after_hours,
                        "valid_from": r.valid_from, "valid_until": r.valid_until} for r in routes],
            "gateways": [{"id": gw.id, "online": gw.online, "applied": gw.applied_version,
                          "desired": gw.desired_version,
                          "latest": latest[gw.id].version if gw.id in latest else None,
                          "changes": [ch.text() for ch in pending.get(gw.id, [])]} for gw in gateways]}
