"""The routing table on flash (part of the store): `table.json` and the `tin<k>` files a table streams into.

table.json is a header line `{"version", "len", "crc", "sig"}` (padded to TABLE_HEAD bytes when the link
streamed the table in), then the table body; a header without "sig": the whole envelope. A new table
replaces the old by one rename, so a power cut keeps the old table or the new, never a mix.
"""

import json
import os

from .flashio import crc, crc32, read_json, write_atomic

TABLE_HEAD = 192  # the header line of a streamed table: written blank first, filled in once the body is checked


class TableFiles:
    """Mixin of the Store: needs `root`, `_note(msg)`; keeps `_table` (version) and `table_sig`."""

    _table = None
    table_sig = None

    def save_table(self, payload, version, sig=None):
        """Atomically replace the table with `payload` of `version`: the signed envelope, or the
        body alone with its signature `sig` (kept in the header line)."""
        payload = payload.encode() if isinstance(payload, str) else payload
        head = {"version": int(version), "len": len(payload), "crc": crc(payload)}
        if sig:
            head["sig"] = sig
        with open(self.root + "/table.json.tmp", "wb") as f:
            f.write(json.dumps(head).encode() + b"\n")
            f.write(payload)
        os.rename(self.root + "/table.json.tmp", self.root + "/table.json")
        self._table = int(version)

    def table_stage(self, k):
        """Where the k-th table streamed in is written (truncated when reused)."""
        return self.root + "/tin%d" % k

    def drop_staged_tables(self):
        """Remove tables cut short by a reboot (never applied)."""
        for name in os.listdir(self.root):
            if name[:3] == "tin" and name[3:].isdigit():
                os.remove(self.root + "/" + name)

    def commit_table(self, path, version, sig, length, crc_):
        """A staged table (TABLE_HEAD blank bytes, then `length` body bytes) becomes the table: its header
        is filled in, then one rename replaces table.json, so a power cut keeps the old table or the new."""
        head = json.dumps({"version": int(version), "len": length, "crc": crc_ & 0xFFFFFFFF, "sig": sig}).encode()
        if len(head) >= TABLE_HEAD:
            raise ValueError("table header too long")
        with open(path, "r+b") as f:
            f.write(head + b" " * (TABLE_HEAD - 1 - len(head)) + b"\n")
        os.rename(path, self.root + "/table.json")
        self._table = int(version)

    def table_file(self):
        """The stored table as (path, body offset, body length, sig, version) when its header has a sig and
        the body is whole and intact (crc checked a piece at a time), else None (then try load_table())."""
        path = self.root + "/table.json"
        try:
            with open(path, "rb") as f:
                line = f.readline()
                h = json.loads(line)
                if not isinstance(h, dict) or not h.get("sig"):
                    return None
                c, left, buf = 0, h["len"], bytearray(512)
                while left:
                    k = f.readinto(memoryview(buf)[:min(512, left)])
                    if not k:
                        raise ValueError("cut short")
                    c = crc32(memoryview(buf)[:k], c) if crc32 else 0
                    left -= k
                if f.read(1) or (crc32 and c & 0xFFFFFFFF != h["crc"]):
                    raise ValueError("length or crc")
            self._table, self.table_sig = int(h["version"]), h["sig"]
            return path, len(line), h["len"], h["sig"], self._table
        except OSError:
            return None  # no table stored yet
        except Exception as e:
            self._note("table file damaged %r" % (e,))
            return None

    def load_table(self):
        """The stored table payload (bytes) when whole and intact, else None."""
        self._table = None
        self.table_sig = None
        try:
            with open(self.root + "/table.json", "rb") as f:
                h, b = json.loads(f.readline()), f.read()
            if len(b) != h["len"] or crc(b) != h["crc"]:
                raise ValueError("length or crc")
            self._table = int(h["version"])
            self.table_sig = h.get("sig")
            return b
        except OSError:
            return None  # no table stored yet
        except Exception as e:
            self._note("table file damaged %r" % (e,))

    def table_note(self):
        """What the board restarted over when a table did not fit its heap: {"sha": envelope sha, "retry": 1}
        (load it again on the fresh heap) or {"sha", "why", "version", "sha256"} (answer it so, unread)."""
        note = read_json(self.root + "/table.note")
        return note if isinstance(note, dict) else None

    def write_table_note(self, note):
        write_atomic(self.root + "/table.note", json.dumps(note).encode())

    def table_version(self):
        """Version of the stored table, or None."""
        if self._table is None:
            self.load_table()
        return self._table
