"""Find the spans of a JSON document's members without parsing it whole.

`json.loads` of a 32 KiB table needs about 240 KB of heap on a 64-bit
MicroPython (every key is its own string object), more than a gateway has.
The table loader uses these spans to parse one field or one route at a time
and keep only its compact form. Values are only delimited here; `json.loads`
of each span is what checks them.
"""

from protocols.errors import ContractError

_WS = b" \t\r\n"
_END = b",}] \t\r\n"


def _bad(path, why):
    raise ContractError(path, "is not valid JSON (" + why + ")")


def _ws(b, i):
    n = len(b)
    while i < n and b[i] in _WS:
        i += 1
    return i


def _string_end(b, i, path):
    """b[i] is the opening quote; return the index just past the closing one."""
    j = i + 1
    while True:
        j = b.find(b'"', j)
        if j < 0:
            _bad(path, "unterminated string")
        k = j - 1
        while b[k] == 92:  # count the backslashes before the quote
            k -= 1
        j += 1
        if (j - 2 - k) % 2 == 0:
            return j


def value_end(b, i, path):
    """Index just past the JSON value starting at b[i]."""
    n = len(b)
    if i >= n:
        _bad(path, "value missing")
    c = b[i]
    if c == 34:
        return _string_end(b, i, path)
    if c != 123 and c != 91:  # a scalar: runs until a delimiter
        j = i
        while j < n and b[j] not in _END:
            j += 1
        if j == i:
            _bad(path, "value missing at byte " + str(i))
        return j
    depth = 0
    j = i
    while j < n:
        c = b[j]
        if c == 34:
            j = _string_end(b, j, path)
            continue
        if c == 123 or c == 91:
            depth += 1
        elif c == 125 or c == 93:
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    _bad(path, "unclosed " + ("object" if b[i] == 123 else "list"))


def members(b, i, path):
    """b[i] starts an object: list of (key, start, end) for its members."""
    from protocols import checks

    if i >= len(b) or b[i] != 123:
        raise ContractError(path, "must be a JSON object")
    out = []
    i = _ws(b, i + 1)
    if i < len(b) and b[i] == 125:
        return out, i + 1
    while True:
        if i >= len(b) or b[i] != 34:
            _bad(path, "expected a key at byte " + str(i))
        e = _string_end(b, i, path)
        key = checks.parse_json(b[i:e], path)  # strict, as every value is
        i = _ws(b, e)
        if i >= len(b) or b[i] != 58:
            _bad(path, "expected ':' at byte " + str(i))
        s = _ws(b, i + 1)
        e = value_end(b, s, path)
        out.append((key, s, e))
        i = _ws(b, e)
        if i < len(b) and b[i] == 44:
            i = _ws(b, i + 1)
            continue
        if i < len(b) and b[i] == 125:
            return out, i + 1
        _bad(path, "expected ',' or '}' at byte " + str(i))


def elements(b, i, path):
    """b[i] starts a list: list of (start, end) for its elements."""
    if i >= len(b) or b[i] != 91:
        raise ContractError(path, "must be a list")
    out = []
    i = _ws(b, i + 1)
    if i < len(b) and b[i] == 93:
        return out, i + 1
    while True:
        e = value_end(b, i, path)
        out.append((i, e))
        i = _ws(b, e)
        if i < len(b) and b[i] == 44:
            i = _ws(b, i + 1)
            continue
        if i < len(b) and b[i] == 93:
            return out, i + 1
        _bad(path, "expected ',' or ']' at byte " + str(i))


def top_members(b, path):
    """Members of the document's top-level object; nothing may follow it."""
    i = _ws(b, 0)
    if i >= len(b) or b[i] != 123:
        raise ContractError(path, "must be a JSON object")
    out, end = members(b, i, path)
    if _ws(b, end) != len(b):
        _bad(path, "trailing data at byte " + str(end))
    return out


_ESCAPES = {34: 34, 92: 92, 47: 47, 98: 8, 102: 12, 110: 10, 114: 13, 116: 9}


def _hex4(b, i, path):
    """Four hex digits at b[i] (checked first: int() would take spaces and underscores too)."""
    h = bytes(b[i:i + 4])
    if len(h) < 4 or h.strip(b"0123456789abcdefABCDEF"):
        _bad(path, "bad \\u escape")
    return int(h.decode(), 16)


def unescape_to_front(buf, s, e, path):
    """The JSON string at buf[s:e] (quotes included) decoded to UTF-8 and moved to the front of the
    bytearray `buf`, which is then cut to its length. The decoded text is never longer than its
    escaped form, so writing behind the read position is safe: no second copy of a big body."""
    w, r, end = 0, s + 1, e - 1
    while r < end:
        j = buf.find(b"\\", r, end)
        stop = end if j < 0 else j
        while r < stop:  # copy the plain run in small slices: bounded temporary memory
            k = min(stop - r, 256)
            buf[w:w + k] = buf[r:r + k]
            w += k
            r += k
        if j < 0:
            break
        c = buf[r + 1] if r + 1 < end else 0
        if c in _ESCAPES:
            buf[w] = _ESCAPES[c]
            w += 1
            r += 2
            continue
        if c != 117:  # \u
            _bad(path, "bad escape at byte " + str(r))
        cp = _hex4(buf, r + 2, path)
        r += 6
        if 0xD800 <= cp < 0xDC00 and buf[r:r + 2] == b"\\u":
            lo = _hex4(buf, r + 2, path)
            if 0xDC00 <= lo < 0xE000:
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                r += 6
        enc = chr(cp).encode() if not 0xD800 <= cp < 0xE000 else _bad(path, "lone surrogate")
        buf[w:w + len(enc)] = enc
        w += len(enc)
    buf[w:] = b""
    return w
