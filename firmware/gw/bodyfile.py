"""A table body loaded from flash a member, a route, a target at a time (protocols.table.load_from).

The body never sits in the heap whole: its top-level members are found by streaming the file
through gw.jstream once, and a list or object member is then read through a small window that
slides over the file, each element parsed on its own (jsonscan.value_end finds where it ends).
"""

import binascii
import hashlib
import json

from gw.jstream import Members
from protocols import checks, jsonscan, table
from protocols.checks import at, item
from protocols.errors import ContractError
from protocols.sign import Hmac256, same_digest, to_key
from protocols.table import TableError

PIECE = 512
LOOK = 512  # the window holds at least this much ahead of an element, or the rest of the member (it grows
# for a longer one): no piece of heap bigger than this is needed for a table of small routes, even on a crowded heap
MAX_ITEM = 8192  # one route, target or field value read at once: bigger is refused
MAX_MEMBERS = 64  # top-level fields of a body


class FileText:
    """`src` for table.load_from over body bytes [off, off + length) of a file; `hashers` see every byte."""

    def __init__(self, path, off, length, hashers=()):
        self.f, self.off, self.spans, self.counts = open(path, "rb"), off, {}, {}
        try:
            self._scan(length, hashers)
        except BaseException:
            self.f.close()
            raise

    def _scan(self, length, hashers):
        self.f.seek(self.off)
        self._scanner = scan = Members("body", on_member=self._span)
        buf, left = bytearray(PIECE), length
        while left:
            k = self.f.readinto(memoryview(buf)[:min(PIECE, left)])
            if not k:
                raise ContractError("body", "is cut short on flash")
            for h in hashers:
                h.update(memoryview(buf)[:k])
            scan.feed(buf, k)
            left -= k
        scan.finish()
        self._scanner = None

    def _span(self, key, s, e):
        if key is not None:
            if len(self.spans) >= MAX_MEMBERS and key not in self.spans:
                raise ContractError("body", "has more than %d top-level fields" % MAX_MEMBERS)
            self.spans[key] = (s, e)
            self.counts[key] = self._scanner.items

    def count(self, key):
        """How many elements the list (or members the object) `key` has, as the scan counted them."""
        return self.counts.get(key, 0)

    def close(self):
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __contains__(self, key):
        return key in self.spans

    def _text(self, key, limit=MAX_ITEM):
        s, e = self.spans[key]
        if e - s > limit:
            raise ContractError(key, "is longer than %d bytes, more than a gateway reads at once" % limit)
        self.f.seek(self.off + s)
        return self.f.read(e - s)

    def get_raw_null(self, key):
        s, e = self.spans[key]
        return e - s == 4 and self._text(key) == b"null"

    def get(self, key):
        return checks.parse_json(self._text(key), key) if key in self.spans else None

    def members(self, key):
        w = self._window(key, 123, "must be a JSON object")
        for raw in w.items(key, True):
            try:
                name = json.loads(raw)
            except (ValueError, UnicodeError):
                raise ContractError(key, "has a key that is not a JSON string")
            w.colon(key)
            path = at(key, str(name))
            yield name, checks.parse_json(w.value(path), path)

    def elements(self, key):
        i = 0
        for raw in self._window(key, 91, "must be a list").items(key, False):
            yield checks.parse_json(raw, item(key, i))
            i += 1

    def check_rest(self, known):
        """Members the loader does not read must still be strict JSON: checked a piece at a time."""
        check = getattr(checks, "check_json", checks.parse_json)
        for key in self.spans:
            if key in known:
                continue
            s, e = self.spans[key]
            if e - s <= MAX_ITEM:
                check(self._text(key), key)
                continue
            self.f.seek(self.off + s)
            first = self.f.read(1)
            for _ in self.members(key) if first == b"{" else self.elements(key):
                pass

    def _window(self, key, opener, why):
        s, e = self.spans[key]
        w = _Window(self.f, self.off + s, self.off + e)
        if w.peek() != opener:
            raise ContractError(key, why)
        w.i += 1
        return w


