"""Alerts the ingest raises about itself: refused messages and database outages.

A gateway sending garbage must not write a row per message: the bridge passes at most one
`bad_message` per gateway a minute (`Refusals`, counting what it held back), and the writer folds
each into the gateway's open alert of that code (`write_alerts`: one open alert, its detail saying
how many messages were refused so far). A database outage cannot be written while it lasts:
`Outage` keeps it in memory (the bridge shows it in /healthz and /metrics), tries to write an
open `database_unreachable` alert once it has lasted `after_s`, and resolves it (or writes it
already resolved) as soon as the database answers again.
"""

from __future__ import annotations

import logging
import re
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.limits import CODE_MAX, DETAIL_MAX, clip
from controller.models import Alert

log = logging.getLogger("citygate.ingest")
COALESCED = ("bad_message", "ingest_failed")
_COUNT = re.compile(r" \[(\d+) messages? refused\]$")


class Refusals:
    """Per gateway: the first refused message in `every_s` passes at once, the rest are counted and
    passed as one when the window ends (`due`). Alerts are (gateway, code, detail, count)."""

    def __init__(self, every_s: float = 60, code: str = "bad_message"):
        self.every_s, self.code = every_s, code
        self._last: dict[str, float] = {}  # gateway -> when its last alert passed
        self._held: dict[str, list] = {}  # gateway -> [count, last detail]
        self._swept = 0.0

    def note(self, gw: str, detail: str, at: float) -> tuple | None:
        last = self._last.get(gw)
        if last is None or at - last >= self.every_s:
            self._last[gw] = at
            held = self._held.pop(gw, None)
            return (gw, self.code, clip(detail), 1 + (held[0] if held else 0))
        held = self._held.setdefault(gw, [0, ""])
        held[0] += 1
        held[1] = detail
        return None

    def due(self, at: float) -> list[tuple]:
        """The held counts whose window has ended (looked at once a second at most)."""
        if at - self._swept < 1:
            return []
        self._swept = at
        out = []
        for gw, (count, detail) in list(self._held.items()):
            if at - self._last[gw] >= self.every_s:
                del self._held[gw]
                self._last[gw] = at
                out.append((gw, self.code, clip(detail), count))
        for gw in [g for g, t in self._last.items() if at - t >= self.every_s and g not in self._held]:
            del self._last[gw]  # forgotten after a quiet window: the map holds recent offenders only
        return out


def write_alerts(s: Session, alerts: list[tuple[str | None, str, str, int]]) -> None:
    """Add (gateway, code, detail, count) alerts; refusals fold into the gateway's open alert of their code."""
    folded: dict[tuple, list] = {}
    for gw, code, detail, count in alerts:
        code = clip(code, CODE_MAX)
        if code not in COALESCED:
            s.add(Alert(gateway_id=gw, code=code, detail=clip(detail)))
            continue
        entry = folded.setdefault((gw, code), [0, ""])
        entry[0] += count
        entry[1] = detail
    for (gw, code), (count, detail) in folded.items():
        alert = s.scalars(select(Alert).where(Alert.gateway_id == gw, Alert.code == code,
                                              Alert.resolved_at.is_(None))
                          .order_by(Alert.id.desc()).limit(1)).first()
        if alert is not None:
            before = _COUNT.search(alert.detail or "")
            count += int(before.group(1)) if before else 1
        suffix = f" [{count} message{'s' if count != 1 else ''} refused]"
        text = clip(detail, DETAIL_MAX - len(suffix)) + suffix
        if alert is None:
            s.add(Alert(gateway_id=gw, code=code, detail=text))
        else:
            alert.detail = text


