"""Alerts raised from gateway reports (rejected tables, alarms, bad messages): list, acknowledge, resolve."""

import time
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from controller.api.deps import CurrentUser, FleetReader, SessionDep, errors, not_found, require
from controller.api.routes.common import Offset, OrmModel, Page, RowId
from controller.models import Alert
from controller.services import alerts

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=errors(404))


class AlertOut(OrmModel):
    id: int
    gateway_id: str | None
    code: str
    detail: str
    created_at: int
    resolved_at: int | None
    acknowledged_at: int | None = None
    acknowledged_by: str | None = None


@router.get("", response_model=Page[AlertOut], dependencies=[FleetReader])
def list_alerts(s: SessionDep, gateway: Annotated[str | None, Query(max_length=64)] = None,
                resolved: bool | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Offset = 0):
    """Unresolved alerts first, then newest first."""
    q = select(Alert)
    if gateway is not None:
        q = q.where(Alert.gateway_id == gateway)
    if resolved is not None:
        q = q.where(Alert.resolved_at.is_not(None) if resolved else Alert.resolved_at.is_(None))
    rows = s.scalars(q.order_by(Alert.resolved_at.is_not(None), Alert.created_at.desc(), Alert.id.desc())
                     .limit(limit).offset(offset)).all()
    return {"data": rows, "count": s.scalar(select(func.count()).select_from(q.subquery()))}


@router.post("/{alert_id}/acknowledge", response_model=AlertOut,
             dependencies=[require("operator", "technician")])
def acknowledge_alert(alert_id: RowId, s: SessionDep, user: CurrentUser):
    """Someone is on it: who and when are kept (again is harmless: the first is kept)."""
    return alerts.acknowledge(s, alert_id, user.name)


@router.post("/{alert_id}/resolve", response_model=AlertOut,
             dependencies=[require("operator", "technician")])
def resolve_alert(alert_id: RowId, s: SessionDep):
    """Mark an alert resolved (again is harmless)."""
    alert = s.get(Alert, alert_id)
    if alert is None:
        raise not_found("alert_id", f"alert {alert_id}")
    if alert.resolved_at is None:
        alert.resolved_at = int(time.time())
    return alert
