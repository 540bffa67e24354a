"""A table's routes kept column by column (DESIGN §4), so a 32 KiB table of small routes fits a board.

A route as a named tuple cost ~128 B on the 64-bit unix port (a six-field tuple and its id str, half that
on an ESP32): 742 routes without callers kept 101 KB, more than the smallest board has free. Here a route
is one row of small integers:
- its id: a place in shared "\n"-framed pieces of text (b"\nr0\nr1\n", each <= PIECE bytes),
  piece << 16 | start << 6 | length (an id is 1-48 ASCII characters),
- its callers: the index (0: none) of the object its prefixes lie in (protocols.callerset) and the span in it,
- its target list: where its run of target indexes lies in shared bytes (protocols.targetlists; 529
  routes each with its own list kept a tuple each and needed a growing dict to share them),
- its `from`/`until` and the rest (port, hours, strategy, actions, closed dates, menu): the index of a
  tuple shared by every route with the same (a table has few distinct ones).
The rows lie in blocks of BLOCK routes, each column of a block one array (on CPython, a list): a heap that
has run a while is cut into holes of a few KB at most, so no piece the routes keep is bigger than 512 B.
~16 B a route plus its id's text and its target indexes on a board, and the same code on both interpreters.

routing._pick reads the columns block by block (Table.candidates gives each block's candidates as bytes);
everything else (the controller's impact and reachability, tests) gets a `Route`, a named tuple built when
asked for (routes[i], iteration), on CPython with the shared parts as properties by name.
"""

import sys
from collections import namedtuple

from protocols import callerset, targetlists

SMALL = sys.implementation.name == "micropython"
if SMALL:
    from array import array

PIECE = 256  # the largest id piece; a start fits 10 bits
_FIRST = 64  # the first pieces are smaller, so a table of few routes keeps little unused room
BLOCK = 128  # routes per block: an "I" column's block is 512 B; a candidate k << 1 | named fits a byte
SHIFT = 7  # BLOCK == 1 << SHIFT

# indexes in a route's `rest` tuple
PORT, HOURS, STRATEGY, FALLBACK, AFTER_HOURS, CLOSED, MENU = 0, 1, 2, 3, 4, 5, 6

# A route as read by name: callers, span: its packed caller prefixes (protocols.callerset), or None, 0;
# targets: the target ids; when: None, or (start, until) from `from`/`until` (either may be None);
# rest: (port, hours, strategy, fallback, after_hours, closed, menu): hours holds one small int a window,
# weekday bit mask << 22 | start minute << 11 | end minute (read by name: the triples), the actions are
# (name, target id) pairs, closed the route's closed dates (the union of its calendars, DESIGN §5a) or None
# (the table's), menu the id of the menu it plays.
_Route = namedtuple("Route", ("id", "callers", "span", "targets", "when", "rest"))
if SMALL:
    Route = _Route
else:
    class Route(_Route):
        """The controller reads routes by name (impact, reachability): the shared parts as properties."""
        __slots__ = ()
        caller = property(lambda r: callerset.prefixes(r.callers, r.span))  # the prefixes as strings
        port = property(lambda r: r.rest[PORT])
        start = property(lambda r: None if r.when is None else r.when[0])
        until = property(lambda r: None if r.when is None else r.when[1])
        hours = property(lambda r: windows(r.rest[HOURS]))
        strategy = property(lambda r: r.rest[STRATEGY])
        fallback = property(lambda r: r.rest[FALLBACK])
        after_hours = property(lambda r: r.rest[AFTER_HOURS])
        closed = property(lambda r: r.rest[CLOSED])
        menu = property(lambda r: r.rest[MENU])


def windows(hours):
    """A route's or probe's packed hours as (weekday bit mask, start minute, end minute) triples, or None."""
    return None if hours is None else tuple((w >> 22, w >> 11 & 2047, w & 2047) for w in hours)


def column(code, n=0):
    """A column block of n zeros: an array of `code` ("H": 2 B, "I": 4 B) on a board, else a list."""
    if SMALL:
        return array(code, bytes(n * (2 if code == "H" else 4)))
    return [0] * n


_COLUMNS = (("id_at_", "I"), ("caller_of", "H"), ("spans", "I"), ("targets_of", "H"), ("when_of", "H"),
            ("rest_of", "H"))


