"""The ingest writer, in its own process: the database work runs beside the MQTT client, not under its GIL.

The bridge decodes messages and hands batches of them to this process over a socket pair (pickled:
the child is our own program, started by the bridge, never a peer on the network); the process
writes each batch in one transaction and answers with what the bridge must publish now that it is
committed (DESIGN §6: acks only after commit). The bridge keeps every batch until it is answered,
so a worker that dies is started again and given them again; writes are idempotent, so a batch
written twice is stored once.

    python -m controller.ingest_worker FD     (the database URL comes as the first message on FD)
"""

from __future__ import annotations

import itertools
import logging
import marshal
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from multiprocessing.connection import Connection
from pathlib import Path

from sqlalchemy.exc import OperationalError

from controller.db import Database
from controller.ingest import Written, write_batch
from controller.models import Alert

log = logging.getLogger("citygate.ingest")
STATS = ("records", "duplicates", "invalid", "batches", "messages")


# ---------------------------------------------------------------- in the worker process


class Writer:
    """Writes batches of decoded (gateway, kind, message) items plus (gateway, code, detail) alerts."""

    def __init__(self, db: Database):
        self.db = db

    def write(self, items: list[tuple[str, str, dict]], bad: list[tuple[str, str, str]]) -> tuple[Written, dict]:
        """Commit a batch, waiting out a database that is away; returns what to publish and the counts."""
        written, stats = _while_away("writing the batch", lambda: self._write(items, bad))
        stats["messages"] = len(items) + len(bad)
        return written, stats

    def _write(self, items, bad) -> tuple[Written, dict]:
        stats = dict.fromkeys(STATS, 0)
        try:
            return self._commit(items, bad, stats), stats
        except OperationalError:
            raise
        except Exception:  # one message the database refuses must not hold up the others
            log.exception("ingest batch failed; writing its %d messages one by one", len(items))
        stats = dict.fromkeys(STATS, 0)
        written = Written()
        for gw, kind, msg in items:
            try:
                w = self._commit([(gw, kind, msg)], [], stats)
            except OperationalError:
                raise
            except Exception as e:
                log.exception("could not store a %s message of %s", kind, gw)
                self._commit([], [(gw, "ingest_failed", f"{kind}: {type(e).__name__}: {str(e)[:300]}")], stats)
                continue
            written.acks.update(w.acks)
            written.republish += w.republish
            written.results += w.results
        if bad:
            self._commit([], bad, stats)
        return written, stats

    def _commit(self, items, bad, stats: dict) -> Written:
        with self.db.session() as s:
            s.add_all(Alert(gateway_id=gw, code=code, detail=detail) for gw, code, detail in bad)
            written = write_batch(s, items, stats)
        stats["invalid"] += len(bad)
        stats["batches"] += 1
        return written


def _while_away(what: str, attempt):
    """`attempt()`, tried again while the database is unreachable (0.5 s apart, doubling to 10 s)."""
    delay = 0.5
    while True:
        try:
            return attempt()
        except OperationalError:
            log.exception("database unavailable; %s again in %.1f s", what, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10)


def serve(conn: Connection) -> None:
    """Answer (batch id, items, bad) with (batch id, Written, stats) until the bridge says None or goes."""
    db = Database(_recv(conn))
    _while_away("connecting", lambda: db.engine.connect().close())
    _send(conn, "ready")  # reachable: the bridge waits for this before it subscribes
    writer = Writer(db)
    try:
        while True:
            try:
                job = _recv(conn)
            except EOFError:
                return
            if job is None:
                return
            bid, blobs, bad = job
            written, stats = writer.write([marshal.loads(b) for b in blobs], bad)
            _send(conn, (bid, written, stats))
    finally:
        db.engine.dispose()


def _send(conn: Connection, obj) -> None:
    """Plain pickle of small things (a batch's messages are marshalled one by one: see submit)."""
    conn.send_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def _recv(conn: Connection):
    return pickle.loads(conn.recv_bytes())


def main() -> int:
    # Ctrl-C in a terminal reaches the whole process group: the bridge stops this process itself,
    # once it has answered what it holds (and it ends on its own when the bridge's side closes)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=os.environ.get("CITYGATE_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s[worker]: %(message)s")
    serve(Connection(int(sys.argv[1])))
    return 0


