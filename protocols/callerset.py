"""Routes' caller prefixes (DESIGN §4 `caller`) packed into bytes, two digits a byte.

A tuple of prefix strings costs a board ~96 B per prefix (a str object and its text, plus the tuple),
and even as "\n"-framed text 65 routes of 40 prefixes kept 27 KB, more than esp32-2gsm had beside the
loader. Here a prefix is its characters as nibbles, two a byte ("+" = 0xA, then the digits; an odd count
ends with the pad nibble 0xB), and each prefix is framed by 0xFF bytes, a byte no prefix holds:
"+3805", "+38067" -> FF A3 80 5B FF A3 80 67 FF. A route's prefixes are one such span; it keeps which
object holds it and span = start | end << 10. On MicroPython (SHARED) the spans of many routes lie in one
bytearray of <= CHUNK bytes (a long span gets an object of its own; a piece that finds no free room that
big gives way to one the span's size), each placed once its route's parsed objects are collected (Packer).
routing._pick looks for FF + pack(caller[:n]) + FF between start and end for each prefix length n the
table has: a few keys made once per call, none per route. On CPython, where heap is plenty, a route keeps
its prefixes as a tuple of strings (span 0) and _pick tests them with startswith, faster there; tests run
the packed form on CPython too (SHARED).
"""

import sys

SHARED = sys.implementation.name == "micropython"  # tests flip it to run the board's form on CPython
CHUNK = 1024  # the largest shared piece (a board's heap is fragmented); a start fits 10 bits
_FIRST = 128  # the first pieces are smaller, so a table with few prefixes keeps little unused room
_OWN = 256  # a longer span gets an object of its own
FRAME = 0xFF  # between prefixes: a packed byte holds nibbles 0-0xB only
_PLUS, _PAD = 0xA, 0xB


def size_of(prefix):
    """Bytes a checked prefix takes packed, its frame after it included."""
    return (len(prefix) + 1) // 2 + 1


class Packer:
    """Collects the routes' spans while a table loads, in two steps a route: stage(prefixes) packs them
    while the route's parsed objects are alive, place() -> (1 + index of the object holding them, span),
    or (0, 0) for none, once they are gone. finish() -> (objects, lengths longest first): the objects the
    spans lie in (on CPython each route's tuple).

    On a board a span is staged in one reused piece of _OWN bytes (a longer one in a bytearray of its
    own) and place() copies it to where it is kept: a new shared piece is then made on a heap the loader
    has just collected, not among a route's parsed strings, where the hole they leave would cut the free
    heap into pieces too small for the next one."""

    def __init__(self, kept):
        self.kept = kept  # table._kept: bytes of a buffer's start, made on a collected heap
        self.shared = SHARED
        self.chunks = []
        self.lengths = []
        self.buf = None
        self.at = 0  # 1 + the index of buf in chunks
        self.n = 0
        self.staged = None  # CPython: the tuple; a board: the piece the span was staged in
        self.size = 0  # bytes staged (0: none)
        self.scratch = bytearray(_OWN) if self.shared else None

    def stage(self, prefixes):
        """Packs a route's prefixes (checked strings), to be placed once its parsed objects are gone."""
        self.size = 0
        if not prefixes:
            return
        size = 1
        for p in prefixes:
            size += size_of(p)
            if len(p) not in self.lengths:
                self.lengths.append(len(p))
        self.size = size
        if not self.shared:
            self.staged = tuple(prefixes)
            return
        self.staged = self.scratch if size <= _OWN else bytearray(size)
        _fill(self.staged, 0, prefixes)

    def place(self):
        """(1 + the index of the object holding the staged span, span), or (0, 0) when none was staged."""
        size = self.size
        if not size:
            return 0, 0
        staged, self.staged, self.size = self.staged, None, 0
        if not self.shared:
            self.chunks.append(staged)
            return len(self.chunks), 0
        if size > _OWN:
            self.chunks.append(self.kept(staged, size))
            return len(self.chunks), size << 10
        if self.buf is None or self.n + size > len(self.buf):
            try:
                self.buf = bytearray(max(size, min(CHUNK, _FIRST << min(len(self.chunks), 3))))
            except MemoryError:  # no free piece that big (a heap cut into holes): one just for this span
                self.buf = bytearray(size)
            self.chunks.append(self.buf)
            self.at = len(self.chunks)
            self.n = 0
        s = self.n
        self.buf[s:s + size] = memoryview(staged)[:size]
        self.n += size
        return self.at, s | (s + size) << 10

    def finish(self):
        """Loading is over: the last shared piece is cut to its used bytes when there is room to copy it."""
        self.scratch = None
        if self.shared and self.buf is not None and self.n < len(self.buf):
            try:
                self.chunks[self.at - 1] = self.kept(self.buf, self.n)
            except MemoryError:  # kept whole: the table still loads
                pass
        self.buf = None
        return tuple(self.chunks), tuple(sorted(self.lengths, reverse=True))


def _fill(out, i, prefixes):
    """Packs `prefixes` at out[i:], each framed (see the module's docstring)."""
    out[i] = FRAME
    i += 1
    for p in prefixes:
        hi = -1
        for ch in p:
            v = _PLUS if ch == "+" else ord(ch) - 48
            if hi < 0:
                hi = v
            else:
                out[i] = hi << 4 | v
                i += 1
                hi = -1
        if hi >= 0:
            out[i] = hi << 4 | _PAD
            i += 1
        out[i] = FRAME
        i += 1


def keys(caller, lengths):
    """[(n, FF + pack(caller[:n]) + FF)] for the table's prefix lengths n, longest first, where caller[:n]
    could be a prefix ("+" only first, then digits): a key then matches in a span only where one prefix
    equals caller[:n]. Made on every call, through bytes.fromhex ("+" as "a", the pad as "b"): a few
    objects a length and two string scans, the least a call pays for packed prefixes."""
    if not lengths:
        return ()
    m = len(caller)
    if caller.strip("+0123456789") or caller.rfind("+") > 0:  # anything but ASCII digits after a first "+"
        m = _packable(caller)
    text = caller.replace("+", "ffa", 1) if caller.startswith("+") else "ff" + caller  # text[2 + i]: caller[i]
    out = []
    for n in lengths:
        if n <= m:
            out.append((n, bytes.fromhex(text[:n + 2] + ("bff" if n & 1 else "ff"))))
    return out


def _packable(caller):
    """How many of the caller's first characters a prefix could equal: "+" first, then ASCII digits."""
    plus = caller.startswith("+")
    i = 1 if plus else 0
    while i < len(caller) and "0" <= caller[i] <= "9":
        i += 1
    return 0 if plus and i == 1 else i


def prefixes(chunk, span):
    """A route's prefixes as strings."""
    if chunk is None:
        return ()
    if type(chunk) is tuple:
        return chunk
    out = []
    for packed in bytes(chunk[span & 1023:span >> 10]).hex().split("ff")[1:-1]:
        if packed[-1] == "b":
            packed = packed[:-1]
        out.append("+" + packed[1:] if packed[0] == "a" else packed)
    return tuple(out)
