"""The strict JSON grammar (RFC 8259) that MicroPython's `json.loads` does not enforce.

MicroPython's parser accepts missing commas and colons, trailing commas, leading zeros, `1.`,
raw control characters and unknown escapes in strings, bad `\\u` escapes, non-string keys,
invalid UTF-8 and any nesting depth, where CPython's refuses them: run on MicroPython before it,
this walk makes both interpreters accept exactly the same texts. It also holds the contract's own
limits of the JSON layer on both: integers fit in 64 bits (CPython would take any size, MicroPython
too), nesting at most MAX_DEPTH deep, no lone surrogates (`\\ud800` escapes, which no UTF-8 encoder
takes). One walk over the bytes, no recursion; strings are skipped with `find`.
"""

from protocols.checks import INT_MAX, INT_MIN, INT_RANGE, MAX_DEPTH, TOO_DEEP
from protocols.errors import ContractError

FLOATS = 1  # check() found a number with a fraction or an exponent
PAIRS = 2  # check() found a surrogate pair escape, which MicroPython's parser leaves as two halves
_HEX = b"0123456789abcdefABCDEF"


def bad(path, why="syntax"):
    raise ContractError(path, "is not valid JSON (" + why + ")")


def check(b, path):
    """Raise ContractError(path, ...) unless the bytes `b` are one strict JSON value (surrounding
    whitespace allowed); returns FLOATS | PAIRS as found."""
    n = len(b)
    stack = []  # 123 ({) or 91 ([) per open container
    found = 0
    key = False  # a member's key comes next
    i = _ws(b, 0, n)
    while True:
        c = b[i] if i < n else 0
        if key:
            if c != 34:
                bad(path)
            i, f = _string(b, i, n, path)
            found |= f
            i = _ws(b, i, n)
            if i >= n or b[i] != 58:
                bad(path)
            i = _ws(b, i + 1, n)
            key = False
            continue
        if c == 123 or c == 91:
            stack.append(c)
            if len(stack) > MAX_DEPTH:
                raise ContractError(path, TOO_DEEP)
            i = _ws(b, i + 1, n)
            if i >= n or b[i] != c + 2:  # not } or ] at once: a member or an element
                key = c == 123
                continue
            stack.pop()
            i += 1
        elif c == 34:
            i, f = _string(b, i, n, path)
            found |= f
        elif c == 45 or 48 <= c <= 57:
            i, f = _number(b, i, n, path)
            found |= f
        elif b[i:i + 4] == b"true" or b[i:i + 4] == b"null":
            i += 4
        elif b[i:i + 5] == b"false":
            i += 5
        else:
            bad(path)
        while True:  # after a value: a comma, a closing bracket or the end
            i = _ws(b, i, n)
            if not stack:
                if i != n:
                    bad(path, "trailing data")
                return found
            c = b[i] if i < n else 0
            if c == 44:
                i = _ws(b, i + 1, n)
                key = stack[-1] == 123
                break
            if c != stack[-1] + 2:
                bad(path)
            stack.pop()
            i += 1


def _ws(b, i, n):
    while i < n and b[i] in b" \t\r\n":
        i += 1
    return i


def _string(b, i, n, path):
    """b[i] is an opening quote: (index past the closing one, PAIRS if a surrogate pair was escaped)."""
    j = i + 1
    found = 0
    while True:
        q = b.find(b'"', j)
        if q < 0:
            bad(path)
        e = b.find(b"\\", j, q)
        stop = q if e < 0 else e
        if stop > j:
            seg = b[j:stop]
            if min(seg) < 32:
                bad(path, "control character in a string")
            utf8(seg, path)
        if e < 0:
            return q + 1, found
        c = b[e + 1]
        if c == 117:  # \uXXXX; a high surrogate must pair with a low one
            cp = _hex4(b, e + 2, path)
            j = e + 6
            if 0xD800 <= cp <= 0xDBFF and b[j:j + 2] == b"\\u" and 0xDC00 <= _hex4(b, j + 2, path) <= 0xDFFF:
                found = PAIRS
                j += 6
            elif 0xD800 <= cp <= 0xDFFF:
                bad(path, "lone surrogate escape")
        elif c in b'"\\/bfnrt':
            j = e + 2
        else:
            bad(path, "bad escape")


