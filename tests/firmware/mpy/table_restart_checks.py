"""gw.tables when a table finds no room on a heap cut into holes: the board restarts with a note on flash,
and the envelope delivered again after the boot is loaded once more, or answered as refused, never looped on.

`table_restart_checks.py DIR` (MicroPython or CPython, firmware/ and the repo on the path) prints `PASS <case>`
per case and `OK` at the end. bodyfile.load is replaced by a script of outcomes: the heap's state is what
cannot be made on purpose, so each load says whether it fits."""

import asyncio
import os
import sys

from gw import tables
from gw.store import TABLE_HEAD, Store
from protocols.table import TableError


class Restarted(BaseException):
    """The board's reset (SystemExit on the unix port, machine.reset() on a board): nothing after it runs."""


class Table:
    def __init__(self, version):
        self.version, self.sha256, self.issued_at = version, "sha-v%d" % version, None


class Board:
    def __init__(self, running, flash_ok=True):
        self.running, self.flash, self.flash_ok, self.resets = running, running, flash_ok, 0

    def table(self):
        return self.running

    def apply_table(self, table):
        self.running = table

    def reload_table(self):  # the stored table read back; None when the heap has no room for it either
        self.running = self.flash if self.flash_ok else None

    def calls_up(self):
        return False

    def reset(self):
        self.resets += 1
        raise Restarted()


class Clock:
    def now(self):
        return 1700000000


class Link:
    def __init__(self, root, board):
        self.store, self.board, self.id, self.table_sha = Store.open(root), board, "gw-restart-1", None
        self.clock = Clock()
        self.acks, self.logs = [], []

    def log(self, text):
        self.logs.append(text)

    async def _ack_table(self, version, sha, status, reason):
        self.acks.append((version, sha, status, reason))

    async def publish_state(self):
        pass


class Tin:
    error = None

    def __init__(self, root, env_sha):
        self.env_sha, self.path, self.len, self.crc = env_sha, root + "/tin0", 10, 0
        with open(self.path, "wb") as f:
            f.write(b" " * (TABLE_HEAD - 1) + b"\n" + b"{}" + b" " * 8)

    def check(self):
        return "sig", "sha-new"


def script(*outcomes):
    """bodyfile.load's stand-in: each call takes the next outcome (a Table is returned, an exception raised)."""
    left = list(outcomes)

    def load(*args, **kw):
        if not left:
            raise AssertionError("a load nobody expected")
        out = left.pop(0)
        if isinstance(out, BaseException):
            raise out
        return out
    tables.bodyfile.load = load
    return left


def fresh(root):
    for name in os.listdir(root):
        if name != "store":
            os.remove(root + "/" + name)
    return root


async def deliver(link, env_sha):
    try:
        await tables.on_table(link, Tin(link.store.root, env_sha))
    except Restarted:
        return "restarted"
    return "answered"


async def room_on_the_fresh_heap(root):
    """No room even alone: restart with a retry note; after the boot the same envelope loads and applies."""
    link = Link(fresh(root), Board(Table(2)))
    left = script(MemoryError(), MemoryError())
    assert await deliver(link, "env-4") == "restarted" and not left and link.acks == [], link.acks
    assert link.store.table_note() == {"sha": "env-4", "retry": 1}, link.store.table_note()
    booted = Link(root, Board(Table(2)))  # the boot: the running table read from flash, the envelope again
    left = script(MemoryError(), Table(4))
    assert await deliver(booted, "env-4") == "answered" and not left
    assert booted.acks == [(4, "sha-v4", "applied", None)] and booted.board.table().version == 4, booted.acks


async def no_room_twice_is_refused(root):
    """Retried on a fresh heap and still no room: refused as too big, the running table kept, no restart."""
    link = Link(fresh(root), Board(Table(2)))
    link.store.write_table_note({"sha": "env-5", "retry": 1})
    script(MemoryError(), MemoryError())
    assert await deliver(link, "env-5") == "answered" and link.board.resets == 0
    assert link.acks[0][2] == "rejected" and link.acks[0][3].startswith("too_big"), link.acks
    assert link.board.table().version == 2
    left = script()  # delivered again (a reconnect): answered from the note, not loaded a third time
    assert await deliver(link, "env-5") == "answered" and not left and link.board.resets == 0
    assert link.acks[1][2] == "rejected" and link.acks[1][3].startswith("too_big"), link.acks


async def bad_table_and_no_room_for_the_old(root):
    """The new table is bad and the running one finds no room to come back: restart, and after the boot the
    retained bad envelope is answered with its reason without being loaded again."""
    link = Link(fresh(root), Board(Table(2), flash_ok=False))
    bad = TableError("routes[76].targets[0]", "names no target of this table")
    script(MemoryError(), bad)
    assert await deliver(link, "env-3") == "restarted" and link.acks == []
    note = link.store.table_note()
    assert note["sha"] == "env-3" and note["why"] == "routes[76].targets[0]: names no target of this table", note
    booted = Link(root, Board(Table(2)))
    left = script()  # any load is a failure: the note answers
    assert await deliver(booted, "env-3") == "answered" and not left
    assert booted.acks[0][2:] == ("rejected", "routes[76].targets[0]: names no target of this table"), booted.acks
    assert booted.board.table().version == 2 and booted.board.resets == 0


async def a_note_names_one_envelope(root):
    """A note left for one envelope says nothing of another: a new table loads as ever."""
    link = Link(fresh(root), Board(Table(2)))
    link.store.write_table_note({"sha": "env-3", "why": "routes[0]: bad", "version": 3, "sha256": None})
    script(Table(6))
    assert await deliver(link, "env-6") == "answered" and link.acks == [(6, "sha-v6", "applied", None)], link.acks


async def main(root):
    for case in (room_on_the_fresh_heap, no_room_twice_is_refused, bad_table_and_no_room_for_the_old,
                 a_note_names_one_envelope):
        await case(root)
        print("PASS", case.__name__)
    print("OK")


asyncio.run(main(sys.argv[1].rstrip("/")))