class Outage:
    """The writer's view of the database: since when it has been unreachable, and the alert about it."""

    CODE = "database_unreachable"

    def __init__(self, db, after_s: float, report=lambda since, error: None):
        self.db, self.after_s, self.report = db, after_s, report
        self.since: float | None = None  # wall time the first failing attempt began
        self.error = ""
        self._alert_id: int | None = None  # the open alert, once it could be written
        self._unwritten: list[dict] = []  # outages over that could not be recorded yet

    def failed(self, began: float, error: BaseException) -> None:
        first = self.since is None
        if first:
            self.since = began
        self.error = clip(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}", 200)
        self.report(self.since, self.error)
        if self._alert_id is None and time.time() - self.since >= self.after_s:
            alert = {"gateway_id": None, "code": self.CODE, "created_at": int(self.since),
                     "detail": self._detail("since")}
            self._alert_id = self._try(lambda s: _add(s, Alert(**alert)))

    def recovered(self) -> None:
        if self.since is None and not self._unwritten:
            return
        if self.since is not None:
            back = time.time()
            if self._alert_id is not None or back - self.since >= self.after_s:
                self._unwritten.append({"id": self._alert_id, "since": int(self.since), "back": int(back),
                                        "detail": self._detail("for %.0f s from" % (back - self.since))})
            log.warning("database reachable again after %.1f s", back - self.since)
            self.since, self._alert_id, self.error = None, None, ""
            self.report(None, "")
        while self._unwritten and self._try(lambda s: _resolve(s, self._unwritten[0])) is not None:
            self._unwritten.pop(0)

    def _detail(self, when: str) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        return clip(f"the ingest writer could not reach the database {when} {since} "
                    f"(batches were kept and written afterwards): {self.error}")

    def _try(self, change):
        """Run `change(session)` in its own transaction; None when the database refuses it still."""
        try:
            with self.db.session() as s:
                return change(s)
        except Exception as e:  # down still: the caller keeps it in memory and tries again later
            log.debug("could not write the database_unreachable alert yet: %s", e)
            return None


def _add(s: Session, alert: Alert) -> int:
    s.add(alert)
    s.flush()
    return alert.id


def _resolve(s: Session, outage: dict) -> int:
    alert = s.get(Alert, outage["id"]) if outage["id"] is not None else None
    if alert is None:
        alert = Alert(gateway_id=None, code=Outage.CODE, created_at=outage["since"])
        s.add(alert)
    alert.detail = outage["detail"]
    alert.resolved_at = outage["back"]
    s.flush()
    return alert.id


# ---------------------------------------------------------------- probes (DESIGN §5a)

PROBE_CODE = "probe_failed"
PROBE_FAILED = ("no_answer", "unreachable", "failed")  # ringing and busy reached the centre; denied says nothing
PROBE_ALERT_AFTER = 3  # failed probes in a row, when the centre has no schedule saying otherwise


def probe_alerts(s: Session, probes: list[tuple[str, str, str]]) -> None:
    """After new probe records (gateway, centre, outcome) are stored: open a `probe_failed` alert for a
    gateway and centre whose last N probes all failed (N: the schedule's `alert_after`), resolve it once a
    probe reaches the centre again. Counted from the stored records, so a late or repeated batch counts
    each probe once and in the order the probes were made."""
    from controller.models import PROBES, Centre, ProbeSchedule, Record

    pairs = sorted({(gw, target) for gw, target, _ in probes})
    after = dict(s.execute(select(Centre.code, ProbeSchedule.alert_after).join(
        ProbeSchedule, ProbeSchedule.centre_id == Centre.id).where(Centre.code.in_({t for _, t in pairs}))).all())
    for gw, target in pairs:
        n = max(1, after.get(target, PROBE_ALERT_AFTER))
        last = s.execute(select(Record.outcome, Record.at).where(
            PROBES, Record.gateway_id == gw, Record.target == target, Record.outcome != "denied")
            .order_by(Record.at.desc(), Record.seq.desc()).limit(n)).all()
        if not last:
            continue
        open_alert = next((a for a in s.scalars(select(Alert).where(
            Alert.gateway_id == gw, Alert.code == PROBE_CODE, Alert.resolved_at.is_(None)))
            if a.detail.startswith(f"{target}:")), None)
        if last[0][0] not in PROBE_FAILED:
            if open_alert is not None:
                open_alert.resolved_at = last[0][1] or int(time.time())
                open_alert.detail = clip(open_alert.detail + f"; reached again ({last[0][0]})")
        elif open_alert is None and len(last) == n and all(o in PROBE_FAILED for o, _ in last):
            s.add(Alert(gateway_id=gw, code=PROBE_CODE, created_at=last[0][1] or int(time.time()),
                        detail=clip(f"{target}: the last {n} probes from {gw} failed (last: {last[0][0]})")))
