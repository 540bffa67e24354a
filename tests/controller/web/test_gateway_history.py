"""A gateway's page shows its history (tables sent and what it answered, alarms and alerts opened and
resolved), newest first, in-process on SQLite and PostgreSQL; a stored time that is no date does not break it."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from controller import reference
from controller.api.app import create_app
from controller.auth import create_user
from controller.compiler import compile_all
from controller.models import Alert
from controller.rollouts import start_rollout
from controller.services import alerts
from controller.web import router
from tests.controller.databases import KINDS, scratch_database

GW = "gw-toretsk-1"


@pytest.fixture(params=KINDS)
def client(request, tmp_path):
    with scratch_database(request.param, tmp_path, "gw_history") as db:
        db.upgrade()
        with db.session() as s:
            reference.seed(s)
            compile_all(s)
            create_user(s, "vic", "viewer", "vic-history-pass")
            rollout = start_rollout(s, bridge=None, gateways=[GW], canary=[])
            for t in rollout.targets:
                t.status, t.reason, t.updated_at = "rejected", "bad signature", 1_700_000_100
            alerts.open_alert(s, GW, "gateway_offline", "no state for 12 min", at=1_700_000_200)
            a = alerts.open_alert(s, GW, "signal_low", "gsm1: csq 3", at=1_700_000_300)
            alerts.clear(s, a, at=1_700_000_400)
            s.add(Alert(gateway_id=GW, code="odd", detail="a time that is no date", created_at=2**62))
        app = create_app(db)
        app.include_router(router)
        with TestClient(app) as c:
            token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
            assert c.post("/login", data={"csrf": token, "name": "vic", "password": "vic-history-pass"},
                          follow_redirects=False).status_code == 303
            yield c


def test_a_gateways_page_shows_its_history_newest_first(client):
    r = client.get(f"/fleet/{GW}")
    assert r.status_code == 200, r.text
    section = r.text[r.text.index('id="history"'):]
    section = section[:section.index("</table>")]
    texts = [re.sub(r"\s+", " ", t).strip() for t in re.findall(r"<td>([^<]*)</td>\s*</tr>", section)]
    assert texts[:4] == ["signal_low resolved", "signal_low opened: gsm1: csq 3",
                         "gateway_offline opened: no state for 12 min"] + [texts[3]]
    assert re.match(r"v\d+ rejected \(rollout \d+, rest\): bad signature", texts[3]), texts
    assert texts[-1] == "odd opened: a time that is no date"  # a stored time that is no date: listed last
