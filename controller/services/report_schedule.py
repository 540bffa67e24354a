"""Scheduled reports (daily, weekly, monthly): the last whole local period's calls per city and day, written
to a folder as CSV and a small HTML page and POSTed to a webhook as JSON; and the privacy purge. Both run
on the leader (`ReportDuties.tick`, from `citygate serve`'s duty loop); `citygate report schedule run` and
`citygate privacy purge` do the same at once.

The folder is the record of what was done: a report whose CSV exists is not made again (a restart or a new
leader does not repeat it), one whose `.sent` marker exists is not sent again. Nothing is on by default.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from markupsafe import escape
from sqlalchemy.orm import Session

from controller.services import report_privacy
from controller.services.errors import FieldError
from controller.services.report_local import DEFAULT_WITHIN_S, by_period, local_start, region_zone

log = logging.getLogger("citygate.reports")
PERIODS = ("daily", "weekly", "monthly")
HEADER = ("Period", "City", "Offered", "Answered", "Abandoned", "Unanswered", "Answer ratio", "Service level",
          "Talk (s)", "Average talk (s)")
WEBHOOK_TRIES = 5
WEBHOOK_BACKOFF_S = 60.0  # doubles after each failed attempt
WEBHOOK_TIMEOUT_S = 5.0
PURGE_EVERY_S = 3600.0
PURGE_MARGIN_S = 7 * 86400  # records stored late (an outbox catching up) are still purged within a week of it


def parse_schedule(text: str | None) -> tuple[str, ...]:
    """'daily, monthly' -> ('daily', 'monthly'); empty -> () (no scheduled reports)."""
    names = tuple(dict.fromkeys(p.strip().lower() for p in (text or "").split(",") if p.strip()))
    bad = [p for p in names if p not in PERIODS]
    if bad:
        raise FieldError("report_schedule", f"{bad[0][:16]!r} is not one of {', '.join(PERIODS)}")
    return names


def last_period(period: str, today: date) -> tuple[str, date, date]:
    """(name, first day, the day after the last) of the last whole period before `today` (local dates)."""
    if period == "daily":
        first = today - timedelta(days=1)
        return f"daily-{first.isoformat()}", first, today
    if period == "weekly":
        monday = today - timedelta(days=today.weekday())
        first = monday - timedelta(days=7)
        return f"weekly-{first.isoformat()}", first, monday
    if period == "monthly":
        end = today.replace(day=1)
        first = (end - timedelta(days=1)).replace(day=1)
        return f"monthly-{first.strftime('%Y-%m')}", first, end
    raise FieldError("period", f"one of {', '.join(PERIODS)}")


def _pct(v) -> str:
    return "" if v is None else f"{100 * v:.1f}%"


def _cells(data: dict) -> list[list[str]]:
    rows = [[r["period"], r["key"], *(str(r[c]) for c in ("offered", "answered", "abandoned", "unanswered")),
             _pct(r["answer_ratio"]), _pct(r["service_level"]), str(r["talk_s"]),
             "" if r["avg_talk_s"] is None else str(r["avg_talk_s"])] for r in data["rows"]]
    t = data["totals"]
    rows.append(["Total", "", *(str(t[c]) for c in ("offered", "answered", "abandoned", "unanswered")),
                 _pct(t["answer_ratio"]), _pct(t["service_level"]), str(t["talk_s"]),
                 "" if t["avg_talk_s"] is None else str(t["avg_talk_s"])])
    return rows


def _csv(cells: list[list[str]], within_s: int) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([h if h != "Service level" else f"Service level ({within_s} s)" for h in HEADER])
    for row in cells:  # a cell a spreadsheet would run as a formula is quoted with '
        w.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") else c for c in row])
    return buf.getvalue()


def _html(title: str, zone: str, cells: list[list[str]], within_s: int) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADER)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in cells)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
            f"<body><h1>{escape(title)}</h1><p>Local time, {escape(zone)}; service level: answered within "
            f"{within_s} s of ringing.</p><table border=\"1\" cellpadding=\"4\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></body></html>\n")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def produce(s: Session, period: str, folder: Path, now: float | None = None,
            within_s: int = DEFAULT_WITHIN_S) -> dict:
    """Write the last whole period's report (per city and local day) as `<name>.csv` and `<name>.html` in
    `folder`; returns {period, name, from, to, zone, totals, csv, html} (paths as text)."""
    tz = region_zone(s)
    today = datetime.fromtimestamp(time.time() if now is None else now, tz).date()
    name, first, end = last_period(period, today)
    lo, hi = local_start(first, tz), local_start(end, tz)
    data = by_period(s, "city", "day", lo, hi, tz, within_s, none_key="(no city)")
    cells = _cells(data)
    folder.mkdir(parents=True, exist_ok=True)
    title = f"Calls {period}, {first.isoformat()} to {(end - timedelta(days=1)).isoformat()}"
    _write(folder / f"{name}.html", _html(title, str(tz), cells, within_s))
    _write(folder / f"{name}.csv", _csv(cells, within_s))  # last: its presence says the report is made
    return {"period": period, "name": name, "from": first.isoformat(), "to": (end - timedelta(days=1)).isoformat(),
            "zone": str(tz), "within_s": within_s, "totals": data["totals"], "csv": str(folder / f"{name}.csv"),
            "html": str(folder / f"{name}.html")}


def deliver(url: str, report: dict, timeout: float = WEBHOOK_TIMEOUT_S) -> int:
    """POST the report (its figures and its CSV's text) as JSON; the HTTP status, or an OSError."""
    if urlparse(url).scheme not in ("http", "https"):
        raise FieldError("report_webhook_url", "an http:// or https:// URL")
    body = {"event": "report", **{k: report[k] for k in ("period", "name", "from", "to", "zone", "within_s",
                                                          "totals")},
            "csv": Path(report["csv"]).read_text(encoding="utf-8")}
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (scheme checked above)
        return resp.status


class ReportDuties:
    """The leader's report duties, called every few seconds: make each scheduled report once its period is
    over, send it (retried with a doubling wait, WEBHOOK_TRIES at most), purge old numbers hourly."""

    def __init__(self, settings):
        self.periods = parse_schedule(settings.report_schedule)
        self.folder = Path(settings.report_dir or Path(settings.data_dir) / "reports")
        self.url = settings.report_webhook_url
        self.within_s = settings.report_service_level_s
        self.retention_days = settings.caller_retention_days
        self._tries: dict[str, tuple[int, float]] = {}  # report name -> (failed attempts, next attempt at)
        self._purged_at = 0.0
        self._purged_before: int | None = None  # the last purge's cutoff: the next one starts near it

    def tick(self, db, now: float | None = None) -> list[dict]:
        """Do what is due; returns the reports made or sent now. Never raises (logged instead)."""
        now = time.time() if now is None else now
        done = []
        for period in self.periods:
            try:
                done += self._report(db, period, now)
            except Exception:
                log.exception("scheduled %s report failed", period)
        if self.retention_days and now - self._purged_at >= PURGE_EVERY_S:
            self._purged_at = now
            try:
                before = report_privacy.cutoff(self.retention_days, int(now))
                since = None if self._purged_before is None else self._purged_before - PURGE_MARGIN_S
                with db.session() as s:
                    changed = report_privacy.purge(s, before, since)
                self._purged_before = before
                if changed["records"] or changed["outbound_requests"]:
                    log.info("privacy purge: numbers cleared from %s", changed)
            except Exception:
                log.exception("privacy purge failed")
        return done

    def _report(self, db, period: str, now: float) -> list[dict]:
        with db.session() as s:
            today = datetime.fromtimestamp(now, region_zone(s)).date()
            name = last_period(period, today)[0]
            report = None
            if not (self.folder / f"{name}.csv").exists():
                report = produce(s, period, self.folder, now, self.within_s)
        sent = self.folder / f"{name}.sent"
        tries, next_at = self._tries.get(name, (0, 0.0))
        if not self.url or sent.exists() or tries >= WEBHOOK_TRIES or now < next_at:
            return [report] if report else []
        if report is None:
            with db.session() as s:  # made before (by another leader, or before a restart), not sent yet
                report = produce(s, period, self.folder, now, self.within_s)
        try:
            status = deliver(self.url, report)
            _write(sent, f"{status} {int(now)}\n")
            self._tries.pop(name, None)
            report["sent"] = status
        except Exception as e:
            tries += 1
            self._tries[name] = (tries, now + WEBHOOK_BACKOFF_S * 2 ** (tries - 1))
            log.warning("scheduled report %s not sent (attempt %d of %d): %s", name, tries, WEBHOOK_TRIES, e)
            report["sent"] = None
        return [report]
