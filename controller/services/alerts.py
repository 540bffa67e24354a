"""Alerts as people work them: open ones first, acknowledged (someone is on it), resolved."""

from __future__ import annotations

import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.models import Alert
from controller.services.errors import FieldError, NotFound

STATES = ("open", "past", "all")
PAGE = 200


def list_alerts(s: Session, state: str = "open", gateway: str = "") -> tuple[list[Alert], int]:
    """Open alerts (unresolved) newest first, or past ones (resolved), or all; at most PAGE rows."""
    if state not in STATES:
        raise FieldError("state", f"must be one of {', '.join(STATES)}")
    if len(gateway) > 64:
        raise FieldError("gateway", "at most 64 characters")
    q = select(Alert)
    if state == "open":
        q = q.where(Alert.resolved_at.is_(None))
    elif state == "past":
        q = q.where(Alert.resolved_at.is_not(None))
    if gateway:
        q = q.where(Alert.gateway_id == gateway)
    total = s.scalar(select(func.count()).select_from(q.subquery()))
    rows = s.scalars(q.order_by(Alert.resolved_at.is_not(None), Alert.created_at.desc(), Alert.id.desc())
                     .limit(PAGE))
    return list(rows), total


def counts(s: Session) -> dict[str, int]:
    """Open alerts, and of those the ones nobody acknowledged."""
    open_ = s.scalar(select(func.count()).select_from(Alert).where(Alert.resolved_at.is_(None)))
    new = s.scalar(select(func.count()).select_from(Alert).where(Alert.resolved_at.is_(None),
                                                                   Alert.acknowledged_at.is_(None)))
    return {"open": open_, "new": new}


def _alert(s: Session, alert_id: int) -> Alert:
    alert = s.get(Alert, alert_id) if 1 <= alert_id < 2**31 else None
    if alert is None:
        raise NotFound("alert_id", f"no alert {alert_id}")
    return alert


def acknowledge(s: Session, alert_id: int, who: str) -> Alert:
    """Someone is on it (again is harmless: the first acknowledgement is kept)."""
    alert = _alert(s, alert_id)
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = int(time.time()), who[:64]
    return alert


def resolve(s: Session, alert_id: int, who: str) -> Alert:
    """Mark resolved (again is harmless); resolving acknowledges too."""
    alert = acknowledge(s, alert_id, who)
    if alert.resolved_at is None:
        alert.resolved_at = int(time.time())
    return alert


def open_alert(s: Session, gateway: str | None, code: str, detail: str, at: int | None = None) -> Alert:
    """Open an alert a condition raised (controller.alert_rules): the caller checks none is open for it."""
    from controller.limits import CODE_MAX, clip

    alert = Alert(gateway_id=gateway, code=clip(code, CODE_MAX), detail=clip(detail), created_at=at or int(time.time()))
    s.add(alert)
    s.flush()
    return alert


def clear(s: Session, alert: Alert, note: str = "", at: int | None = None) -> Alert:
    """The condition behind an alert is gone: resolved, not acknowledged (nobody worked it)."""
    from controller.limits import clip

    if alert.resolved_at is None:
        alert.resolved_at = at or int(time.time())
        if note:
            alert.detail = clip(f"{alert.detail}; {note}")
    return alert
