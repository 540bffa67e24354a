"""The ingest writer, in its own process: the database work runs beside the MQTT client, not under its GIL.

The bridge decodes messages and hands batches of them to this process over a socket pair (pickled:
the child is our own program, started by the bridge, never a peer on the network); the process
writes each batch in one transaction and answers with what the bridge must publish now that it is
committed (DESIGN §6: acks only after commit; the writing itself: controller.ingest.writer). The
bridge keeps every batch until it is answered, so a worker that dies is started again and given
them again; writes are idempotent, so a batch written twice is stored once.

    python -m controller.ingest.worker FD     (the database URL comes as the first message on FD)
"""

from __future__ import annotations

import gc
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
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

if __name__ == "__main__":  # deaf to Ctrl-C before the imports below (seconds on a loaded machine): see main
    signal.signal(signal.SIGINT, signal.SIG_IGN)

from controller.db import Database  # noqa: E402
from controller.ingest.alerts import Outage  # noqa: E402
from controller.ingest.records import Written  # noqa: E402
from controller.ingest.rows import named_rows  # noqa: E402
from controller.ingest.writer import DB_ALERT_AFTER_S, STATS, Writer  # noqa: E402

log = logging.getLogger("citygate.ingest")
PROBE_EVERY_S = 5.0  # an idle writer looks at the database this often, so an outage shows without traffic


# ---------------------------------------------------------------- in the worker process


def serve(conn: Connection) -> None:
    """Answer (batch id, items, bad, messages) with (batch id, Written, stats) until the bridge says None
    or goes; tell it ("status", {...}) whenever the database goes away or comes back."""
    config = _recv(conn)
    if isinstance(config, str):
        config = {"url": config}
    db = Database(config["url"])

    def report(since, error):
        try:
            _send(conn, ("status", {"db_down_since": since, "db_error": error}))
        except OSError:
            pass

    writer = Writer(db, Outage(db, config.get("db_alert_after_s", DB_ALERT_AFTER_S), report),
                    shared=config.get("shared", False))
    writer.probe()  # reachable: the bridge waits for "ready" before it subscribes
    _send(conn, "ready")
    try:
        while True:
            if not conn.poll(PROBE_EVERY_S):
                writer.probe()
                continue
            try:
                job = _recv(conn)
            except EOFError:
                return
            if job is None:
                return
            bid, blobs, bad, *rest = job
            try:
                with collector_paused():
                    written, stats = writer.write([_named(marshal.loads(b)) for b in blobs], bad, *rest)
            except Exception:  # never die on a batch: the bridge would give it to the next worker, and so on
                log.exception("batch %d could not be written at all; its messages are dropped", bid)
                written, stats = Written(), dict.fromkeys(STATS, 0)
                stats["messages"] = rest[0] if rest else len(blobs) + len(bad)
                stats["dropped"] = stats["messages"]
            _send(conn, (bid, written, stats))
    finally:
        db.engine.dispose()


@contextmanager
def collector_paused():
    """No cyclic garbage collection while a batch is written (this process does nothing else meanwhile).

    A batch's RecordRows (tens of thousands) make no cycles, but unlike plain tuples the collector never
    stops tracking them, and collections set off by the batch's own allocations traversed them again
    and again: 1 us per record, a sixth of the writer. Cycles made meanwhile are collected after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _named(item: tuple):
    """A (gateway, kind, message) item as it came through marshal: an events message the bridge prepared
    (controller.ingest.records.wire_events) gets its rows as RecordRows."""
    gw, kind, m = item
    if kind == "events" and type(m) is tuple:
        return gw, kind, (m[0], named_rows(m[1]))
    return item


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

    def __init__(self, db_url: str, inflight: int = 2, db_alert_after_s: float = DB_ALERT_AFTER_S,
                 shared: bool = False):
        if db_url in ("sqlite://", "sqlite:///:memory:"):
            raise ValueError("the ingest worker is another process: it cannot see an in-memory SQLite database")
        self.db_url, self.db_alert_after_s = db_url, db_alert_after_s
        self.shared = shared  # other processes write the same stores (controller.ingest.writer)
        self.db_down_since: float | None = None  # what the worker last said about the database
        self.db_error = ""
        self._lock = threading.Lock()  # the unconfirmed batches
        self._send_lock = threading.Lock()  # the connection, for submit and restart
        self.inflight = inflight
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
        self.proc = subprocess.Popen([sys.executable, "-m", "controller.ingest.worker", str(theirs.fileno())],
                                     pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(ours.detach())
        self.db_down_since, self.db_error = None, ""
        # not on the command line, where `ps` would show its password
        _send(self.conn, {"url": self.db_url, "db_alert_after_s": self.db_alert_after_s, "shared": self.shared})

    def wait_ready(self, timeout: float) -> bool:
        """True once the worker has opened the database (it imports SQLAlchemy first: most of a second)."""
        deadline = time.monotonic() + timeout
        while self.conn.poll(max(0.0, deadline - time.monotonic())):
            try:
                answer = _recv(self.conn)
            except (EOFError, OSError):
                return False
            if answer == "ready":
                return True
            self._note_status(answer)
        return False

    def _note_status(self, answer) -> bool:
        """True when `answer` was the worker's word on the database (kept for /healthz and /metrics)."""
        if type(answer) is tuple and answer[0] == "status":
            self.db_down_since, self.db_error = answer[1]["db_down_since"], answer[1]["db_error"]
            return True
        return False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def has_room(self) -> bool:
        """False while the worker holds `inflight` batches (a submit would wait)."""
        return self.pending < self.inflight

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._unconfirmed)

    def submit(self, items: list, bad: list, stop: threading.Event, n_messages: int | None = None) -> bool:
        """Hand a batch over (blocks while `inflight` are with the worker); False once stopped."""
        while not self._slots.acquire(timeout=0.2):
            if stop.is_set():
                return False
        # message by message: pickling a whole batch cost as much as decoding it (the pickler's memo
        # grows with the batch); marshalling each message costs a fraction of that
        blobs = [marshal.dumps(item) for item in items]
        with self._send_lock:  # not _lock: the collector must be able to take answers meanwhile
            bid = next(self._ids)
            job = (bid, blobs, bad, len(items) + len(bad) if n_messages is None else n_messages)
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
            if answer == "ready" or self._note_status(answer):  # "ready": a worker slower than wait_ready waited
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