def _hex4(b, i, path):
    h = b[i:i + 4]
    if len(h) < 4 or h.strip(_HEX):
        bad(path, "bad \\u escape")
    return int(bytes(h).decode(), 16)


def utf8(seg, path):
    """Refuse bytes that are not UTF-8 (RFC 3629: no surrogates, no overlong forms, nothing past U+10FFFF)."""
    if not seg or max(seg) < 128:
        return
    k, m = 0, len(seg)
    while k < m:
        c = seg[k]
        k += 1
        if c < 128:
            continue
        if 0xC2 <= c <= 0xDF:
            need, lo, hi = 1, 0x80, 0xBF
        elif 0xE0 <= c <= 0xEF:
            need, lo, hi = 2, 0xA0 if c == 0xE0 else 0x80, 0x9F if c == 0xED else 0xBF
        elif 0xF0 <= c <= 0xF4:
            need, lo, hi = 3, 0x90 if c == 0xF0 else 0x80, 0x8F if c == 0xF4 else 0xBF
        else:
            need = lo = hi = 0
        if not need or k + need > m or not lo <= seg[k] <= hi:
            bad(path, "not UTF-8")
        for x in range(k + 1, k + need):
            if not 0x80 <= seg[x] <= 0xBF:
                bad(path, "not UTF-8")
        k += need


def _number(b, i, n, path):
    """A number at b[i]: (index past it, FLOATS if it has a fraction or an exponent)."""
    j = i + 1 if b[i] == 45 else i
    if j < n and b[j] == 48:
        j += 1
    elif j < n and 49 <= b[j] <= 57:
        j = _digits(b, j, n)
    else:
        bad(path)
    end = j
    if j < n and b[j] == 46:
        j = _digits(b, j + 1, n, path)
    if j < n and b[j] in b"eE":
        j += 1
        if j < n and b[j] in b"+-":
            j += 1
        j = _digits(b, j, n, path)
    if j != end:
        return j, FLOATS
    if j - i > 18 and not INT_MIN <= int(bytes(b[i:j]).decode()) <= INT_MAX:
        raise ContractError(path, INT_RANGE)
    return j, 0


def _digits(b, i, n, path=None):
    """Past the digits at b[i]; with `path`, at least one is needed."""
    j = i
    while j < n and 48 <= b[j] <= 57:
        j += 1
    if path is not None and j == i:
        bad(path)
    return j


def join_pairs(v):
    """`v` with every string's surrogate halves (as MicroPython decodes a pair escape) joined into
    the one character CPython makes of it."""
    t = type(v)
    if t is str:
        return _join(v)
    if t is list:
        for i in range(len(v)):
            v[i] = join_pairs(v[i])
        return v
    if t is dict:
        out = {}
        for k in v:
            out[_join(k)] = join_pairs(v[k])
        return out
    return v


def _join(s):
    b = s.encode()
    i = b.find(b"\xed")
    if i < 0:
        return s
    out = bytearray()
    k, n = 0, len(b)
    while 0 <= i <= n - 6:
        if 0xA0 <= b[i + 1] <= 0xAF and b[i + 3] == 0xED and 0xB0 <= b[i + 4] <= 0xBF:
            hi = ((b[i + 1] & 0x0F) << 6) | (b[i + 2] & 0x3F)  # the offsets from 0xD800 and 0xDC00
            lo = ((b[i + 4] & 0x0F) << 6) | (b[i + 5] & 0x3F)
            out += b[k:i]
            out += chr(0x10000 + (hi << 10) + lo).encode()
            k = i + 6
            i = b.find(b"\xed", k)
        else:
            i = b.find(b"\xed", i + 1)
    out += b[k:]
    return out.decode()
