"""The common events message (only plain call records) checked and turned into rows a column at a time.

messages.decode checks each record field by field in Python (about 5 us a record, most of the
bridge's time: a bare subscriber only parses the JSON). Here the same checks run on columns: one
itemgetter per record, then per field a set of its values (C speed), its types and, for integers,
its min and max against the contract's bounds; strings are checked one distinct value at a time
with protocols.messages' own checks (a batch has a few ports, routes, outcomes). The bounds are
read from protocols.messages' specs, so they cannot drift from the contract.

Anything else (another record kind, a missing or extra key, a null where none is allowed, any value
that fails, a float, bad JSON) returns None and the caller takes the full path, messages.decode
then wire_events, which accepts or refuses it and names what is wrong: this path may only take
what that one accepts, and gives the same rows (tests/controller/test_ingest_fastpath.py).
"""

from __future__ import annotations

from itertools import repeat
from operator import itemgetter, lt

from controller.ingest.records import CALL_FIELDS
from controller.ingest.rows import WIDTH
from protocols import messages as m
from protocols.cpjson import loads  # CPython's half of checks.parse_json (strict JSON, no floats, 64-bit ints)

_SPEC = m._HEAD + m._CALL
_KEYS = tuple(key for key, _, _ in _SPEC)
assert _KEYS == ("seq", "t", "start", *CALL_FIELDS), "records.CALL_FIELDS and the contract's call differ"
assert all(flags & m._REQ and type(want) is tuple and want[0] in "ispe" for _, want, flags in _SPEC)
_GET = itemgetter(*_KEYS)
_TOP = frozenset(("store_id", "records"))
_INT, _INT_NULL = frozenset((int,)), frozenset((int, type(None)))
_CALLER, _REASON = _KEYS.index("caller"), _KEYS.index("reason")


def call_rows(gw: str, payload: bytes, received: int) -> tuple[str, list[tuple]] | None:
    """wire_events(gw, messages.decode("events", payload), received) for a message of call records
    with exactly the contract's keys; None for anything else (and for anything decode refuses).
    Never raises: whatever goes wrong here, the full path decides."""
    try:
        return _call_rows(gw, payload, received)
    except Exception:  # not JSON, not UTF-8, a lone surrogate, an integer past 64 bits, or a bug here
        return None


def _call_rows(gw: str, payload: bytes, received: int) -> tuple[str, list[tuple]] | None:
    obj, floats = loads(payload, False, "")
    # only the two members: nothing else (deep nesting, say) that checks.not_plain_json would look at
    if floats or type(obj) is not dict or obj.keys() != _TOP:
        return None
    sid, recs = obj["store_id"], obj["records"]
    if type(recs) is not list or not 0 < len(recs) <= m.MAX_RECORDS or not m._ok(m._ID64, sid):
        return None
    n = len(recs)
    if set(map(type, recs)) != {dict} or set(map(len, recs)) != {len(_KEYS)}:
        return None
    try:
        cols = list(zip(*map(_GET, recs), strict=True))  # every key present (and, with the lengths, no other)
    except KeyError:
        return None
    for (_, want, flags), col in zip(_SPEC, cols, strict=True):
        if not _column_ok(want, flags & m._NULL, col):
            return None
    if set(cols[1]) != {"call"}:  # checked above: strings only
        return None
    seqs = cols[0]
    if not all(map(lt, seqs, seqs[1:])):  # increasing (the first >= 1: _POS)
        return None
    # what wire_events writes as is; longer text gets a prefix and `data` there
    if any(len(v) > WIDTH["caller"] for v in set(cols[_CALLER]) if v is not None) or \
            any(len(v) > WIDTH["reason"] for v in set(cols[_REASON])):
        return None
    return sid, list(zip(repeat(gw, n), repeat(sid, n), seqs, repeat("call", n), *cols[2:], repeat(None, n),
                         repeat("{}", n), repeat(received, n), strict=True))


def _column_ok(want: tuple, nullable: int, col: tuple) -> bool:
    """Every value of a column passes `want` (nulls too, when the field may be null)."""
    if want[0] == "i":
        # the types of every value, not of the distinct ones: True == 1 in a set
        if not set(map(type, col)) <= (_INT_NULL if nullable else _INT):
            return False
        ints = [v for v in col if v is not None] if nullable else col
        return not ints or (want[1] <= min(ints) and max(ints) < want[2])
    try:
        values = set(col)
    except TypeError:  # a list or an object: never a valid string
        return False
    if nullable:
        values.discard(None)
    ok = m._ok
    return all(ok(want, v) for v in values)  # each check demands an exact str: no int or bool slips through