class _Window:
    """Bytes [start, end) of a file read through one reused buffer (no garbage between the table's
    objects, so the heap does not fragment); `buf[i:n]` is what is not consumed yet. Past `n` the
    buffer holds blanks, so jsonscan.value_end stops there instead of reading stale bytes."""

    def __init__(self, f, start, end):
        self.f, self.next, self.end, self.i, self.n = f, start, end, 0, 0
        self.buf = bytearray(LOOK)

    def _fill(self, want):
        if self.n - self.i >= want or self.next >= self.end:
            return
        rest = self.n - self.i
        if want > len(self.buf):
            buf = bytearray(want)
            buf[:rest] = memoryview(self.buf)[self.i:self.n]
            self.buf = buf
        else:
            mv = memoryview(self.buf)
            mv[:rest] = mv[self.i:self.n]
        self.f.seek(self.next)
        k = self.f.readinto(memoryview(self.buf)[rest:rest + min(len(self.buf) - rest, self.end - self.next)])
        if not k:
            raise ContractError("body", "is cut short on flash")
        self.next += k
        self.i, self.n = 0, rest + k
        for j in range(self.n, len(self.buf)):
            self.buf[j] = 32

    def peek(self):
        """The next byte that is not white space, or None at the end."""
        while True:
            self._fill(1)
            b = self.buf
            while self.i < self.n and b[self.i] in b" \t\r\n":
                self.i += 1
            if self.i < self.n:
                return b[self.i]
            if self.next >= self.end:
                return None

    def value(self, path):
        """The raw text of the value starting here (the window grows for a long one, up to MAX_ITEM)."""
        self.peek()
        want = LOOK
        while True:
            self._fill(want)
            whole = self.next >= self.end
            try:
                e = jsonscan.value_end(self.buf, self.i, path)
                if e < self.n or (whole and e <= self.n):
                    raw, self.i = self.buf[self.i:e], e
                    return raw
            except ContractError:
                if whole:
                    raise
            if whole or want >= MAX_ITEM:
                raise ContractError(path, "is longer than %d bytes, more than a gateway reads at once" % MAX_ITEM)
            want *= 2

    def colon(self, path):
        if self.peek() != 58:
            raise ContractError(path, "is not valid JSON (expected ':')")
        self.i += 1

    def items(self, path, keyed):
        """Each element (or, keyed, each member's key) of the list or object just opened."""
        closer = 125 if keyed else 93
        if self.peek() == closer:
            return
        while True:
            if keyed and self.peek() != 34:
                raise ContractError(path, "is not valid JSON (expected a key)")
            yield self.value(path)
            c = self.peek()
            if c == 44:
                self.i += 1
                continue
            if c == closer:
                return
            raise ContractError(path, "is not valid JSON (expected ',' or '%s')" % chr(closer))


def load(path, off, length, gateway, newer_than, sha256=None, key=None, sig=None):
    """The Table in a body file. With `key` and `sig` the body's HMAC is checked on the way (boot);
    without `sha256` it is computed. TableError carries `sha256` and `version` when known."""
    sh = hashlib.sha256() if sha256 is None else None
    mac = Hmac256(to_key(key)) if sig is not None else None
    try:
        with FileText(path, off, length, [h for h in (sh, mac) if h is not None]) as src:
            if mac is not None and not same_digest(mac.hexdigest(), sig):
                raise TableError("sig", "signature does not match: wrong key or altered body")
            if sh is not None:
                sha256 = binascii.hexlify(sh.digest()).decode()
            try:
                return table.load_from(src, sha256, gateway=gateway, newer_than=newer_than)
            except TableError as e:
                e.sha256, e.version = sha256, _version(src)
                raise
    except ContractError as e:
        if not isinstance(e, TableError):
            e = TableError(e.path, e.reason)
        if not hasattr(e, "sha256"):
            e.sha256, e.version = sha256, None
        raise e


def _version(src):
    try:
        v = src.get("version")
        return v if type(v) is int and v > 0 else None
    except Exception:
        return None
