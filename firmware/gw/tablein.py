"""Inbound messages streamed off the socket (gw.mqtt on_stream sinks): a table envelope goes to
flash, a command too big to take is scanned only for its id, anything else too big is drained.

A table envelope (DESIGN §4) is never held whole: as it is read, its `body` string is unescaped
(gw.jstream) into a staging file behind a blank header, with the body's HMAC, SHA-256 and CRC
and the whole envelope's SHA-256 computed on the way. `check()` then says whether the envelope
and signature hold, gw.bodyfile loads the table from the file, and the store commits it with one
rename. A sink never raises: its first failure is kept in `error` as (path, reason) and the rest
of the message is only drained.
"""

import binascii
import hashlib
import json
import os

from gw.jstream import Members
from protocols import checks
from protocols.errors import ContractError
from protocols.routing import MAX_ENVELOPE
from protocols.sign import Hmac256, same_digest, to_key
from protocols.table import MAX_BODY, TableError

try:
    from binascii import crc32
except ImportError:  # pragma: no cover
    crc32 = None

TOO_BIG = "too_big"  # the path of every refusal for size: a table ack's reason and a cmd error start with it


def failure(e):
    """(path, reason) of any exception met while streaming or loading a message."""
    if isinstance(e, ContractError):
        return e.path or "envelope", e.reason
    if isinstance(e, MemoryError):
        return TOO_BIG, "does not fit in this gateway's memory"
    if isinstance(e, OSError):
        return "flash", "cannot store it: %r" % (e,)
    return "envelope", "cannot be read: %r" % (e,)


class TableIn:
    kind = "table"

    def __init__(self, path, key, size, head):
        self.path, self.size = path, size
        self.error = self.f = self.env_sha = None
        self.len = self.crc = self._n = 0
        self.env, self.mac, self.sha = hashlib.sha256(), Hmac256(to_key(key)), hashlib.sha256()
        self.scan = Members("envelope", capture=("v", "alg", "sig"), stream="body", sink=self)
        if size > MAX_ENVELOPE:
            self.error = (TOO_BIG, "the envelope is %d bytes, more than the %d allowed" % (size, MAX_ENVELOPE))
            return
        try:
            self._out = bytearray(512)
            self.f = open(path, "wb")
            self.f.write(b" " * (head - 1) + b"\n")
        except Exception as e:
            self.fail(e)

    # --- the sink (gw.mqtt) --------------------------------------------------------------------

    def write(self, buf, n):
        try:
            self.env.update(memoryview(buf)[:n])  # even after a failure: the sha names the envelope in a note
            if self.error is None:
                self.scan.feed(buf, n)
        except Exception as e:
            self.fail(e)

    def put(self, b, s, e):
        """Unescaped body bytes, from the scanner."""
        self.len += e - s
        if self.len > MAX_BODY:
            raise ContractError(TOO_BIG, "the table body is more than the %d bytes allowed" % MAX_BODY)
        out = self._out
        while s < e:
            k = min(e - s, 512 - self._n)
            out[self._n:self._n + k] = b[s:s + k]
            self._n += k
            s += k
            if self._n == 512:
                self._flush()

    def _flush(self):
        mv = memoryview(self._out)[:self._n]
        self.f.write(mv)
        self.mac.update(mv)
        self.sha.update(mv)
        if crc32:
            self.crc = crc32(mv, self.crc)
        self._n = 0

    def end(self):
        try:
            if self.error is None:
                self.scan.finish()
                self._flush()
                self.f.close()
                self.f = None
            self.env_sha = binascii.hexlify(self.env.digest()).decode()
        except Exception as e:
            self.fail(e)

    def fail(self, e):
        if self.error is None:
            self.error = failure(e)
        self.abort()

    def abort(self):
        """Let go of the staging file (it is never applied)."""
        f, self.f = self.f, None
        try:
            if f is not None:
                f.close()
            os.remove(self.path)
        except OSError:
            pass

    # --- after the message -----------------------------------------------------------------------

    def check(self):
        """-> (sig, body sha256) when the envelope holds and the signature matches; else TableError (once:
        the hashers are let go)."""
        if self.error is not None:
            raise TableError(self.error[0], self.error[1])
        for key, want in (("v", 1), ("alg", "HS256")):
            if self._small(key) != want:
                raise TableError(key, "must be " + json.dumps(want))
        sig = self._small("sig")
        if not checks.is_hex(sig, 64):
            raise TableError("sig", "must be 64 lowercase hex digits")
        if not self.scan.streamed:
            raise TableError("body", "must be a string holding the table JSON")
        sha = binascii.hexlify(self.sha.digest()).decode()
        mac = self.mac.hexdigest()
        self.mac = self.sha = self.env = self._out = None  # checked once; the table loads next in this heap
        if not same_digest(mac, sig):
            e = TableError("sig", "signature does not match: wrong key or altered body")
            e.sha256, e.version = sha, None
            raise e
        return sig, sha

    def _small(self, key):
        raw = self.scan.got.get(key)
        try:
            return None if raw is None else json.loads(raw)
        except (ValueError, UnicodeError):
            return None


class CmdIn:
    """A command too big to take: drained, its top-level `id` kept if it has a usable one."""

    kind = "cmd"

    def __init__(self, size):
        self.size, self.error, self.feeding = size, None, True
        self.scan = Members("cmd", capture=("id",), cap=80)

    def write(self, buf, n):
        if self.feeding:
            try:
                self.scan.feed(buf, n)
            except Exception:  # not JSON from here on: an id found before it still names the command
                self.feeding = False

    def end(self):
        pass

    def fail(self, e):
        self.feeding = False

    def abort(self):
        pass

    def id(self):
        raw = self.scan.got.get("id") if self.scan is not None else None
        try:
            v = json.loads(raw) if raw else None
        except (ValueError, UnicodeError):
            return None
        return v if type(v) is str and 1 <= len(v) <= 64 else None


class Drain(CmdIn):
    """Any other message too big to take: read off the socket and forgotten."""

    kind = "drain"

    def __init__(self, size):
        self.size, self.error, self.feeding, self.scan = size, None, False, None
