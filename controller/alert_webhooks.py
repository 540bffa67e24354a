"""Alerts leave the controller: every alert opened or resolved, whoever opened it (the rules, the ingest, a
person resolving one), is POSTed as JSON to `CITYGATE_ALERT_WEBHOOK_URL`.

`AlertDuty.tick`, run by the leader's duty loop, evaluates the rules (controller.alert_rules) every
`alert_every_s`, then `AlertWatch` finds what changed since its last look: alerts with a higher id than
it has seen (opened) and alerts it saw open that are resolved now. A process that becomes the leader
starts from the alerts as they are then (no replay of the past). `WebhookSender` delivers in a thread
of its own, so a slow receiver never holds up the rules: each event is tried `alert_webhook_tries` times,
waiting `alert_webhook_backoff_s` and doubling (60 s at most) between tries; a 2xx answer delivers it, a
4xx other than 408/429 gives it up at once (the receiver refuses it), and at most QUEUE_MAX events wait.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request

from sqlalchemy import func, select

from controller.models import Alert
from controller.settings import Settings

log = logging.getLogger("citygate.alerts")
QUEUE_MAX = 1000
WATCH_MAX = 10_000  # open alerts followed for their resolution; past that, resolutions go unannounced
BACKOFF_MAX_S = 60.0
RETRY_STATUS = (408, 429)


def event(kind: str, a: Alert) -> dict:
    return {"event": kind, "alert": {"id": a.id, "gateway": a.gateway_id, "code": a.code, "detail": a.detail,
                                     "created_at": a.created_at, "resolved_at": a.resolved_at}}


class AlertWatch:
    """What changed in the alerts table since the last look, as webhook events (oldest first)."""

    def __init__(self, s):
        self.last_id = s.scalar(select(func.max(Alert.id))) or 0
        self.open = set(s.scalars(select(Alert.id).where(Alert.resolved_at.is_(None)).limit(WATCH_MAX)))

    def changes(self, s) -> list[dict]:
        out = []
        gone = sorted(self.open)
        for i in range(0, len(gone), 500):
            for a in s.scalars(select(Alert).where(Alert.id.in_(gone[i:i + 500]), Alert.resolved_at.is_not(None))
                               .order_by(Alert.id)):
                self.open.discard(a.id)
                out.append(event("resolved", a))
        for a in s.scalars(select(Alert).where(Alert.id > self.last_id).order_by(Alert.id).limit(QUEUE_MAX)):
            self.last_id = a.id
            out.append(event("opened", a))
            if a.resolved_at is not None:
                out.append(event("resolved", a))
            elif len(self.open) < WATCH_MAX:
                self.open.add(a.id)
        return out


class WebhookSender:
    """POSTs events to `url` in order, in a thread of its own; `delivered`, `failed` and `dropped` count them."""

    def __init__(self, url: str, tries: int = 5, backoff_s: float = 2.0, timeout_s: float = 5.0):
        self.url, self.tries, self.backoff_s, self.timeout_s = url, tries, backoff_s, timeout_s
        self.delivered = self.failed = self.dropped = 0
        self._queue: queue.Queue = queue.Queue(QUEUE_MAX)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="citygate-alert-webhook", daemon=True)
        self._thread.start()

    def send(self, ev: dict) -> None:
        try:
            self._queue.put_nowait(ev)
        except queue.Full:
            self.dropped += 1
            log.warning("alert webhook: %d events wait already; %s of alert %s dropped", QUEUE_MAX,
                        ev["event"], ev["alert"]["id"])

    def idle(self) -> bool:
        """Nothing waits and nothing is being sent (tests, shutdown)."""
        return self._queue.unfinished_tasks == 0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ev = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._deliver(ev)
            finally:
                self._queue.task_done()

    def _deliver(self, ev: dict) -> None:
        body = json.dumps(ev).encode()
        wait = self.backoff_s
        why = ""
        for attempt in range(1, self.tries + 1):
            if attempt > 1 and self._stop.wait(wait):
                break
            wait = min(wait * 2, BACKOFF_MAX_S)
            status, why = self._post(body)
            if status is not None and 200 <= status < 300:
                self.delivered += 1
                return
            if status is not None and 400 <= status < 500 and status not in RETRY_STATUS:
                break
        self.failed += 1
        log.warning("alert webhook: %s of alert %s not delivered after %d tries: %s", ev["event"],
                    ev["alert"]["id"], attempt, why)

    def _post(self, body: bytes) -> tuple[int | None, str]:
        req = urllib.request.Request(self.url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "citygate"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read(65536)
                return resp.status, f"HTTP {resp.status}"
        except urllib.error.HTTPError as e:
            return e.code, f"HTTP {e.code}"
        except (OSError, ValueError) as e:  # refused, timed out, unreachable, a malformed answer
            return None, f"{type(e).__name__}: {e}"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


class AlertDuty:
    """The leader's alert duty: rules every `alert_every_s`, then the changes to the webhook (if one is set)."""

    def __init__(self, db, settings: Settings, bridge=None):
        self.db, self.settings, self.bridge = db, settings, bridge
        self.sender = None
        if settings.alert_webhook_url:
            self.sender = WebhookSender(settings.alert_webhook_url, settings.alert_webhook_tries,
                                        settings.alert_webhook_backoff_s, settings.alert_webhook_timeout_s)
        self.watch: AlertWatch | None = None
        self._next = 0.0

    def tick(self, leading: bool) -> None:
        if not leading:
            self.watch, self._next = None, 0.0  # leading again later starts from the alerts as they are then
            return
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.settings.alert_every_s
        from controller.alert_rules import evaluate

        with self.db.session() as s:
            if self.sender is not None and self.watch is None:
                self.watch = AlertWatch(s)
            evaluate(s, self.settings, self.bridge)
        if self.sender is not None:
            with self.db.session() as s:
                for ev in self.watch.changes(s):
                    self.sender.send(ev)

    def stop(self) -> None:
        if self.sender is not None:
            self.sender.stop()
