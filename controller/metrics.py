"""/metrics in Prometheus' text format with prometheus-client, on a registry of each app's own (tests make
several apps in one process; the library's global registry would refuse the second one's metrics).

Three sources: the ingest figures the bridge keeps (controller.ingest.health.metrics, names unchanged),
the fleet as the database has it, read when scraped (gateways online, table versions pending, rollouts
by state, open alerts by kind), and HTTP requests counted by `HttpMetrics`, an ASGI middleware, by
method, route template (`/api/v1/gateways/{gateway_id}`, never the raw path: the labels stay few) and
status. Nothing secret: counts only.
"""

from __future__ import annotations

import logging
import time
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client import exposition as _exposition
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import case, func, select

from controller.models import Alert, Gateway, Rollout

log = logging.getLogger("citygate.metrics")
disable_created_metrics()  # no `_created` series beside every counter: Prometheus does not need them
PREFIX = "citygate_"
CONTENT_TYPE = getattr(_exposition, "CONTENT_TYPE_PLAIN_0_0_4", _exposition.CONTENT_TYPE_LATEST)
ROLLOUT_STATES = ("canary", "rest", "done", "halted")
RATE_WINDOW_S = 60.0
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
UNMATCHED = "unmatched"  # a request no route took (404s): one label, whatever the path


class FleetCollector:
    """Collected at each scrape: ingest figures, and the fleet read from the database when it answers."""

    def __init__(self, db, bridge, db_up):
        self.db, self.bridge, self.db_up = db, bridge, db_up
        self._samples: deque[tuple[float, int]] = deque(maxlen=1024)

    def describe(self):
        return []  # collected on demand only: registering must not run queries

    def collect(self):
        from controller.ingest.health import metrics as ingest_metrics

        up = self.db_up()
        rows = ingest_metrics(self.bridge, up) if self.bridge is not None else [
            ("db_up", "gauge", "1 when the API reaches the database", int(up))]
        for name, kind, help_text, value in rows:
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            yield family(PREFIX + name, help_text + ".", value=value)
        if self.bridge is not None:
            yield GaugeMetricFamily(PREFIX + "ingest_messages_per_second",
                                    "Messages received per second since a scrape up to a minute ago "
                                    "(rate() of ingest_messages_received_total is the better figure)",
                                    value=self._rate(self.bridge._received))
        if up:
            try:
                yield from self._fleet()
            except Exception as e:  # the database went between the check and the queries: shown as db_up next time
                log.warning("metrics: fleet figures unavailable: %s", e)

    def _rate(self, received: int) -> float:
        now = time.monotonic()
        while self._samples and now - self._samples[0][0] > RATE_WINDOW_S:
            self._samples.popleft()
        rate = 0.0
        if self._samples and now - self._samples[0][0] >= 1:
            t0, n0 = self._samples[0]
            rate = max(0.0, (received - n0) / (now - t0))
        self._samples.append((now, received))
        return round(rate, 3)

    def _fleet(self):
        with self.db.session() as s:
            total, online = s.execute(select(func.count(), func.coalesce(func.sum(
                case((Gateway.online.is_(True), 1), else_=0)), 0))).one()
            pending = s.scalar(select(func.count()).select_from(Gateway).where(
                Gateway.desired_version.is_not(None),
                (Gateway.applied_version.is_(None)) | (Gateway.applied_version < Gateway.desired_version)))
            rollouts = dict(s.execute(select(Rollout.status, func.count()).group_by(Rollout.status)).all())
            open_alerts = dict(s.execute(select(Alert.code, func.count()).where(Alert.resolved_at.is_(None))
                                         .group_by(Alert.code).order_by(Alert.code).limit(500)).all())
        yield GaugeMetricFamily(PREFIX + "gateways_registered", "Gateways registered", value=total)
        yield GaugeMetricFamily(PREFIX + "gateways_online", "Gateways whose last state said online", value=online)
        yield GaugeMetricFamily(PREFIX + "table_versions_pending",
                                "Gateways not yet running the table version they were sent", value=pending)
        g = GaugeMetricFamily(PREFIX + "rollouts", "Rollouts by state", labels=["state"])
        for state in sorted(set(ROLLOUT_STATES) | set(rollouts)):
            g.add_metric([state], rollouts.get(state, 0))
        yield g
        g = GaugeMetricFamily(PREFIX + "alerts_open", "Unresolved alerts by kind (code)", labels=["kind"])
        for code, n in open_alerts.items():
            g.add_metric([code], n)
        yield g


class AppMetrics:
    """One app's registry: the fleet collector and the HTTP request metrics."""

    def __init__(self, db, bridge, db_up):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(FleetCollector(db, bridge, db_up))
        self.requests = Counter(PREFIX + "http_requests", "HTTP requests answered", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram(PREFIX + "http_request_duration_seconds", "Time to answer an HTTP request",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

    def text(self) -> bytes:
        return generate_latest(self.registry)


def route_template(scope) -> str:
    """The matched route's template with the prefix of the router it was included with (FastAPI keeps the
    route's own path in the scope: `/gateways/{gateway_id}` for `/api/v1/gateways/gw-1`), or UNMATCHED."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        return UNMATCHED
    if ":path}" in (getattr(route, "path", "") or "") or template.endswith("{path}"):  # a mount: any depth
        return template
    parts, own = scope.get("path", "").rstrip("/").split("/"), template.rstrip("/").split("/")
    return "/".join(parts[:len(parts) - len(own) + 1]) + template if len(parts) > len(own) else template


class HttpMetrics:
    """ASGI middleware: counts each HTTP request by method, route template and status, and times it."""

    def __init__(self, app, metrics: AppMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]  # an app that raised before answering: counted as the 500 the server sends

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        began = time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_template(scope)
            method = scope.get("method", "GET") if scope.get("method") in METHODS else "other"
            self.metrics.requests.labels(method, route, str(status[0])).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - began)
