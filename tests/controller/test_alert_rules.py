"""Issue 13, alert rules: each rule opened by a real condition that reached the controller the way gateways
send it (a real Mosquitto, the bridge and its ingest worker, SQLite and PostgreSQL), never twice while open,
and resolved once the condition clears. Time past a threshold is given to `evaluate` as `now`; the
leader's duty with its webhook runs for real against a loopback HTTP server."""

from __future__ import annotations

import json
import os
import re
import signal
import time

from sqlalchemy import select

from controller.alert_rules import evaluate, subject_of
from controller.alert_webhooks import AlertDuty
from controller.ingest.health import ingest_lag
from controller.models import Alert, Gateway, RolloutTarget, TableVersion
from controller.rollouts import start_rollout
from controller.settings import Settings
from protocols import messages
from tests.controller import test_ingest
from tests.controller.test_ingest import GW
from tests.controller.webhook_server import WebhookServer

database, running = test_ingest.database, test_ingest.running  # SQLite and PostgreSQL, a real broker and bridge
GSM = {"kind": "gsm", "ready": True, "reg": 1, "csq": 20, "calls": 0, "garbage": 0}


def until(pred, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def gateway(db) -> Gateway:
    with db.session() as s:
        return s.get(Gateway, GW)


def run_rules(db, cfg: Settings, now: int, bridge=None):
    with db.session() as s:
        return evaluate(s, cfg, bridge, now=now)


def open_alerts(db, code: str | None = None) -> list[Alert]:
    with db.session() as s:
        q = select(Alert).where(Alert.resolved_at.is_(None)).order_by(Alert.id)
        return list(s.scalars(q.where(Alert.code == code) if code else q))


def send_state(gw, bridge, ports: dict | None = None, clock: int | None = None, online: bool = True) -> None:
    if online:
        gw.send("state", messages.state(online=True, fw="0.1.0", store_id="s1", boot=1, last_seq=0,
                                        ports=ports or {"gsm1": GSM}, heap_free=50000, uptime_s=5, clock=clock))
    else:
        gw.send("state", messages.will())
    bridge.wait_idle()


def test_offline_gateway_opens_once_past_the_threshold_and_resolves_when_back(running):
    db, bridge, gw = running
    cfg = Settings(alert_offline_min=10)
    send_state(gw, bridge)
    until(lambda: gateway(db).online, "the gateway online")
    send_state(gw, bridge, online=False)
    seen = until(lambda: not gateway(db).online and gateway(db).last_seen, "the last will stored")
    assert not run_rules(db, cfg, seen + 9 * 60).opened, "9 minutes offline is below the threshold"
    opened = run_rules(db, cfg, seen + 11 * 60).opened
    assert [(a.gateway_id, a.code) for a in opened] == [(GW, "gateway_offline")]
    assert "offline since" in opened[0].detail
    assert not run_rules(db, cfg, seen + 20 * 60).opened, "no second alert while one is open"
    assert len(open_alerts(db, "gateway_offline")) == 1
    send_state(gw, bridge)
    until(lambda: gateway(db).online, "the gateway back online")
    cleared = run_rules(db, cfg, int(time.time())).cleared
    assert [a.id for a in cleared] == [opened[0].id] and not open_alerts(db, "gateway_offline")
    assert cleared[0].acknowledged_at is None, "resolved by its condition, not by a person"


def test_ports_and_clock_from_the_gateways_state(running):
    db, bridge, gw = running
    cfg = Settings(alert_min_csq=5, alert_clock_skew_s=120)
    now = int(time.time())
    send_state(gw, bridge, ports={"gsm1": {**GSM, "reg": 3}, "gsm2": {**GSM, "csq": 2}, "gsm3": {**GSM, "csq": 99}},
               clock=now + 600)
    until(lambda: gateway(db).state.get("ports", {}).get("gsm2"), "the state stored")
    opened = run_rules(db, cfg, now).opened
    got = sorted((a.gateway_id, a.code, subject_of(a)) for a in opened)
    assert got == [(GW, "clock_skew", ""), (GW, "port_unregistered", "gsm1"), (GW, "signal_low", "gsm2")], got
    skew = next(a.detail for a in opened if a.code == "clock_skew")
    assert re.match(r"clock off by \+(59\d|600) s", skew), skew
    assert not run_rules(db, cfg, now).opened
    send_state(gw, bridge, ports={"gsm1": GSM, "gsm2": {**GSM, "csq": 2}}, clock=now)
    until(lambda: gateway(db).state["ports"]["gsm1"]["reg"] == 1, "the new state stored")
    cleared = run_rules(db, cfg, now)
    assert sorted(a.code for a in cleared.cleared) == ["clock_skew", "port_unregistered"]
    assert [a.code for a in open_alerts(db)] == ["signal_low"], "the weak port stays alerted"


def calls(first_seq: int, n: int, outcome: str, start: int, option: str | None = None) -> list[dict]:
    out = []
    for i in range(n):
        rec = messages.call_record(first_seq + i, start + i, "gsm1", "+380671234567", "police-102", outcome,
                                   "mariupol-102", 1, 3, 20 if outcome == "answered" else 0, "ok")
        if option:
            rec["option"] = option
        out.append(rec)
    return out


def test_failing_procedure_and_dropped_records(running):
    db, bridge, gw = running
    cfg = Settings(alert_answer_ratio_pct=50, alert_answer_min_calls=20, alert_dropped_window_min=60)
    now = int(time.time())
    records = calls(1, 5, "answered", now - 1200) + calls(6, 20, "failed", now - 1100, option="2")
    records.append(messages.dropped_record(30, now - 900, 4, 26, 29))
    gw.send("events", messages.events("s1", records))
    gw.wait_ack(30)
    opened = run_rules(db, cfg, now).opened
    got = sorted((a.gateway_id or "", a.code, subject_of(a)) for a in opened)
    assert got == [("", "procedure_failing", "centre mariupol-102"), ("", "procedure_failing", "option police-102/2"),
                   ("", "procedure_failing", "route police-102"), (GW, "records_dropped", "")], got
    assert next(a.detail for a in opened if a.code == "records_dropped").startswith("its outbox dropped 4 records")
    assert "5 of 25 calls answered" in next(a.detail for a in opened if a.detail.startswith("route"))
    assert not run_rules(db, cfg, now).opened
    gw.send("events", messages.events("s1", calls(31, 30, "answered", now - 800)))
    gw.wait_ack(60)
    cleared = run_rules(db, cfg, now).cleared  # 35 of 55 answered: the route and the centre answer again
    assert sorted(subject_of(a) for a in cleared) == ["centre mariupol-102", "route police-102"]
    later = run_rules(db, cfg, now + 2 * 3600).cleared  # an hour later the failed option's calls are old
    assert sorted(a.code for a in later) == ["procedure_failing", "records_dropped"] and not open_alerts(db)


def test_a_table_not_applied_after_a_rollout_until_the_gateway_applies_it(running):
    db, bridge, gw = running
    cfg = Settings(alert_rollout_min=30, alert_offline_min=0)  # 30 min without a state would be "silent"
    send_state(gw, bridge)
    with db.session() as s:
        rollout = start_rollout(s, bridge, gateways=[GW])
        rid, created = rollout.id, rollout.created_at
    until(lambda: gw.tables, "the table published")
    assert not run_rules(db, cfg, created + 29 * 60).opened
    opened = run_rules(db, cfg, created + 31 * 60).opened
    assert [(a.gateway_id, a.code, subject_of(a)) for a in opened] == [(GW, "table_not_applied", f"rollout {rid}")]
    with db.session() as s:
        tv = s.scalars(select(TableVersion).where(TableVersion.gateway_id == GW)
                       .order_by(TableVersion.version.desc())).first()
    gw.send("table_ack", messages.table_ack(tv.version, tv.sha256, "applied"))
    bridge.wait_idle()

    def applied():
        with db.session() as s:
            return s.scalars(select(RolloutTarget.status).where(RolloutTarget.rollout_id == rid)).one() == "applied"
    until(applied, "the target applied")
    assert [a.id for a in run_rules(db, cfg, created + 32 * 60).cleared] == [opened[0].id]


def test_ingest_lagging_while_the_writer_is_stopped(running):
    db, bridge, gw = running
    cfg = Settings(ingest_max_lag_s=1.0)
    os.kill(bridge.worker.pid, signal.SIGSTOP)
    try:
        gw.send("events", messages.events("lag", calls(1, 1, "answered", int(time.time()))))
        until(lambda: ingest_lag(bridge) > 1.5, "a lag past 1 s")
        opened = run_rules(db, cfg, int(time.time()), bridge).opened
        assert [(a.gateway_id, a.code) for a in opened] == [(None, "ingest_lagging")]
    finally:
        os.kill(bridge.worker.pid, signal.SIGCONT)
    gw.wait_ack(1)
    until(lambda: ingest_lag(bridge) == 0, "the lag gone")
    assert [a.code for a in run_rules(db, cfg, int(time.time()), bridge).cleared] == ["ingest_lagging"]


def test_the_leaders_duty_delivers_opened_and_resolved_to_the_webhook(running):
    """AlertDuty as the leader runs it: rules, then every change to the webhook, which fails twice first."""
    db, bridge, gw = running
    with WebhookServer(fail_first=2) as hook:
        cfg = Settings(alert_offline_min=0.01, alert_every_s=0.05, alert_webhook_url=hook.url,
                       alert_webhook_backoff_s=0.05, alert_webhook_tries=4)
        duty = AlertDuty(db, cfg, bridge)
        try:
            send_state(gw, bridge)
            until(lambda: gateway(db).online, "online")
            send_state(gw, bridge, online=False)
            until(lambda: not gateway(db).online, "offline")

            def delivered(kind):
                duty.tick(True)
                return [e for e in hook.events() if e["event"] == kind and e["alert"]["code"] == "gateway_offline"]
            [opened] = until(lambda: delivered("opened"), "the opened event delivered")
            assert opened["alert"]["gateway"] == GW and opened["alert"]["resolved_at"] is None
            assert hook.attempts >= 3 and duty.sender.delivered >= 1, "two refused attempts, then delivered"
            send_state(gw, bridge)
            until(lambda: gateway(db).online, "online again")
            [resolved] = until(lambda: delivered("resolved"), "the resolved event delivered")
            assert resolved["alert"]["id"] == opened["alert"]["id"] and resolved["alert"]["resolved_at"]
            assert duty.sender.failed == 0
        finally:
            duty.stop()
    assert json.dumps(opened)  # plain JSON, as the receiver got it
