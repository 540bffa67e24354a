"""Group commit: while the ingest worker still holds earlier batches, the decoder gathers on into one
larger batch (up to bridge.GROUP times `batch` messages); with the worker free it hands over what it
has at once. The decoder thread's loop runs here against a stand-in for the worker's handle, which
says whether it has room and records what it is handed (the database side: test_ingest, test_multi_process).
"""

from __future__ import annotations

import threading

from controller.db import Database
from controller.ingest import bridge as bridge_module
from controller.ingest.bridge import Bridge
from protocols import messages
from tests.conditions import until
from tests.controller.test_ingest import call

GW = "gw-group-1"


class Handle:
    """What the decoder asks of controller.ingest.worker.IngestWorker: room, and submit."""

    def __init__(self, room: bool):
        self.room, self.handed = room, []

    def has_room(self) -> bool:
        return self.room

    def submit(self, items, bad, stop, n_messages=None) -> bool:
        self.handed.append(n_messages)
        self.room = True  # that batch was the last the worker held: it has room again
        return True


def handed_batches(tmp_path, room: bool, queued: int) -> list[int]:
    bridge = Bridge(Database(f"sqlite:///{tmp_path / 'unused.db'}"), "mqtt://127.0.0.1:1", batch=2, linger_s=0.001)
    bridge.worker = Handle(room)
    for i in range(queued):
        payload = messages.encode("events", messages.events("s1", [call(i + 1)]))
        bridge.inbox.put((GW, "events", payload))
    loop = threading.Thread(target=bridge._decode_loop, daemon=True)
    loop.start()
    try:
        until(lambda: sum(n for n in bridge.worker.handed if n) >= queued, what="every message handed over")
    finally:
        bridge._stop.set()
        loop.join(10)
    assert bridge.stats["records"] == 0 and bridge.refused["bad_messages"] == 0
    return [n for n in bridge.worker.handed if n]


def test_a_busy_worker_gets_one_larger_batch(tmp_path):
    most = 2 * bridge_module.GROUP
    assert handed_batches(tmp_path, room=False, queued=most + 3) == [most, 2, 1]


def test_a_free_worker_gets_each_batch_at_once(tmp_path):
    assert handed_batches(tmp_path, room=True, queued=5) == [2, 2, 1]

