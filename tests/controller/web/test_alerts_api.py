"""POST /api/v1/alerts/{id}/acknowledge: the console's acknowledgement through the API (the same service):
who and when are kept, the first one wins, viewers may not, an unknown id is a 404 naming alert_id."""

from __future__ import annotations

from fastapi.testclient import TestClient

from controller.api.app import create_app
from controller.auth import create_token, create_user
from controller.db import Database
from controller.models import Alert


def test_acknowledge_through_the_api(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    db.upgrade()
    with db.session() as s:
        tokens = {role: create_token(s, create_user(s, f"u-{role}", role)) for role in ("operator", "viewer")}
        alert = Alert(gateway_id=None, code="ingest_lag", detail="")
        s.add(alert)
        s.flush()
        aid = alert.id
    client = TestClient(create_app(db))

    def post(role, path):
        return client.post(f"/api/v1/alerts/{path}", headers={"Authorization": f"Bearer {tokens[role]}"})

    r = post("viewer", f"{aid}/acknowledge")
    assert r.status_code == 403 and r.json()["detail"][0]["field"] == "role"
    r = post("operator", f"{aid}/acknowledge")
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "u-operator" and r.json()["resolved_at"] is None
    first = r.json()["acknowledged_at"]
    assert post("operator", f"{aid}/acknowledge").json()["acknowledged_at"] == first
    r = post("operator", "99999/acknowledge")
    assert r.status_code == 404 and r.json()["detail"][0]["field"] == "alert_id"
