"""Alert rules the leader evaluates every `alert_every_s` (issue 13): each rule reads the database as it is
now and names the conditions that hold; `evaluate` opens an alert for each new one and resolves the open
alerts whose condition is gone, so alerts open and resolve themselves and never twice at once.

An alert is identified by (gateway, code, subject): for the rules with a subject (a port, a rollout, a
route / centre / menu option) the alert's detail starts with `subject: `. Thresholds come from Settings
(`CITYGATE_ALERT_*`); a threshold of 0 turns its rule off. Failing probes are not a rule here: the ingest
opens and resolves `probe_failed` as probe records arrive (controller.ingest.alerts.probe_alerts).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from controller.models import Alert, Gateway, Record, Rollout
from controller.services import alerts
from controller.services.gateway_state import live_ports, state_dict, state_int
from controller.services.reports import counted
from controller.settings import Settings

log = logging.getLogger("citygate.alerts")
REGISTERED = (1, 5)  # +CREG stat: registered, home network or roaming
CSQ_UNKNOWN = 99
HOUR = 3600
SILENT_S = 300  # five of the states a gateway sends every minute, missed
SCAN_MAX = 10_000  # rows one rule reads at most (a fleet's gateways, an hour's dropped records)


@dataclass(frozen=True)
class Condition:
    gateway: str | None
    code: str
    subject: str  # "" for a rule with one alert per gateway (or one for the controller)
    detail: str

    @property
    def key(self) -> tuple:
        return (self.gateway, self.code, self.subject)

    def text(self) -> str:
        return f"{self.subject}: {self.detail}" if self.subject else self.detail


def _when(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def gateway_offline(s: Session, cfg: Settings, now: int, bridge) -> list[Condition]:
    """Offline (its last will said so) for longer than alert_offline_min, or said online but silent (no state,
    which it sends every minute) for longer than that and SILENT_S; never-seen gateways are not judged."""
    if cfg.alert_offline_min <= 0:
        return []
    limit = now - cfg.alert_offline_min * 60
    rows = s.execute(select(Gateway.id, Gateway.online, Gateway.last_seen).where(
        Gateway.last_seen.is_not(None), Gateway.last_seen <= limit).order_by(Gateway.id).limit(SCAN_MAX))
    return [Condition(gw, "gateway_offline", "", f"{'offline' if not online else 'silent'} since {_when(seen)} "
                      f"(over {cfg.alert_offline_min:g} min)") for gw, online, seen in rows
            if not online or seen <= now - SILENT_S]


def table_not_applied(s: Session, cfg: Settings, now: int, bridge) -> list[Condition]:
    """A target of an active rollout still pending alert_rollout_min after its stage was sent."""
    if cfg.alert_rollout_min <= 0:
        return []
    limit = now - cfg.alert_rollout_min * 60
    out = []
    for r in s.scalars(select(Rollout).where(Rollout.status.in_(("canary", "rest"))).order_by(Rollout.id).limit(100)):
        canary = [t for t in r.targets if t.stage == "canary"]
        canary_done = max((t.updated_at for t in canary), default=r.created_at)
        for t in r.targets:
            if t.status != "pending" or (t.stage == "rest" and r.status == "canary"):
                continue  # the rest stage is not sent while the canaries run
            sent = max(t.updated_at, canary_done if t.stage == "rest" else r.created_at)
            if sent <= limit:
                out.append(Condition(t.gateway_id, "table_not_applied", f"rollout {r.id}",
                                     f"version {t.version} sent {_when(sent)} and not applied after "
                                     f"{cfg.alert_rollout_min:g} min"))
    return out


def procedure_failing(s: Session, cfg: Settings, now: int, bridge) -> list[Condition]:
    """A route, centre or menu option whose answer ratio over the last hour is below alert_answer_ratio_pct
    with at least alert_answer_min_calls calls. Calls closed by design (after hours, denied) do not count."""
    if cfg.alert_answer_ratio_pct <= 0:
        return []
    lo, hi = now - HOUR, now + 1
    out = []

    def judge(kind: str, name: str, r: dict) -> None:
        calls = r["offered"] - r["after_hours"] - r["denied"]
        if calls >= cfg.alert_answer_min_calls and r["answered"] * 100 < cfg.alert_answer_ratio_pct * calls:
            out.append(Condition(None, "procedure_failing", f"{kind} {name}",
                                 f"{r['answered']} of {calls} calls answered in the last hour "
                                 f"({100 * r['answered'] / calls:.0f}% < {cfg.alert_answer_ratio_pct:g}%)"))

    for group, kind in (("route", "route"), ("target", "centre")):
        totals: dict[str, dict] = {}
        for row in counted(s, group, "day", lo, hi):  # an hour's window spans at most two day buckets
            if row["key"]:
                t = totals.setdefault(row["key"], dict.fromkeys(row, 0))
                for c, v in row.items():
                    if c not in ("key", "start"):
                        t[c] += v
        for name, r in sorted(totals.items()):
            judge(kind, name, r)
    answered = func.sum(case((Record.outcome == "answered", 1), else_=0))
    closed = func.sum(case((Record.outcome.in_(("after_hours", "denied")), 1), else_=0))
    rows = s.execute(select(Record.route, Record.option, func.count(), answered, closed)
                     .where(Record.kind == "call", Record.option.is_not(None), Record.at >= lo, Record.at < hi)
                     .group_by(Record.route, Record.option).order_by(Record.route, Record.option))
    for route, option, offered, ans, closed in rows:
        judge("option", f"{route}/{option}", {"offered": int(offered), "answered": int(ans or 0),
                                              "after_hours": int(closed or 0), "denied": 0})
    return out


def _online_states(s: Session):
    return s.execute(select(Gateway.id, Gateway.state, Gateway.last_seen).where(Gateway.online.is_(True))
                     .order_by(Gateway.id).limit(SCAN_MAX))


def ports(s: Session, cfg: Settings, now: int, bridge) -> list[Condition]:
    """GSM ports of online gateways that are not registered, or whose signal (CSQ) is below alert_min_csq."""
    out = []
    for gw, state, _ in _online_states(s):
        for name, p in sorted(live_ports(state).items()):
            if p.get("kind") != "gsm":
                continue
            reg, csq = state_int(p.get("reg")), state_int(p.get("csq"))
            if reg is not None and reg not in REGISTERED:
                out.append(Condition(gw, "port_unregistered", name, f"not registered on the network (reg {reg})"))
            elif csq is not None and csq != CSQ_UNKNOWN and csq < cfg.alert_min_csq:
                out.append(Condition(gw, "signal_low", name, f"signal CSQ {csq} < {cfg.alert_min_csq}"))
    return out


def clock_skew(s: Session, cfg: Settings, now: int, bridge) -> list[Condition]:
    """An online gateway whose clock, in its last state, differed from the controller's by more than
    alert_clock_skew_s (the state's `clock` against the moment it was received; unset clocks are not judged)."""
    if cfg.alert_clock_skew_s <= 0:
        return []
    out = []
    for gw, state, seen in _online_states(s):
        clock = state_int(state_dict(state).get("clock"))
        if clock is not None and seen is not None and abs(clock - seen) > cfg.alert_clock_skew_s:
            out.append(Condition(gw, "clock_skew", "", f"clock off by {clock - seen:+d} s "
                                                       f"(more than {cfg.alert_clock_skew_s} s)"))
    return out


def records_dropped(s: Session, cfg: Settings, now: int, bridge) -> list[Condition]:
    """A gateway whose outbox dropped records (a `dropped` record timed) within alert_dropped_window_min."""
    if cfg.alert_dropped_window_min <= 0:
        return []
    lo = now - int(cfg.alert_dropped_window_min * 60)
    dropped: dict[str, int] = {}
    for gw, data in s.execute(select(Record.gateway_id, Record.data).where(Record.kind == "dropped", Record.at >= lo)
                              .order_by(Record.at.desc()).limit(SCAN_MAX)):
        n = state_int(state_dict(data).get("count"))
        dropped[gw] = dropped.get(gw, 0) + (n if n and n > 0 else 1)
    return [Condition(gw, "records_dropped", "", f"its outbox dropped {n} record{'s' if n != 1 else ''} in the "
                      f"last {cfg.alert_dropped_window_min:g} min") for gw, n in sorted(dropped.items())]


def ingest_lagging(s: Session, cfg: Settings, now: int, bridge) -> list[Condition]:
    """This process's ingest: messages waiting without a commit for longer than ingest_max_lag_s."""
    if bridge is None or getattr(bridge, "worker", None) is None:
        return []
    from controller.ingest.health import ingest_lag

    lag = ingest_lag(bridge)
    if lag <= cfg.ingest_max_lag_s:
        return []
    return [Condition(None, "ingest_lagging", "", f"{bridge.waiting} messages waited {lag:.0f} s without a "
                      f"commit (more than {cfg.ingest_max_lag_s:g} s)")]


RULES = {"gateway_offline": gateway_offline, "table_not_applied": table_not_applied,
         "procedure_failing": procedure_failing, "ports": ports, "clock_skew": clock_skew,
         "records_dropped": records_dropped, "ingest_lagging": ingest_lagging}
CODES = {"gateway_offline": "gateway_offline", "table_not_applied": "table_not_applied",
         "procedure_failing": "procedure_failing", "port_unregistered": "ports", "signal_low": "ports",
         "clock_skew": "clock_skew", "records_dropped": "records_dropped", "ingest_lagging": "ingest_lagging"}
SUBJECTS = {"table_not_applied", "procedure_failing", "port_unregistered", "signal_low"}


def subject_of(alert: Alert) -> str:
    return (alert.detail or "").split(": ", 1)[0] if alert.code in SUBJECTS else ""


@dataclass
class Changes:
    opened: list[Alert]
    cleared: list[Alert]


def evaluate(s: Session, cfg: Settings, bridge=None, now: int | None = None) -> Changes:
    """Run every rule; open alerts for new conditions, resolve those whose condition cleared. A rule that
    fails (logged) neither opens nor resolves anything this time. The caller commits."""
    now = now or int(time.time())
    found: dict[tuple, Condition] = {}
    failed = set()
    for name, rule in RULES.items():
        try:
            found.update((c.key, c) for c in rule(s, cfg, now, bridge))
        except Exception:
            log.exception("alert rule %s failed", name)
            s.rollback()  # the rules only read: nothing is lost, and PostgreSQL takes the next query again
            failed.add(name)
    changes = Changes([], [])
    open_: dict[tuple, Alert] = {}
    for a in s.scalars(select(Alert).where(Alert.code.in_(CODES), Alert.resolved_at.is_(None)).order_by(Alert.id)):
        key = (a.gateway_id, a.code, subject_of(a))
        if CODES[a.code] in failed:
            continue
        if key in open_ or key not in found:  # a twin (another leader's, for a moment) or the condition is gone
            changes.cleared.append(alerts.clear(s, a, "duplicate" if key in open_ else "cleared", now))
        else:
            open_[key] = a
    for key, c in found.items():
        if key not in open_:
            changes.opened.append(alerts.open_alert(s, c.gateway, c.code, c.text(), now))
    if changes.opened or changes.cleared:
        log.info("alert rules: %d opened, %d resolved", len(changes.opened), len(changes.cleared))
    return changes
