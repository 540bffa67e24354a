"""The ingest writer (in the worker process): a batch in one transaction, and what to publish once committed.

Several controller processes may write the same gateway's records at once (MQTT shared subscriptions
hand a gateway's messages to whichever process is free). Keys keep every record stored once; two
things keep the acks moving:

- another writer committed some of this batch's keys meanwhile (ingest.Raced): the batch is written
  again, now seeing them (a few times), and only then message by message;
- each writer computes a store's mark from what it saw, so two writers each holding half of a range
  may both stop short of its end. With `shared` (other writers exist), a writer looks again at the
  marks of the stores it wrote after each commit (`settle`): whichever of the two commits last sees
  both halves and moves the mark on, so the gateway is acked without waiting to send again. Alone,
  a writer looks again only at stores left short of what it wrote (an earlier message still missing).
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import OperationalError

from controller.db import Database
from controller.ingest.alerts import Outage, write_alerts
from controller.ingest.records import Raced, Written, _covered, _held, advance, write_batch
from controller.ingest.statements import upsert
from controller.limits import clip

log = logging.getLogger("citygate.ingest")
STATS = ("records", "duplicates", "invalid", "batches", "messages", "dropped")
DB_ALERT_AFTER_S = 10.0  # an outage this long raises `database_unreachable` (CITYGATE_DB_ALERT_AFTER_S)
RACE_RETRIES = 3  # writes of a whole batch that lost a race before it goes message by message


class Writer:
    """Writes batches of decoded (gateway, kind, message) items plus (gateway, code, detail, count) alerts."""

    def __init__(self, db: Database, outage: Outage | None = None, shared: bool = False):
        self.db, self.shared = db, shared
        self.outage = outage or Outage(db, DB_ALERT_AFTER_S)
        self.races = 0  # batches written again because another writer got some keys first
        self.settled = 0  # marks moved on after commit by looking again

    def write(self, items: list[tuple[str, str, dict]], bad: list[tuple], n_messages: int | None = None
              ) -> tuple[Written, dict]:
        """Commit a batch, waiting out a database that is away; returns what to publish and the counts."""
        written, stats = self.while_away("writing the batch", lambda: self._write(items, bad))
        stats["messages"] = len(items) + len(bad) if n_messages is None else n_messages
        return written, stats

    def while_away(self, what: str, attempt):
        """`attempt()`, tried again while the database is unreachable (0.5 s apart, doubling to 10 s);
        the outage is tracked, reported to the bridge and alerted (controller.ingest.alerts.Outage)."""
        delay = 0.5
        while True:
            began = time.time()
            try:
                result = attempt()
            except OperationalError as e:
                self.outage.failed(began, e)
                log.error("database unavailable (%s); %s again in %.1f s", self.outage.error, what, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10)
                continue
            self.outage.recovered()
            return result

    def probe(self) -> None:
        """While idle: notice an outage (and its end) without a batch to write."""
        def ping():
            with self.db.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        self.while_away("probing", ping)

    def _write(self, items, bad) -> tuple[Written, dict]:
        for _ in range(RACE_RETRIES):
            stats = dict.fromkeys(STATS, 0)
            try:
                return self._commit(items, bad, stats), stats
            except OperationalError:
                raise
            except Raced as e:  # written again: the keys the other writer stored are now seen as stored
                self.races += 1
                log.info("%s; writing the batch again", e)
            except Exception:  # one message the database refuses must not hold up the others
                log.exception("ingest batch failed; writing its %d messages one by one", len(items))
                break
        return self._one_by_one(items, bad)

    def _one_by_one(self, items, bad) -> tuple[Written, dict]:
        stats = dict.fromkeys(STATS, 0)
        written = Written()
        failed = []
        for gw, kind, msg in items:
            try:
                w = self._commit([(gw, kind, msg)], [], stats)
            except OperationalError:
                raise
            except Exception as e:
                log.exception("could not store a %s message of %s", kind, gw)
                failed.append((gw, "ingest_failed", clip(f"{kind}: {type(e).__name__}: {str(e)[:300]}"), 1))
                continue
            written.acks.update(w.acks)
            written.republish += w.republish
            written.results += w.results
        if bad or failed:
            try:
                self._commit([], [*bad, *failed], stats)
            except OperationalError:
                raise
            except Exception:  # the records above are committed: their acks must still go out
                log.exception("could not store %d alerts of a batch; dropped", len(bad) + len(failed))
        return written, stats

    def _commit(self, items, bad, stats: dict) -> Written:
        with self.db.session() as s:
            if bad:
                write_alerts(s, bad)
            written = write_batch(s, items, stats)
        stats["invalid"] += sum(count for gw, code, detail, count in bad if code == "bad_message")
        stats["batches"] += 1
        stores = _written_stores(items)
        again = {k for k in stores if self.shared or written.acks.get(k, stores[k]) < stores[k]}
        if again:
            written.acks.update(self.settle(again))
        return written

    def settle(self, stores: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """After a commit: the marks of `stores` moved on as far as what is committed now allows."""
        with self.db.session() as s:
            out, changed = {}, []
            for key, (mark, held) in _held(s, stores).items():
                spans = [span for kind, data in held.values() if (span := _covered(kind, data))]
                new = advance(mark, set(held), spans)
                out[key] = new
                if new > mark:
                    changed.append((*key, new))
            if changed:
                upsert(s, "marks", changed)
                self.settled += len(changed)
        return out


def _written_stores(items) -> dict[tuple[str, str], int]:
    """The stores of this batch's events (as the bridge prepared them), with the highest seq carried."""
    top: dict[tuple[str, str], int] = {}
    for gw, kind, m in items:
        if kind == "events" and type(m) is tuple and m[1]:
            key = (gw, m[0])
            top[key] = max(top.get(key, 0), m[1][-1].seq)
    return top
