"""Is ingest working? The answers behind /healthz (503 with the reasons) and /metrics (Prometheus text).

Ingest is unhealthy when a part of it is not running (decoder, collector, the writer process),
when the writer says the database is unreachable, or when messages wait and nothing was committed
for longer than `max_lag_s` (counted from the later of the last commit and the moment messages
began to wait, so an idle controller is not late). A broker that is away is shown, not a reason:
restarting the controller would not bring it back.
"""

from __future__ import annotations

import time


def health(bridge, max_lag_s: float) -> list[str]:
    """Why ingest is not healthy (empty: it is)."""
    reasons = []
    if bridge._stop.is_set():
        return ["ingest is stopped"]
    for t in (bridge._decoder, bridge._collector):
        if not t.is_alive():
            reasons.append(f"the {t.name} thread is not running")
    worker = bridge.worker
    if worker is None or worker.proc.poll() is not None:
        reasons.append("the ingest worker process is not running")
    elif worker.db_down_since is not None:
        reasons.append(f"the ingest worker cannot reach the database (for {time.time() - worker.db_down_since:.0f} s: "
                       f"{worker.db_error})")
    lag = ingest_lag(bridge)
    if lag > max_lag_s:
        reasons.append(f"{bridge.waiting} messages wait and nothing was committed for {lag:.0f} s "
                       f"(CITYGATE_INGEST_MAX_LAG_S={max_lag_s:g})")
    return reasons


def ingest_lag(bridge) -> float:
    """Seconds messages have waited without a commit (0 when none wait)."""
    if bridge.waiting <= 0:
        return 0.0
    return time.monotonic() - max(bridge.last_commit, bridge.busy_since)


def summary(bridge) -> dict:
    """The figures /healthz shows beside its verdict."""
    worker = bridge.worker
    return {"broker_connected": bridge.connected.is_set(), "received": bridge._received,
            "committed": bridge._committed, "waiting": bridge.waiting,
            "seconds_since_commit": round(time.monotonic() - bridge.last_commit, 1),
            "lag_s": round(ingest_lag(bridge), 1),
            "database_down_since": worker.db_down_since if worker else None}


def metrics(bridge, db_up: bool | None) -> list[tuple[str, str, str, float]]:
    """(name, type, help, value) for every figure of ingest."""
    worker = bridge.worker
    stats, refused = bridge.stats, bridge.refused
    down = worker.db_down_since if worker else None
    rows = [
        ("ingest_messages_received_total", "counter", "Messages received from gateways", bridge._received),
        ("ingest_messages_committed_total", "counter", "Messages committed (or dropped) by the writer",
         bridge._committed),
        ("ingest_records_total", "counter", "Records stored", stats["records"]),
        ("ingest_duplicates_total", "counter", "Records received again and ignored", stats["duplicates"]),
        ("ingest_invalid_total", "counter", "Refused messages written into bad_message alerts", stats["invalid"]),
        ("ingest_bad_messages_total", "counter", "Messages refused (invalid, oversized or failing)",
         refused["bad_messages"]),
        ("ingest_decode_errors_total", "counter", "Messages the decoder failed on with an unexpected error",
         refused["decode_errors"]),
        ("ingest_oversized_total", "counter", "Messages refused for their size", refused["oversized"]),
        ("ingest_unsolicited_replies_total", "counter", "Command replies nobody waited for (dropped)",
         bridge.commands.unsolicited),
        ("ingest_batches_total", "counter", "Transactions committed by the writer", stats["batches"]),
        ("ingest_dropped_total", "counter", "Messages of batches the writer could not write at all",
         stats["dropped"]),
        ("ingest_worker_restarts_total", "counter", "Writer processes started again after one died",
         worker.restarts if worker else 0),
        ("ingest_thread_restarts_total", "counter", "Bridge threads started again after one died",
         bridge.thread_restarts),
        ("ingest_queue_depth", "gauge", "Messages received and not yet committed", bridge.waiting),
        ("ingest_inbox_depth", "gauge", "Messages waiting to be decoded", bridge.inbox.qsize()),
        ("ingest_pending_batches", "gauge", "Batches with the writer, not yet committed",
         worker.pending if worker else 0),
        ("ingest_seconds_since_commit", "gauge", "Seconds since the writer last committed",
         round(time.monotonic() - bridge.last_commit, 3)),
        ("ingest_lag_seconds", "gauge", "Seconds messages have waited without a commit", round(ingest_lag(bridge), 3)),
        ("commands_pending", "gauge", "Commands waiting for their gateway's answer", len(bridge.commands)),
        ("broker_connected", "gauge", "1 when subscribed to the broker", int(bridge.connected.is_set())),
        ("ingest_db_up", "gauge", "1 unless the writer finds the database unreachable", int(down is None)),
        ("ingest_db_down_seconds", "gauge", "How long the writer has found the database unreachable",
         round(time.time() - down, 3) if down is not None else 0),
    ]
    if db_up is not None:
        rows.append(("db_up", "gauge", "1 when the API reaches the database", int(db_up)))
    return rows


def prometheus_text(rows: list[tuple[str, str, str, float]], prefix: str = "citygate_") -> str:
    out = []
    for name, kind, help_text, value in rows:
        out += [f"# HELP {prefix}{name} {help_text}.", f"# TYPE {prefix}{name} {kind}", f"{prefix}{name} {value}"]
    return "\n".join(out) + "\n"
