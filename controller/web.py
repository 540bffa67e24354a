"""The first admin page: the fleet at a glance, refreshed every few seconds.

`GET /` serves a self-contained page; it reads `GET /api/v1/overview` with the bearer token it
was given in its URL fragment (`/#token=...`, never sent to the server in a URL) or typed in.
"""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy import case, func, select

from controller.api.deps import SessionDep, require
from controller.models import Alert, City, Gateway, Record

router = APIRouter()
OUTCOMES = ("answered", "abandoned", "failed", "rejected", "after_hours", "callback", "denied")


@router.get("/api/v1/overview", dependencies=[require("admin", "operator", "viewer", "technician")])
def overview(session: SessionDep, since: int | None = None) -> dict:
    """Gateways, table versions, and call counts per city since `since` (default: the last 24 h)."""
    since = since if since is not None else int(time.time()) - 86400
    gateways = []
    for gw, city in session.execute(select(Gateway, City).join(City, Gateway.city_id == City.id).order_by(City.name)):
        st = gw.state or {}
        gateways.append({
            "id": gw.id, "city": city.name, "online": gw.online, "last_seen": gw.last_seen,
            "desired_version": gw.desired_version, "applied_version": gw.applied_version,
            "last_reject": gw.last_reject, "heap_free": st.get("heap_free"), "outbox": st.get("outbox"),
            "calls_in_progress": st.get("calls_in_progress"), "uptime_s": st.get("uptime_s"),
            "signal": {p: v.get("csq") for p, v in (st.get("ports") or {}).items() if v.get("kind") == "gsm"},
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


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page() -> str:
    return PAGE


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>citygate — fleet</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f4f6f8;color:#1d2733}
 header{background:#1d3557;color:#fff;padding:14px 24px;display:flex;gap:16px;align-items:baseline}
 header h1{font-size:20px;margin:0} header span{opacity:.8}
 main{padding:20px 24px;display:grid;gap:20px}
 section{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;padding:14px 18px}
 h2{font-size:16px;margin:0 0 10px} table{border-collapse:collapse;width:100%}
 th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e5e9ee;font-variant-numeric:tabular-nums}
 th{font-weight:600;color:#51606f;font-size:13px}
 .on{color:#1a7f37;font-weight:600} .off{color:#b42318;font-weight:600} .warn{color:#9a6700}
 .cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:12px}
 .card{border:1px solid #e5e9ee;border-radius:8px;padding:10px 12px}
 .card b{font-size:24px;display:block} .muted{color:#6b7785;font-size:13px}
 #login{display:none} input{font:inherit;padding:6px;width:420px}
</style></head><body>
<header><h1>citygate</h1><span>fleet overview — refreshed every 3 s</span><span id="clock"></span></header>
<main>
<section id="login"><h2>Sign in</h2><p>Paste an API token (<code>citygate token create</code>):</p>
<input id="tok" placeholder="token"> <button onclick="save()">Open</button></section>
<section><h2>Calls per city, last 24 hours</h2><div class="cards" id="cities"></div></section>
<section><h2>Gateways</h2><table><thead><tr><th>gateway</th><th>city</th><th>link</th>
<th>table (applied / desired)</th><th>signal</th><th>heap free</th><th>outbox</th><th>in call</th></tr></thead>
<tbody id="gws"></tbody></table></section>
<section><h2>Open alerts</h2><table><tbody id="alerts"></tbody></table></section>
</main>
<script>
const h = s => String(s ?? "—").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
let token = new URLSearchParams(location.hash.slice(1)).get("token") || localStorage.getItem("citygate-token");
if (token) { localStorage.setItem("citygate-token", token); history.replaceState(null, "", "/"); }
function save(){ token = document.getElementById("tok").value.trim(); localStorage.setItem("citygate-token", token); load(); }
function pct(a, b){ return b ? Math.round(100 * a / b) + "%" : "—"; }
async function load(){
  if (!token) { document.getElementById("login").style.display = "block"; return; }
  const r = await fetch("/api/v1/overview", {headers: {Authorization: "Bearer " + token}});
  if (r.status === 401) { document.getElementById("login").style.display = "block"; return; }
  document.getElementById("login").style.display = "none";
  const d = await r.json();
  document.getElementById("clock").textContent = new Date(d.now * 1000).toLocaleString();
  document.getElementById("cities").innerHTML = d.cities.map(c => `<div class="card"><div class="muted">${h(c.name)}</div>
    <b>${c.offered}</b> calls · answered ${pct(c.answered, c.offered)}
    <div class="muted">abandoned ${c.abandoned} · call-backs ${c.callback} · after hours ${c.after_hours}
    · denied ${c.denied} · talk ${Math.round((c.talk_s || 0) / 60)} min</div></div>`).join("")
    || '<span class="muted">no calls yet</span>';
  document.getElementById("gws").innerHTML = d.gateways.map(g => `<tr><td>${h(g.id)}</td><td>${h(g.city)}</td>
    <td class="${g.online ? "on" : "off"}">${g.online ? "online" : "offline"}</td>
    <td class="${g.applied_version !== g.desired_version ? "warn" : ""}">v${h(g.applied_version)} / v${h(g.desired_version)}
    ${g.last_reject ? '<div class="off">' + h(g.last_reject) + "</div>" : ""}</td>
    <td>${h(Object.entries(g.signal || {}).map(([p, v]) => p + " " + v).join(", "))}</td>
    <td>${g.heap_free ? Math.round(g.heap_free / 1024) + " KB" : "—"}</td><td>${h(g.outbox)}</td>
    <td>${h(g.calls_in_progress)}</td></tr>`).join("");
  document.getElementById("alerts").innerHTML = d.alerts.map(a => `<tr><td>${new Date(a.at * 1000).toLocaleTimeString()}</td>
    <td>${h(a.gateway)}</td><td>${h(a.code)}</td><td>${h(a.detail)}</td></tr>`).join("")
    || '<tr><td class="muted">none</td></tr>';
}
load(); setInterval(load, 3000);
</script></body></html>
"""
