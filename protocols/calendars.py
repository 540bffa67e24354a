"""Closed dates (DESIGN §4 `closed`, §5a `calendars` and route `closed`) packed four bytes a date.

Kept as tuples of str, 2,499 dates in a table's `closed` list, or 16 calendars whose dates 64 routes named
in pairs (each route kept the union as its own tuple), took more free heap than esp32-2gsm has (well over
300 KB on the unix port for the calendars). Here a date is (year high, year low, month, day) in shared
bytes pieces of <= PIECE bytes; a calendar is a tuple of pieces, and a route's union of calendars is the
tuple of their pieces (shared, never copied). `in` searches the pieces; iteration gives the dates as
"YYYY-MM-DD" strings, each once, for the controller. The same code on both interpreters.
"""

import gc
import sys

PIECE = 1024  # a board's heap is cut into holes: no piece bigger than this
_SMALL_HEAP = sys.implementation.name == "micropython"


def _key(date):
    """"YYYY-MM-DD" -> its four bytes, or None when it is no such date text."""
    if type(date) is not str or len(date) != 10 or date[4] != "-" or date[7] != "-":
        return None
    y, m, d = date[:4], date[5:7], date[8:]
    if not (y.isdigit() and m.isdigit() and d.isdigit()):
        return None
    y = int(y)
    return bytes((y >> 8, y & 255, int(m), int(d)))


class Dates:
    """A set of dates read by `in` (routing.decide step 3) and iteration; compares and hashes by its packed
    pieces, in order, as the tuple of dates it replaces did (routes compare by content; the routes' rest
    tuples are interned by hash while a table loads, so neither makes a date string)."""

    def __init__(self, pieces):
        self.pieces = pieces  # a tuple of bytes, 4 bytes a date

    def __contains__(self, date):
        key = _key(date)
        if key is None:
            return False
        for p in self.pieces:
            i = p.find(key)
            while i >= 0:
                if not i & 3:
                    return True
                i = p.find(key, i + 1)
        return False

    def __iter__(self):
        seen = set()
        for p in self.pieces:
            for i in range(0, len(p), 4):
                d = "%04d-%02d-%02d" % (p[i] << 8 | p[i + 1], p[i + 2], p[i + 3])
                if d not in seen:
                    seen.add(d)
                    yield d

    def __len__(self):
        return len(tuple(iter(self)))

    def __bool__(self):
        return any(self.pieces)

    def __eq__(self, other):
        return isinstance(other, Dates) and self.pieces == other.pieces

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self.pieces)

    def __repr__(self):
        return "Dates(%r)" % (tuple(self),)


def pack(dates):
    """Checked "YYYY-MM-DD" strings (any iterable, read once) -> a tuple of pieces (empty: ())."""
    pieces, buf, n = [], bytearray(PIECE), 0
    for d in dates:
        if n == PIECE:
            pieces.append(_kept(buf, n))
            n = 0
        buf[n:n + 4] = _key(d)
        n += 4
    if n:
        pieces.append(_kept(buf, n))
    return tuple(pieces)


def union(calendars):
    """Dates of the union of packed calendars (tuples of pieces), or () when they hold no date."""
    pieces = ()
    for c in calendars:
        pieces += c
    return Dates(pieces) if pieces else ()


def _kept(buf, n):
    if _SMALL_HEAP:
        gc.collect()  # the parser's leftovers go first: what is kept lies packed
    return bytes(memoryview(buf)[:n])