class Routes:
    """The routes of a table in table order: len(), routes[i] and iteration give `Route`s. Each column
    attribute is a list of blocks; route i is at [i >> SHIFT][i & (BLOCK - 1)]."""

    def __init__(self, n=0, targets=()):
        """`n`: the routes the source counted (0: unknown, a block grows as routes come); `targets`: the
        table's target ids (its targets dict), which the routes' lists name."""
        self.n = 0
        self.counted = n
        self.id_at_ = []  # piece << 16 | start << 6 | length
        self.pieces = []  # the ids' text
        self._used = 0  # bytes of the last piece in use
        self.caller_of = []  # index in chunks, 0: no callers
        self.spans = []
        self.chunks = (None,)  # None, then the objects the caller spans lie in (callerset.Packer.finish)
        self.targets_of = []  # protocols.targetlists' int: where the route's list lies ("H" blocks, "I" once needed)
        self.lists = targetlists.TargetLists(targets)  # once loaded, (target ids, pieces): targetlists.at reads it
        self.when_of = []  # 0: no `from`/`until`
        self.whens = [None]
        self.rest_of = []
        self.rests = []
        self._index = ({None: 0}, {})  # while loading: when, rest -> index

    # ------------------------------------------------------------ loading

    def add(self, rid, caller, span, targets, when, rest):
        """Append a checked route (`caller`, `span`: callerset.Packer.add's answer)."""
        i = self.n
        k = i & (BLOCK - 1)
        if not k:  # a new block, sized for the routes counted (or grown as they come)
            size = min(BLOCK, max(0, self.counted - i))
            for name, code in _COLUMNS:
                getattr(self, name).append(column(code, size))
        b = i >> SHIFT
        _put(self.id_at_[b], k, self._text(rid))
        _put(self.caller_of[b], k, caller)
        _put(self.spans[b], k, span)
        _put_wide(self.targets_of, b, k, self.lists.add(targets))
        _put(self.when_of[b], k, _intern(self._index[0], self.whens, when))
        _put(self.rest_of[b], k, _intern(self._index[1], self.rests, rest))
        self.n = i + 1

    def _text(self, rid):
        raw = rid.encode()
        k = len(raw)
        pieces = self.pieces
        buf = pieces[-1] if pieces else None
        if buf is None or self._used + k + 1 > len(buf):
            buf = bytearray(min(PIECE, _FIRST << min(len(pieces), 3)))
            buf[0] = 10
            pieces.append(buf)
            self._used = 1
        s = self._used
        buf[s:s + k] = raw
        buf[s + k] = 10
        self._used = s + k + 1
        return (len(pieces) - 1) << 16 | s << 6 | k

    def find(self, rid):
        """The index of the route with id `rid`, else -1 (a scan: for the duplicate check and look-ups)."""
        key = b"\n" + rid.encode() + b"\n"
        for p in range(len(self.pieces)):
            s = self.pieces[p].find(key)
            if s >= 0:
                at = p << 16 | (s + 1) << 6 | (len(key) - 2)
                for i in range(self.n):
                    if self.id_at_[i >> SHIFT][i & (BLOCK - 1)] == at:
                        return i
        return -1

    def finish(self, chunks):
        """Loading is over: the caller pieces the spans lie in (callerset.Packer.finish)."""
        self.chunks = (None,) + chunks
        self.lists = self.lists.finish()
        self._index = None

    # ------------------------------------------------------------ reading

    def id_at(self, i):
        at = self.id_at_[i >> SHIFT][i & (BLOCK - 1)]
        s = (at >> 6) & 1023
        return str(self.pieces[at >> 16][s:s + (at & 63)], "ascii")

    def targets_at(self, i):
        return targetlists.at(self.lists, self.targets_of[i >> SHIFT][i & (BLOCK - 1)])

    def rest_at(self, i):
        return self.rests[self.rest_of[i >> SHIFT][i & (BLOCK - 1)]]

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if type(i) is slice:
            return list(self)[i]
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError("route index out of range")
        b, k = i >> SHIFT, i & (BLOCK - 1)
        return Route(self.id_at(i), self.chunks[self.caller_of[b][k]], self.spans[b][k], self.targets_at(i),
                     self.whens[self.when_of[b][k]], self.rest_at(i))

    def __iter__(self):
        for i in range(self.n):
            yield self[i]

    def __eq__(self, other):
        return list(self) == list(other)


def _put(block, k, value):
    """Route k of a column's block: set where the block was sized for it, else appended."""
    if k < len(block):
        block[k] = value
    else:
        block.append(value)


def _put_wide(blocks, b, k, value):
    """_put for a column whose blocks start as "H" and become "I" when a value needs it (a table's first
    target lists fit 16 bits: the tables of few lists keep 2 B a route, not 4)."""
    block = blocks[b]
    _put(block, k, value)
    if block[k] != value:  # an "H" array keeps the low 16 bits
        block = blocks[b] = array("I", block)
        block[k] = value


def _intern(index, values, value):
    """The index of `value` in `values`, appended when new: one copy of each distinct tuple."""
    k = index.get(value)
    if k is None:
        k = index[value] = len(values)
        values.append(value)
    return k
