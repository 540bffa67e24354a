"""Routes' caller prefixes (DESIGN §4 `caller`) packed into bytes, as the deny list is.

A tuple of prefix strings costs a board ~96 B per prefix (a str object and its text, plus the tuple),
so a 32 KiB table of one-caller routes did not fit an ESP32. Here a route's prefixes are one span of
"\n"-framed text, b"\n+3805\n+3806\n": a route keeps which object holds it and span = start | end << 10.
On MicroPython (SHARED) the spans of many routes lie in one bytearray of <= CHUNK bytes, filled as the
routes load (a long span gets an object of its own). routing._pick looks for b"\n" + caller[:n] + b"\n"
between start and end for each prefix length n the table has: a few keys made once per call, none per
route. On CPython, where heap is plenty, a route keeps its prefixes as a tuple of strings (span 0) and
_pick tests them with startswith, faster there; tests run the packed form on CPython too (SHARED).
"""

import sys

SHARED = sys.implementation.name == "micropython"  # tests flip it to run the board's form on CPython
CHUNK = 1024  # the largest shared piece (a board's heap is fragmented); a start fits 10 bits
_FIRST = 128  # the first pieces are smaller, so a table with few prefixes keeps little unused room
_OWN = 256  # a longer span gets an object of its own


class Packer:
    """Collects the routes' spans while a table loads; finish() -> (objects, lengths longest first): the
    objects the spans lie in (on CPython each route's tuple), which add() names by 1 + their index."""

    def __init__(self, kept):
        self.kept = kept  # table._kept: bytes of a buffer's start, made on a collected heap
        self.shared = SHARED
        self.chunks = []
        self.lengths = []
        self.buf = None
        self.at = 0  # 1 + the index of buf in chunks
        self.n = 0

    def add(self, prefixes):
        """A route's prefixes (checked strings) -> (1 + index of the object holding them, span), or (0, 0)
        for none."""
        if not prefixes:
            return 0, 0
        size = 1
        for p in prefixes:
            size += len(p) + 1
            if len(p) not in self.lengths:
                self.lengths.append(len(p))
        if not self.shared:
            self.chunks.append(tuple(prefixes))
            return len(self.chunks), 0
        if size > _OWN:
            out = bytearray(size)
            _fill(out, 0, prefixes)
            self.chunks.append(self.kept(out, size))
            return len(self.chunks), size << 10
        if self.buf is None or self.n + size > len(self.buf):
            self.buf = bytearray(max(size, min(CHUNK, _FIRST << min(len(self.chunks), 3))))
            self.chunks.append(self.buf)
            self.at = len(self.chunks)
            self.n = 0
        s = self.n
        _fill(self.buf, s, prefixes)
        self.n += size
        return self.at, s | (s + size) << 10

    def finish(self):
        self.buf = None
        return tuple(self.chunks), tuple(sorted(self.lengths, reverse=True))


def _fill(out, i, prefixes):
    out[i] = 10
    for p in prefixes:
        k = len(p)
        out[i + 1:i + 1 + k] = p.encode()
        out[i + 1 + k] = 10
        i += k + 1


def keys(caller, lengths):
    """[(n, b"\n" + caller[:n] + b"\n")] for the table's prefix lengths n, longest first. A key matches in
    a span only where one prefix equals caller[:n] (spans hold "+", digits and their "\n" frames), so the
    caller is cut at a "\n" of its own and no key can join two prefixes."""
    if not lengths:
        return ()
    cut = caller.find("\n")
    if cut >= 0:
        caller = caller[:cut]
    out = []
    for n in lengths:
        if n <= len(caller):
            out.append((n, b"\n" + caller[:n].encode() + b"\n"))
    return out


def prefixes(chunk, span):
    """A route's prefixes as strings."""
    if chunk is None:
        return ()
    if type(chunk) is tuple:
        return chunk
    return tuple(bytes(chunk[span & 1023:span >> 10]).decode().split("\n")[1:-1])
