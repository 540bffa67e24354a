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


class StarvedTin(Tin):
    """An envelope whose streaming found no heap (gw.tablein: the error kept, the envelope's sha still known)."""
    error = ("too_big", tables.SHORT_OF_HEAP)

    def check(self):
        raise TableError(self.error[0], self.error[1])


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


async def deliver(link, env_sha, kind=Tin):
    try:
        await tables.on_table(link, kind(link.store.root, env_sha))
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


async def no_room_to_stream_restarts_once(root):
    """No heap to stream or check the envelope beside the running table: restart with a retry note (before,
    refused too_big at once); after the boot the envelope streams on the fresh heap and applies."""
    link = Link(fresh(root), Board(Table(2)))
    left = script()  # nothing is loaded: the envelope never got through
    assert await deliver(link, "env-7", StarvedTin) == "restarted" and not left and link.acks == [], link.acks
    assert link.store.table_note() == {"sha": "env-7", "retry": 1}, link.store.table_note()
    booted = Link(root, Board(Table(2)))
    left = script(Table(7))
    assert await deliver(booted, "env-7") == "answered" and not left
    assert booted.acks == [(7, "sha-v7", "applied", None)], booted.acks


async def no_room_to_stream_twice_is_refused(root):
    """Still no heap to stream it on the fresh heap: refused as too big, the note says why, and the envelope
    delivered again is answered from the note, never streamed or loaded again, never restarted over."""
    link = Link(fresh(root), Board(Table(2)))
    link.store.write_table_note({"sha": "env-8", "retry": 1})
    left = script()
    assert await deliver(link, "env-8", StarvedTin) == "answered" and link.board.resets == 0 and not left
    assert link.acks[0][2] == "rejected" and link.acks[0][3].startswith("too_big"), link.acks
    assert link.store.table_note()["why"].startswith("too_big"), link.store.table_note()
    assert await deliver(link, "env-8", StarvedTin) == "answered" and link.board.resets == 0
    assert link.acks[1][2:] == link.acks[0][2:] and link.board.table().version == 2, link.acks


def a_starved_stream_still_names_its_envelope(root):
    """gw.tablein: an envelope whose streaming failed keeps hashing, so the note can name it (sha256 of
    every byte), and check() says it did not fit (the reason gw.tables restarts over)."""
    import binascii
    import hashlib

    from gw.tablein import TableIn

    tin = TableIn(fresh(root) + "/tin1", "00" * 32, 64, TABLE_HEAD)
    parts = (b'{"v":1,"alg":"HS256",', b'"body":"{}","sig":"' + b"0" * 64 + b'"}')
    tin.write(bytearray(parts[0]), len(parts[0]))
    tin.fail(MemoryError())
    tin.write(bytearray(parts[1]), len(parts[1]))
    tin.end()
    assert tin.env_sha == binascii.hexlify(hashlib.sha256(parts[0] + parts[1]).digest()).decode(), tin.env_sha
    try:
        tin.check()
    except TableError as e:
        assert (e.path, e.reason) == ("too_big", tables.SHORT_OF_HEAP), (e.path, e.reason)
    else:
        raise AssertionError("a starved envelope passed its check")


async def main(root):
    a_starved_stream_still_names_its_envelope(root)
    print("PASS", "a_starved_stream_still_names_its_envelope")
    for case in (room_on_the_fresh_heap, no_room_twice_is_refused, bad_table_and_no_room_for_the_old,
                 a_note_names_one_envelope, no_room_to_stream_restarts_once, no_room_to_stream_twice_is_refused):
        await case(root)
        print("PASS", case.__name__)
    print("OK")


asyncio.run(main(sys.argv[1].rstrip("/")))
