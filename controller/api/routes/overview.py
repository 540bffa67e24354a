"""`GET /api/v1/overview`: the fleet and the day's calls per city in one answer, for dashboards.

It holds call counts per city, so it admits the roles the reports admit (admin, operator, viewer);
technicians read the fleet from /api/v1/gateways. Stored states are read defensively.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import case, func, select

from controller.api.deps import COMMON_ERRORS, Reader, SessionDep
from controller.compiler import latest_tables
from controller.models import Alert, City, Gateway, Record
from controller.services.gateway_state import live_ports, state_dict, state_int
from controller.services.times import TIME_MAX, TIME_MIN
from protocols.messages import OUTCOMES

router = APIRouter()


@router.get("/overview", dependencies=[Reader], responses=COMMON_ERRORS, tags=["overview"])
def overview(session: SessionDep,
             since: Annotated[int | None, Query(ge=TIME_MIN, le=TIME_MAX)] = None) -> dict:
    """Gateways, table versions, and call counts per city since `since` (default: the last 24 h)."""
    since = since if since is not None else int(time.time()) - 86400
    gateways = []
    rows = list(session.execute(select(Gateway, City).join(City, Gateway.city_id == City.id).order_by(City.name)))
    compiled = {gid: tv.version for gid, tv in latest_tables(session, [gw.id for gw, _ in rows]).items()}
    for gw, city in rows:
        st = state_dict(gw.state)
        gateways.append({
            "id": gw.id, "city": city.name, "online": gw.online, "last_seen": gw.last_seen,
            "compiled_version": compiled.get(gw.id), "desired_version": gw.desired_version,
            "applied_version": gw.applied_version,
            "last_reject": gw.last_reject, "heap_free": state_int(st.get("heap_free")),
            "outbox": state_int(st.get("outbox")), "calls_in_progress": state_int(st.get("calls_in_progress")),
            "uptime_s": state_int(st.get("uptime_s")),
            "signal": {p: v.get("csq") for p, v in live_ports(st).items() if v.get("kind") == "gsm"},
        })
    cols = [func.count().label("offered")] + [
        func.sum(case((Record.outcome == o, 1), else_=0)).label(o) for o in OUTCOMES]
    rows = session.execute(
        select(City.name, *cols, func.sum(Record.talk_s).label("talk_s"))
        .select_from(Record).join(Gateway, Gateway.id == Record.gateway_id).join(City, City.id == Gateway.city_id)
        .where(Record.kind == "call", Record.at >= since).group_by(City.name).order_by(City.name))
    cities = [dict(r._mapping) for r in rows]
    alerts = [{"id": a.id, "gateway": a.gateway_id, "code": a.code, "detail": a.detail, "at": a.created_at}
              for a in session.scalars(select(Alert).where(Alert.resolved_at.is_(None))
                                       .order_by(Alert.created_at.desc()).limit(10))]
    return {"now": int(time.time()), "since": since, "gateways": gateways, "cities": cities, "alerts": alerts}
