"""Routes' target lists (DESIGN §4 `targets`) packed as target indexes in bytes, as caller prefixes are.

A route kept its target ids as a tuple, one per distinct list, and the dict that found the distinct ones
grew while the table loaded: 529 routes each with its own list of one to three targets
(hil_tests.tables.distinct_routes_table) needed 64 KB of free heap, more than esp32-2gsm has. Here a list
is a run of target indexes (one byte each; two, little-endian, when the table has more than 256 targets)
in shared pieces of <= PIECE bytes, and a route keeps one int saying where its run lies. A list already in
the pieces (alone, or inside a longer list) is found by searching them: nothing grows while the table
loads but the pieces themselves. The ids come back through the table's ids, kept in blocks of <= BLOCK,
as a tuple built when asked for (routing._dial, Route views). The same code on both interpreters.
"""

PIECE = 256  # the largest shared piece; a start fits 8 bits
_FIRST = 32  # the first pieces are smaller, so a table of few lists keeps little unused room
_RUN = 63  # the most entries of a run in a shared piece (6 bits); a longer list gets an object of its own
BLOCK = 128  # target ids per block of the index -> id table (512 B on an ESP32)
SHIFT = 7  # BLOCK == 1 << SHIFT


class TargetLists:
    """The target lists of one table's routes while they load: add(ids) -> an int (0: no targets);
    finish() -> (ids, pieces), all a table keeps of them (a tuple: less heap than this object), which at()
    reads.

    The int is (piece + 1) << 14 | start << 6 | entries, entries 0 meaning the whole piece (a long list's
    own object): below 2 ** 30, so a board reads it from an "I" array without making a long int."""

    def __init__(self, targets):
        """`targets`: the table's target ids (its targets dict): a target's index is its place here."""
        ids, block = [], []
        for tid in targets:
            block.append(tid)
            if len(block) == BLOCK:
                ids.append(tuple(block))
                block = []
        if block:
            ids.append(tuple(block))
        self.ids = tuple(ids)
        self.width = _width(self.ids)
        self.pieces = []
        self._used = 0  # bytes in use of the shared piece being filled
        self._open = -1  # its index in pieces (-1: none)

    # ------------------------------------------------------------ loading

    def add(self, ids):
        """The int for a checked list of this table's target ids, the list packed unless already there."""
        n = len(ids)
        if not n:
            return 0
        run = self._run(ids)
        if n > _RUN:  # a long list: an object of its own, shared only with an equal list
            run = bytes(run)
            for p in range(len(self.pieces)):
                if p != self._open and self.pieces[p] == run:
                    return (p + 1) << 14
            self.pieces.append(run)
            return len(self.pieces) << 14
        found = self._find(run)
        if found:
            return found | n
        size = len(run)
        p = self._open
        if p < 0 or self._used + size > len(self.pieces[p]):
            self._close()
            self.pieces.append(bytearray(min(PIECE, _FIRST << min(len(self.pieces), 3))))
            p = self._open = len(self.pieces) - 1
            self._used = 0
        s = self._used
        self.pieces[p][s:s + size] = run
        self._used = s + size
        return (p + 1) << 14 | s << 6 | n

    def _run(self, ids):
        w = self.width
        run = bytearray(len(ids) * w)
        j = 0
        for tid in ids:
            k = self._index(tid)
            run[j] = k & 255
            if w == 2:
                run[j + 1] = k >> 8
            j += w
        return run

    def _index(self, tid):
        for b in range(len(self.ids)):
            block = self.ids[b]
            if tid in block:
                return b << SHIFT | block.index(tid)
        raise KeyError(tid)  # the loader checked every id: a bug

    def _find(self, run):
        """(piece + 1) << 14 | start << 6 where `run` lies (at a whole entry, start < PIECE), else 0."""
        w = self.width
        for p in range(len(self.pieces)):
            piece = self.pieces[p]
            end = self._used if p == self._open else len(piece)
            s = piece.find(run, 0, end)
            while 0 <= s < PIECE:
                if not s % w:
                    return (p + 1) << 14 | s << 6
                s = piece.find(run, s + 1, end)
        return 0

    def _close(self):
        """The shared piece being filled, cut to its used bytes: no unused tail is kept or searched."""
        p = self._open
        if p >= 0:
            self.pieces[p] = bytes(memoryview(self.pieces[p])[:self._used])
        self._open = -1

    def finish(self):
        """Loading is over: (ids, pieces), the last piece cut to size."""
        self._close()
        return self.ids, tuple(self.pieces)


def at(lists, v):
    """The target ids of the list `v` (TargetLists.add's int) in `lists` (TargetLists.finish's), a tuple."""
    if not v:
        return ()
    ids, pieces = lists
    piece = pieces[(v >> 14) - 1]
    n = v & 63
    s = (v >> 6) & 255 if n else 0
    if len(ids) == 1:  # the common case, the fastest on MicroPython: a slice iterated
        block = ids[0]
        return tuple([block[k] for k in (piece[s:s + n] if n else piece)])
    if _width(ids) == 1:
        return tuple([_id(ids, k) for k in (piece[s:s + n] if n else piece)])
    e = s + 2 * n if n else len(piece)
    return tuple([_id(ids, piece[j] | piece[j + 1] << 8) for j in range(s, e, 2)])


def _width(ids):
    """Bytes a target index takes: one for up to 256 targets (two blocks of ids), else two."""
    return 1 if len(ids) <= 256 // BLOCK else 2


def _id(ids, k):
    return ids[k >> SHIFT][k & (BLOCK - 1)]
