"""Tables from the controller, for gw.link (kept apart: a smaller module to compile on a small heap).

A table is streamed to flash as it arrives (gw.tablein), checked, loaded from flash (gw.bodyfile),
committed with one rename and applied; a board short of heap reads it whole instead (on_table_ram).
Whatever fails, the controller gets a `rejected` ack with the reason and the old table stays.

The streaming modules (gw.tablein, gw.jstream, gw.bodyfile, protocols.jsonstrict) are imported with this
one, at boot: imported at the first table, their names went into MicroPython's qstr pool then, and a
pool that must double needs ~14 KB in one piece (64-bit port), which a heap that has run a while may
not have (a small first table was then refused as too big about one time in three).
"""

import gc

from gw import bodyfile
from gw.store import TABLE_HEAD
from gw.tablein import failure
from protocols import jsonstrict, routing  # noqa: F401
from protocols.sign import sha256_hex
from protocols.table import TableError

TOO_BIG = "too_big"
SHORT_OF_HEAP = "does not fit in this gateway's memory"  # the reason of a MemoryError met while loading


async def on_table(self, tin):
    b = self.board  # (no local keeps the running table: _load_new may have to let it go)
    if tin.error is None and tin.env_sha is not None and tin.env_sha == self.table_sha:
        await self._ack_table(b.table().version, b.table().sha256, "applied", None)  # delivered again
        return
    note = self.store.table_note() if tin.env_sha is not None else None
    if note is not None and note.get("sha") != tin.env_sha:
        note = None
    if note is not None and "why" in note:  # refused before a restart: answered again, not loaded again
        await _answer_refusal(self, note)
        return
    current = b.table().version if b.table() else 0
    gc.collect()
    try:
        sig, sha = tin.check()
        table = _load_new(self, tin, current, sha, note is not None)
    except Exception as e:  # whatever went wrong, the controller hears of it and the old table stays
        table = None
        t = b.table()
        if isinstance(e, TableError) and t is not None and getattr(e, "sha256", None) == t.sha256:
            self.table_sha = tin.env_sha  # the table we run, delivered again (retained, after a boot)
            await self._ack_table(t.version, t.sha256, "applied", None)
            return
        if _short_of_heap(e) and tin.env_sha is not None and t is not None and not b.calls_up():
            if note is None:  # no room to stream or check it: a fresh heap, once (as for a load)
                _restart(self, {"sha": tin.env_sha, "retry": 1}, "no room to take the new table in")
            else:  # not on a fresh heap either: delivered again, it is answered, not streamed again
                self.store.write_table_note(_refusal(tin, e))
        await _answer_refusal(self, _refusal(tin, e))
        return
    try:
        self.store.commit_table(tin.path, table.version, sig, tin.len, tin.crc)
    except Exception as e:
        table = None
        path, why = failure(e)
        await refuse_table(self, None, sha, "%s: %s" % (path, why))
        return
    b.apply_table(table)
    self.table_sha = tin.env_sha
    self.log("link: table v%d applied" % table.version)
    await self._ack_table(table.version, table.sha256, "applied", None)
    await self.publish_state()

def _short_of_heap(e):
    return isinstance(e, MemoryError) or getattr(e, "reason", None) == SHORT_OF_HEAP


def _load_new(self, tin, current, sha, retried):
    """The new table from its staged file. When it does not fit beside the running one and no call is up,
    the running one is let go and the load tried again; should the new one still fail, the running one is
    read back from flash, where it is kept. No await in here: no call ever sees the board without a table.

    A heap that has run a while is cut into holes (MicroPython's collector does not move objects): a table
    that fits a fresh heap may find no room even alone, and then the running one may not come back either.
    The board restarts then (no call is up), leaving a note on flash: the retained envelope, delivered
    again after the boot, is loaded once more on the fresh heap, or answered as refused, never looped on."""
    b = self.board
    try:
        return bodyfile.load(tin.path, TABLE_HEAD, tin.len, self.id, current, sha256=sha)
    except Exception as e:
        if not _short_of_heap(e) or b.table() is None or b.calls_up():
            raise
    self.log("link: no room for the new table beside v%d: loading it alone" % current)
    b.apply_table(None)  # let the running one go (and collect)
    try:
        return bodyfile.load(tin.path, TABLE_HEAD, tin.len, self.id, current, sha256=sha)
    except Exception as e:
        gc.collect()
        if _short_of_heap(e) and not retried:
            _restart(self, {"sha": tin.env_sha, "retry": 1}, "no room for the new table even alone")
        b.reload_table()
        if b.table() is None:  # the running one did not come back: the board must not run without a table
            _restart(self, _refusal(tin, e), "the running table did not come back")
        if _short_of_heap(e):  # no room on a fresh heap either: delivered again, it is answered, not loaded
            self.store.write_table_note(_refusal(tin, e))
        self.table_sha = None
        raise


def _refusal(tin, e):
    """The refused envelope's answer (and its note on flash): a TableError's version and sha256, if known."""
    path, why = failure(e)
    return {"sha": tin.env_sha, "why": "%s: %s" % (path, why), "version": getattr(e, "version", None),
            "sha256": getattr(e, "sha256", None)}


async def _answer_refusal(self, r):
    await refuse_table(self, r.get("version"), r.get("sha256"), r["why"])


def _restart(self, note, what):
    self.log("link: %s: restarting on a fresh heap" % what)
    gc.collect()  # the failed stream's or load's leftovers: the note needs a piece of heap to be written
    self.store.write_table_note(note)
    self.board.reset()


async def on_table_ram(self, payload):
    """The fallback of a board too short of heap to stream: the envelope checked in place in RAM."""
    b = self.board
    digest = sha256_hex(payload)
    if b.table() is not None and digest == self.table_sha:
        await self._ack_table(b.table().version, b.table().sha256, "applied", None)
        return
    try:
        table, sig = routing.unseal_into(payload, self.key, self.id, b.table().version if b.table() else 0)
        self.store.save_table(payload, table.version, sig)
    except TableError as e:
        t = b.table()
        if t is not None and getattr(e, "sha256", None) == t.sha256:
            self.table_sha = digest
            await self._ack_table(t.version, t.sha256, "applied", None)
            return
        await refuse_table(self, getattr(e, "version", None), getattr(e, "sha256", None),
                                 "%s: %s" % (e.path, e.reason))
        return
    except Exception as e:  # any other failure is still answered; the old table stays
        why = "does not fit in this gateway's memory" if isinstance(e, MemoryError) else "cannot be read: %r" % (e,)
        await refuse_table(self, None, None, (TOO_BIG if isinstance(e, MemoryError) else "envelope") + ": " + why)
        return
    del payload
    b.apply_table(table)
    self.table_sha = digest
    self.log("link: table v%d applied (read whole)" % table.version)
    await self._ack_table(table.version, table.sha256, "applied", None)
    await self.publish_state()

async def refuse_table(self, version, sha, why):
    self.log("link: table rejected: " + why)
    gc.collect()
    await self._ack_table(version, sha, "rejected", why)
    code = "table_too_big" if why.startswith(TOO_BIG) else "table_rejected"
    self.store.append({"t": "alarm", "at": self.clock.now(), "code": code, "detail": why[:200]})
