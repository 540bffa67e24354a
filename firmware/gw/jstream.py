"""The top-level members of one JSON object, fed in pieces as they arrive (MQTT, a flash file).

A board cannot hold a 32 KiB table in one piece of heap, so a table envelope is scanned while it
is read from the socket: small members are kept as text (`got`), one string member may be
decoded on the fly into a sink (`stream`: the envelope's `body`), and every member's span is
reported to `on_member(key, start, end)` (offsets from the first byte fed), `items` then holding
how many elements it has (a reader sizes its list once instead of growing it on a crowded heap).
Values are only delimited here, as in protocols.jsonscan; whoever uses a value parses it. Errors
are ContractError(path, "is not valid JSON (...)").
"""

import json

from protocols.errors import ContractError

PRE, KEY0, KEYN, KEY, COLON, VAL0, VAL, STR, AFTER, DONE = range(10)
_WS = b" \t\r\n"
_END = b",}] \t\r\n"
_ESCAPES = {34: b'"', 92: b"\\", 47: b"/", 98: b"\b", 102: b"\f", 110: b"\n", 114: b"\r", 116: b"\t"}
MAX_KEY = 200  # longer keys are kept as None: no member the board wants has one


class Members:
    def __init__(self, path, capture=(), cap=200, stream=None, sink=None, on_member=None):
        self.path, self.capture, self.cap = path, capture, cap
        self.stream, self.sink, self.on_member = stream, sink, on_member
        self.got = {}  # key -> raw text of a captured member (None when longer than cap)
        self.streamed = False  # the `stream` member was a string and went to the sink
        self.items = 0  # elements (an object's: members) directly inside the member last reported
        self._fresh = False  # directly inside it, after '[', '{' or ',': the next byte starts one
        self.st, self.pos = PRE, 0
        self.key = self._kb = self._cb = None
        self._start = self._depth = 0
        self._instr = self._esc = self._scalar = False
        self._pend = bytearray()  # an escape cut by a piece boundary
        self._hi = 0  # a high surrogate waiting for its low half

    def _bad(self, why):
        raise ContractError(self.path, "is not valid JSON (" + why + ")")

    def feed(self, b, n=None):
        """Scan b[:n] (bytes or bytearray)."""
        n = len(b) if n is None else n
        i = 0
        while i < n:
            st = self.st
            if st == VAL:
                i = self._value(b, i, n)
                continue
            if st == STR:
                i = self._string(b, i, n)
                continue
            if st == KEY:
                i = self._keytext(b, i, n)
                continue
            c = b[i]
            if c in _WS:
                i += 1
                continue
            if st == PRE and c == 123:
                self.st = KEY0
            elif (st == KEY0 or st == KEYN) and c == 34:
                self.st, self._kb, self._esc = KEY, bytearray(b'"'), False
            elif st == KEY0 and c == 125:
                self.st = DONE
            elif st == COLON and c == 58:
                self.st = VAL0
            elif st == VAL0:
                self._start = self.pos + i
                if c == 34 and self.key is not None and self.key == self.stream:
                    self.st, self.streamed = STR, True
                else:
                    self.st, self._depth, self._instr, self._esc = VAL, 0, False, False
                    self.items, self._fresh = 0, False
                    self._scalar = c not in b'"{['
                    self._cb = bytearray() if self.key in self.capture else None
                    continue
            elif st == AFTER and c == 44:
                self.st = KEYN
            elif st == AFTER and c == 125:
                self.st = DONE
            else:
                self._bad("unexpected %r at byte %d" % (chr(c), self.pos + i))
            i += 1
        self.pos += n

    def finish(self):
        """The input ended: it must have been one whole object."""
        if self.st != DONE:
            self._bad("cut short" if self.st != PRE else "no object")

    def _keytext(self, b, i, n):
        s = i
        while i < n:
            if self._esc:
                self._esc, i = False, i + 1
                continue
            c = b[i]
            if c == 92:
                self._esc = True
            elif c == 34:
                i += 1
                self._keep(self._kb, b, s, i, MAX_KEY + 2)
                kb, self._kb = self._kb, None
                try:
                    self.key = json.loads(bytes(kb)) if len(kb) <= MAX_KEY else None
                except (ValueError, UnicodeError):
                    self._bad("bad key")
                self.st = COLON
                return i
            i += 1
        self._keep(self._kb, b, s, n, MAX_KEY + 2)
        return n

    @staticmethod
    def _keep(buf, b, s, e, cap):
        if buf is not None and len(buf) <= cap:
            buf.extend(b[s:min(e, s + cap + 1)])

    def _value(self, b, i, n):
        """Skip a value (strings found with find(), structure byte by byte); keep it if captured."""
        s = i
        while i < n:
            if self._instr:
                if self._esc:
                    self._esc, i = False, i + 1
                    continue
                q = b.find(b'"', i, n)
                k = b.find(b"\\", i, q if q >= 0 else n)
                if k >= 0:
                    i = k + 1
                    self._esc = True
                elif q >= 0:
                    i, self._instr = q + 1, False
                    if self._depth == 0:
                        return self._ended(b, s, i)
                else:
                    i = n
                continue
            c = b[i]
            if self._scalar:
                if c in _END:
                    return self._ended(b, s, i)
            elif self._depth == 1 and c not in _WS:  # directly inside the member's list or object
                if c == 44:
                    self._fresh = True
                elif self._fresh and c != 93 and c != 125:
                    self.items += 1  # an element (or, in an object, a key) starts
                    self._fresh = False
                if c == 34:
                    self._instr = True
                elif c == 123 or c == 91:
                    self._depth += 1
                elif c == 125 or c == 93:
                    self._depth -= 1
                    return self._ended(b, s, i + 1)
            elif c == 34:
                self._instr = True
            elif c == 123 or c == 91:
                self._depth += 1
                if self._depth == 1:
                    self._fresh = True
            elif c == 125 or c == 93:
                self._depth -= 1
                if self._depth <= 0:
                    return self._ended(b, s, i + 1)
            i += 1
        self._keep(self._cb, b, s, n, self.cap)
        return n

    def _ended(self, b, s, i):
        self._keep(self._cb, b, s, i, self.cap)
        if self._cb is not None:
            self.got[self.key] = bytes(self._cb) if len(self._cb) <= self.cap else None
            self._cb = None
        return self._member_done(i)

    def _member_done(self, i):
        if self.on_member is not None:
            self.on_member(self.key, self._start, self.pos + i)
        self.st = AFTER
        return i

    # ------------------------------------------------------------ the streamed string

    def _string(self, b, i, n):
        """Decode the streamed string's escapes into the sink, a run of plain bytes at a time."""
        while i < n:
            if self._pend:
                self._pend.append(b[i])
                i += 1
                p = self._pend
                if len(p) == 2 and p[1] != 117 or len(p) == 6:
                    self._escape(p)
                    self._pend = bytearray()
                continue
            q = b.find(b'"', i, n)
            k = b.find(b"\\", i, q if q >= 0 else n)
            stop = k if k >= 0 else (q if q >= 0 else n)
            if stop > i:
                if self._hi:
                    self._bad("lone surrogate")
                self.sink.put(b, i, stop)
            if k >= 0:
                self._pend.append(92)
                i = k + 1
            elif q >= 0:
                if self._hi:
                    self._bad("lone surrogate")
                return self._member_done(q + 1)
            else:
                i = n
        return n

    def _escape(self, p):
        c = p[1]
        if c in _ESCAPES:
            if self._hi:
                self._bad("lone surrogate")
            self.sink.put(_ESCAPES[c], 0, 1)
            return
        if c != 117:
            self._bad("bad escape")
        try:
            cp = int(bytes(p[2:6]), 16)
        except ValueError:
            self._bad("bad \\u escape")
        if self._hi:
            if not 0xDC00 <= cp < 0xE000:
                self._bad("lone surrogate")
            cp, self._hi = 0x10000 + ((self._hi - 0xD800) << 10) + (cp - 0xDC00), 0
        elif 0xD800 <= cp < 0xDC00:
            self._hi = cp
            return
        elif 0xDC00 <= cp < 0xE000:
            self._bad("lone surrogate")
        enc = chr(cp).encode()
        self.sink.put(enc, 0, len(enc))