# ---------------------------------------------------------------- in the bridge's process


class IngestWorker:
    """The bridge's handle on its worker process: submit batches, collect answers, restart on a crash.

    At most `inflight` batches are with the worker at once, so the bridge decodes the next batch
    while the worker writes this one, and a slow database holds the queue in the bridge (whose
    inbox then pushes back on the broker), not in a pipe.
    """

    def __init__(self, db_url: str, inflight: int = 2):
        if db_url in ("sqlite://", "sqlite:///:memory:"):
            raise ValueError("the ingest worker is another process: it cannot see an in-memory SQLite database")
        self.db_url = db_url
        self._lock = threading.Lock()  # the unconfirmed batches
        self._send_lock = threading.Lock()  # the connection, for submit and restart
        self._slots = threading.BoundedSemaphore(inflight)
        self._unconfirmed: OrderedDict[int, tuple] = OrderedDict()
        self._ids = itertools.count(1)
        self._stopping = False
        self.restarts = 0
        self._spawn()

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        self.proc = subprocess.Popen([sys.executable, "-m", "controller.ingest_worker", str(theirs.fileno())],
                                     pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(ours.detach())
        _send(self.conn, self.db_url)  # not on the command line, where `ps` would show its password

    def wait_ready(self, timeout: float) -> bool:
        """True once the worker has opened the database (it imports SQLAlchemy first: most of a second)."""
        if not self.conn.poll(timeout):
            return False
        try:
            return _recv(self.conn) == "ready"
        except (EOFError, OSError):
            return False

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._unconfirmed)

    def submit(self, items: list, bad: list, stop: threading.Event) -> bool:
        """Hand a batch over (blocks while `inflight` are with the worker); False once stopped."""
        while not self._slots.acquire(timeout=0.2):
            if stop.is_set():
                return False
        # message by message: pickling a whole batch cost as much as decoding it (the pickler's memo
        # grows with the batch); marshalling each message costs a fraction of that
        blobs = [marshal.dumps(item) for item in items]
        with self._send_lock:  # not _lock: the collector must be able to take answers meanwhile
            bid = next(self._ids)
            job = (bid, blobs, bad)
            with self._lock:
                self._unconfirmed[bid] = job
            try:
                _send(self.conn, job)
            except OSError:  # the worker is gone: answers() starts another and sends it again
                pass
        return True

    def answers(self, stop: threading.Event):
        """Yield (Written, stats) per committed batch, in order, starting a new worker when one dies."""
        delay = 0.5
        while True:
            try:
                answer = _recv(self.conn)
            except (EOFError, OSError):
                if stop.is_set() or self._stopping:
                    return
                try:
                    code = self.proc.wait(5)
                except subprocess.TimeoutExpired:  # alive but unreachable: it cannot be told anything
                    self.proc.kill()
                    code = self.proc.wait()
                log.error("ingest worker %d exited (code %s); starting another, %d batches to write again",
                          self.proc.pid, code, self.pending)
                if stop.wait(delay):
                    return
                delay = min(delay * 2, 30)
                self._restart()
                continue
            if answer == "ready":  # a worker slower to open the database than wait_ready waited
                continue
            bid, written, stats = answer
            delay = 0.5
            with self._lock:
                job = self._unconfirmed.pop(bid, None)
            if job is not None:
                self._slots.release()
            yield written, stats

    def _restart(self) -> None:
        with self._send_lock:
            self.conn.close()
            self.restarts += 1
            self._spawn()
            self.wait_ready(60)
            with self._lock:
                jobs = list(self._unconfirmed.values())
            try:
                for job in jobs:
                    _send(self.conn, job)
            except OSError:  # died again: answers() sees it and starts another
                pass

    def stop(self, timeout: float = 10) -> None:
        """Let the worker finish what it holds, then end it."""
        self._stopping = True
        with self._send_lock:
            try:
                _send(self.conn, None)
            except OSError:
                pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("ingest worker %d did not stop within %.0f s; killing it", self.proc.pid, timeout)
            self.proc.kill()
            self.proc.wait()
        self.conn.close()


if __name__ == "__main__":
    sys.exit(main())
