"""Codecs of the MQTT messages (DESIGN §3) and outbox records (DESIGN §6).

`validate`, `decode` and `encode` for the kinds in `KINDS` (`table` is protocols.routing's): types checked exactly,
floats refused anywhere, unknown fields ignored (`decode("state")` returns only the fields below). A `MessageError`
names the bad field (`records[3].outcome`; `payload` for the whole message) and a reason; nothing else leaves
`decode`, whatever the bytes, and CPython and MicroPython accept the same payloads (protocols.checks.parse_json).
Constructors build dicts without checking them (`encode` does) but cut free text to its bound.

Bounds, the same on both interpreters (what a stored record or state may hold):
- times (call `start`, records' `at`, state `clock`): UTC seconds, TIME_MIN (2000-01-01T00:00Z) <= t < TIME_MAX
  (2100-01-01T00:00Z);
- every seq, version and count (seq, last_seq, first_seq, acked seq, table version, boot, heap and outbox
  figures, counter values): an integer 0 <= n < SEQ_LIMIT (2^53); `dropped` records: first_seq <= last_seq < seq,
  count <= last_seq - first_seq + 1; call `attempts` <= MAX_ATTEMPTS, `ring_s` and `talk_s` <= MAX_CALL_S;
- text, in characters: caller <= 32, call reason 1-32, record `t` 1-16, alarm code 1-48, alarm detail <= 256,
  fw <= 64, profile <= 32, store_id and cmd id 1-64, cmd op 1-32, cmd_result error and table_ack reason <= 256;
- state `ports`: at most 16, each {"kind": port kind name, "ready": bool, "reg": 0-255|null, "csq": 0-255|null,
  "calls": n, "garbage": n}; counters: at most 1024 routes or targets, 64 counts each (names 1-32 characters);
- cmd `args` and cmd_result `result`: at most MAX_JSON (4096) characters as compact JSON; the args of the ops
  `call` and `probe` (DESIGN §5a) are checked too (agent and citizen numbers, via a port name, ring_timeout_s
  1-MAX_RING_S; a target id), errors at `args.<field>`;
- `outbound` and `probe` records (DESIGN §5a): cmd id 1-64, agent and citizen numbers, ring_s and talk_s <=
  MAX_CALL_S; a probe's port a port name or null (never dialled), pdd_ms 0-MAX_PDD_MS or null (no alerting);
- any payload: strict JSON in UTF-8, integers within 64 bits, nested at most 32 deep.
"""

import json
import sys

from protocols import checks
from protocols.builders import (  # noqa: F401  (the contract's bounds and constructors)
    MAX_ATTEMPTS,
    MAX_CALL_S,
    MAX_CALLER,
    MAX_CODE,
    MAX_COUNT_NAME,
    MAX_COUNTED,
    MAX_COUNTS,
    MAX_DETAIL,
    MAX_ERROR,
    MAX_FW,
    MAX_ID,
    MAX_JSON,
    MAX_KIND,
    MAX_OP,
    MAX_PDD_MS,
    MAX_PORTS,
    MAX_PROFILE,
    MAX_REASON,
    MAX_RING_S,
    MAX_SIGNAL,
    SEQ_LIMIT,
    TIME_MAX,
    TIME_MIN,
    alarm_record,
    call_record,
    clip,
    cmd,
    cmd_result,
    counters_record,
    dropped_record,
    events,
    events_ack,
    fit_record,
    fit_time,
    outbound_record,
    probe_record,
    state,
    table_ack,
    will,
)
from protocols.errors import UNEXPECTED, ContractError  # noqa: F401  (UNEXPECTED: the contract's name)

KINDS = ("state", "will", "table_ack", "events", "events_ack", "cmd", "cmd_result")
RECORD_KINDS = ("call", "counters", "alarm", "dropped", "outbound", "probe")
OUTCOMES = ("answered", "abandoned", "failed", "rejected", "after_hours", "callback", "denied")
OUTBOUND_OUTCOMES = ("answered", "agent_no_answer", "citizen_no_answer", "citizen_busy", "failed")
# What the controller counts per gateway, UTC hour, route and target (its call_hours columns).
HOUR_COUNTS = ("offered",) + OUTCOMES + ("talk_s", "ring_s")
PROBE_OUTCOMES = ("ringing", "busy", "no_answer", "unreachable", "failed", "denied")
# The call `reason` vocabulary; readers accept any other non-empty string too.
REASONS = ("ok", "no_route", "after_hours", "closed_day", "all_busy", "denied", "busy", "no_answer", "failed",
           "caller_hangup")
STATUSES = ("applied", "rejected")
MAX_RECORDS = 500

_ROOT = "payload"
_CPYTHON = sys.implementation.name != "micropython"
NO_ROUTE = "-"  # the counters' key for calls that matched no route


class MessageError(ContractError):
    """A message broke the contract: `path` names the field, `reason` says why."""


# A field's check is data, read by _ok (cheap) and _fault (the path and reason, only once it failed):
# a type (matched exactly), ("i", lo, hi): an integer lo <= v < hi, ("s", lo, hi): a string of lo..hi
# characters, ("e", values): one of them, ("p", predicate, reason), ("m", key check, value check, most):
# an object, ("o", spec): an object checked against a spec, ("j",): any JSON of at most MAX_JSON characters.
# No closures and no reasons built up front: the board holds all of this in a small heap.
_OPT, _REQ, _NULL, _REQ_NULL = 0, 1, 2, 3
_ABSENT = object()
_NAT = ("i", 0, SEQ_LIMIT)
_POS = ("i", 1, SEQ_LIMIT)
_TIME = ("i", TIME_MIN, TIME_MAX)
_ID64 = ("s", 1, MAX_ID)
_SHA = ("p", lambda v: checks.is_hex(v, 64), "must be 64 lowercase hex digits")
_PORT_NAME = ("p", checks.is_port_name, "must be a port name matching [a-z][a-z0-9]{0,15}")
_IDENT = ("p", checks.is_ident, "must be an id matching [A-Za-z0-9][A-Za-z0-9_.-]{0,47}")
_SIGNAL = ("i", 0, MAX_SIGNAL + 1)
# a port's entry in the state: today {"kind": "gsm"|"fxo", "ready", "reg", "csq", "calls", "garbage"}
_PORT_ENTRY = (("kind", _PORT_NAME, _OPT), ("ready", bool, _OPT), ("reg", _SIGNAL, _NULL), ("csq", _SIGNAL, _NULL),
               ("calls", _NAT, _OPT), ("garbage", _NAT, _OPT))
_PORTS = ("m", _PORT_NAME, ("o", _PORT_ENTRY), MAX_PORTS)
_COUNTED = ("p", lambda k: k == NO_ROUTE or checks.is_ident(k), 'must be an id matching '
            '[A-Za-z0-9][A-Za-z0-9_.-]{0,47} or "-"')
_COUNTS = ("m", _COUNTED, ("m", ("s", 1, MAX_COUNT_NAME), _NAT, MAX_COUNTS), MAX_COUNTED)
_JSON = ("j",)
_SECS = ("i", 0, MAX_CALL_S + 1)
_NUMBER = ("p", checks.is_number, "must be a number: E.164 (+ then 2-15 digits, not starting with 0) or 2-15 digits")

_STATE = (("online", bool, _REQ), ("fw", ("s", 0, MAX_FW), _OPT), ("store_id", _ID64, _OPT), ("boot", _NAT, _OPT),
          ("table_version", _NAT, _NULL), ("table_sha256", _SHA, _NULL), ("last_seq", _NAT, _OPT),
          ("ports", _PORTS, _OPT), ("heap_free", _NAT, _OPT), ("uptime_s", _NAT, _OPT), ("clock", _TIME, _NULL),
          ("profile", ("s", 0, MAX_PROFILE), _OPT), ("heap_min_free", _NAT, _OPT), ("calls", _NAT, _OPT),
          ("outbox", _NAT, _OPT), ("calls_in_progress", _NAT, _OPT))
_WILL = (("online", ("p", lambda v: v is False, "must be false in the will"), _REQ),) + _STATE[1:]
_TABLE_ACK = (("version", _NAT, _REQ), ("sha256", _SHA, _REQ_NULL), ("status", ("e", STATUSES), _REQ),
              ("reason", ("s", 0, MAX_ERROR), _NULL))
_EVENTS = (("store_id", _ID64, _REQ), ("records", list, _REQ))
_EVENTS_ACK = (("store_id", _ID64, _REQ), ("seq", _NAT, _REQ))
_CMD = (("id", _ID64, _REQ), ("op", ("s", 1, MAX_OP), _REQ), ("args", ("o", None), _OPT))
_CMD_RESULT = (("id", _ID64, _REQ), ("ok", bool, _REQ), ("result", _JSON, _OPT), ("error", ("s", 1, MAX_ERROR), _NULL))
_HEAD = (("seq", _POS, _REQ), ("t", ("s", 1, MAX_KIND), _REQ))
_CALL = (("start", _TIME, _REQ), ("port", _PORT_NAME, _REQ), ("caller", ("s", 0, MAX_CALLER), _REQ_NULL),
         ("route", _IDENT, _REQ_NULL), ("outcome", ("e", OUTCOMES), _REQ), ("target", _IDENT, _REQ_NULL),
         ("attempts", ("i", 0, MAX_ATTEMPTS + 1), _REQ), ("ring_s", _SECS, _REQ), ("talk_s", _SECS, _REQ),
         ("reason", ("s", 1, MAX_REASON), _REQ))
_COUNTERS = (("at", _TIME, _REQ), ("routes", _COUNTS, _REQ), ("targets", _COUNTS, _REQ), ("dropped", _NAT, _OPT))
_ALARM = (("at", _TIME, _REQ), ("code", ("s", 1, MAX_CODE), _REQ), ("detail", ("s", 0, MAX_DETAIL), _REQ),
          ("port", _PORT_NAME, _NULL))
_DROPPED = (("at", _TIME, _REQ), ("count", _POS, _REQ), ("first_seq", _POS, _REQ), ("last_seq", _POS, _REQ))
_OUTBOUND = (("cmd", _ID64, _REQ), ("start", _TIME, _REQ), ("port", _PORT_NAME, _REQ), ("agent", _NUMBER, _REQ),
             ("citizen", _NUMBER, _REQ), ("outcome", ("e", OUTBOUND_OUTCOMES), _REQ), ("ring_s", _SECS, _REQ),
             ("talk_s", _SECS, _REQ))
_PROBE = (("start", _TIME, _REQ), ("target", _IDENT, _REQ), ("port", _PORT_NAME, _REQ_NULL),
          ("outcome", ("e", PROBE_OUTCOMES), _REQ), ("pdd_ms", ("i", 0, MAX_PDD_MS + 1), _REQ_NULL))
_RECORDS = {"call": _CALL, "counters": _COUNTERS, "alarm": _ALARM, "dropped": _DROPPED, "outbound": _OUTBOUND,
            "probe": _PROBE}
# the args of the commands of DESIGN §5a (other ops: any object)
_ARGS = {"call": (("agent", _NUMBER, _REQ), ("citizen", _NUMBER, _REQ), ("via", _PORT_NAME, _OPT),
                  ("ring_timeout_s", ("i", 1, MAX_RING_S + 1), _OPT)),
         "probe": (("target", _IDENT, _REQ),)}


def _ok(c, v):
    """True when `v` passes check `c` (see above)."""
    if type(c) is type:
        return type(v) is c
    k = c[0]
    if k == "i":
        return type(v) is int and c[1] <= v < c[2]
    if k == "s":
        return type(v) is str and c[1] <= len(v) <= c[2]
    if k == "p":
        return c[1](v)
    if k == "e":
        return type(v) is str and v in c[1]
    return _fault(c, v) is None


def _fault(c, v):
    """None when `v` passes check `c`, else (subpath, reason); an object's members in sorted key order,
    so both interpreters name the same one (MicroPython's dicts do not keep insertion order)."""
    if type(c) is type:
        return None if type(v) is c else ("", _TYPES[c])
    k = c[0]
    if k == "m" or k == "o":
        if type(v) is not dict:
            return ("", "must be an object")
        if k == "o":
            if c[1] is None:
                return _too_big(v)
            for key, want, flags in c[1]:
                x = v.get(key, _ABSENT)
                if x is not _ABSENT and not (x is None and flags & _NULL) and not _ok(want, x):
                    return _under(key, want, x, flags)
            return None
        if len(v) > c[3]:
            return ("", "has " + str(len(v)) + " members, more than the " + str(c[3]) + " allowed")
        for key in v:
            if not _ok(c[1], key) or not _ok(c[2], v[key]):
                break
        else:
            return None
        for key in sorted(v):
            if not _ok(c[1], key):
                return (key, "is not a valid key: " + _fault(c[1], key)[1])
            if not _ok(c[2], v[key]):
                return _under(key, c[2], v[key], 0)
        return None
    if k == "j":
        return _too_big(v)
    if _ok(c, v):
        return None
    if k == "i":
        if c[1] == TIME_MIN:
            return ("", "must be an integer, UTC seconds from 2000-01-01 to 2099-12-31 (946684800 to 4102444799)")
        return ("", "must be an integer >= " + str(c[1]) + " and below " + ("2^53" if c[2] == SEQ_LIMIT else str(c[2])))
    if k == "s":
        return ("", "must be a " + ("non-empty " if c[1] else "") + "string of at most " + str(c[2]) + " characters")
    if k == "e":
        return ("", "must be " + (" or ".join(c[1]) if len(c[1]) == 2 else "one of " + ", ".join(c[1])))
    return ("", c[2])


def _under(key, want, x, flags):
    sub, reason = _fault(want, x)
    return (checks.at(key, sub) if sub else key, reason + (", or null" if flags & _NULL and not sub else ""))


_TYPES = {int: "must be an integer", str: "must be a string", bool: "must be true or false",
          dict: "must be an object", list: "must be a list"}


def _too_big(v):
    if (type(v) is dict or type(v) is list) and _json_size(v, MAX_JSON) > MAX_JSON:
        return ("", "is more than " + str(MAX_JSON) + " characters as JSON")
    return None


def _json_size(v, limit):
    """Characters of `v` as compact JSON (escapes not counted), counting stops past `limit`:
    the same number on both interpreters, without building the text."""
    t = type(v)
    if t is str:
        return len(v) + 2
    if t is int:
        return len(str(v))
    if t is bool:
        return 4 if v else 5
    if t is list:
        n = 1 + len(v) if v else 2
        for x in v:
            if n > limit:
                break
            n += _json_size(x, limit - n)
        return n
    if t is dict:
        n = 1 + 2 * len(v) if v else 2
        for k in v:
            if n > limit:
                break
            n += len(k) + 2 + _json_size(v[k], limit - n)
        return n
    return 4  # null


def _fields(obj, base, spec):
    """Check `obj` against a spec ((key, check, flags), ...); `base` is its path, or the index of a
    record in `records` (a record's path is only built when it is wrong)."""
    for key, want, flags in spec:
        v = obj.get(key, _ABSENT)
        if v is _ABSENT:
            if flags & _REQ:
                raise MessageError(checks.at(_base(base), key), "is required")
        elif not (v is None and flags & _NULL) and not _ok(want, v):
            sub, reason = _under(key, want, v, flags)
            raise MessageError(checks.at(_base(base), sub), reason)


def _base(base):
    return checks.item("records", base) if type(base) is int else base


def _table_ack(obj):
    if obj["status"] == "applied":
        if obj["sha256"] is None:
            raise MessageError("sha256", "must not be null when applied")
        if obj["version"] < 1:
            raise MessageError("version", "must be at least 1 when applied")
    elif not obj.get("reason"):
        raise MessageError("reason", "must be a non-empty string when rejected")


def _events(obj):
    records = obj["records"]
    n = len(records)
    if n == 0:
        raise MessageError("records", "must not be empty")
    if n > MAX_RECORDS:
        raise MessageError("records", "has " + str(n) + " records, more than the 500 allowed")
    prev = 0
    for i in range(n):
        rec = records[i]
        if type(rec) is not dict:
            raise MessageError(checks.item("records", i), "must be an object")
        _fields(rec, i, _HEAD)
        seq = rec["seq"]
        if seq <= prev:
            raise MessageError(_at(i, "seq"), "must be greater than the previous seq, " + str(prev))
        prev = seq
        spec = _RECORDS.get(rec["t"])  # other kinds: only seq and t are checked
        if spec is not None:
            _fields(rec, i, spec)
            if spec is _DROPPED:
                if rec["last_seq"] < rec["first_seq"]:
                    raise MessageError(_at(i, "last_seq"), "must be at least first_seq")
                if rec["last_seq"] >= seq:
                    raise MessageError(_at(i, "last_seq"), "must be less than the record's own seq")
                if rec["count"] > rec["last_seq"] - rec["first_seq"] + 1:
                    raise MessageError(_at(i, "count"), "must be at most last_seq - first_seq + 1")


def _at(i, key):
    return checks.at(checks.item("records", i), key)


def _cmd(obj):
    spec = _ARGS.get(obj["op"])
    if spec is not None:
        _fields(obj.get("args", {}), "args", spec)


def _cmd_result(obj):
    if obj["ok"]:
        if obj.get("error") is not None:
            raise MessageError("error", "must be absent or null when ok is true")
    elif obj.get("error") is None:
        raise MessageError("error", "must be a non-empty string when ok is false")


_KINDS = {"state": (_STATE, None), "will": (_WILL, None), "table_ack": (_TABLE_ACK, _table_ack),
          "events": (_EVENTS, _events), "events_ack": (_EVENTS_ACK, None), "cmd": (_CMD, _cmd),
          "cmd_result": (_CMD_RESULT, _cmd_result)}


def _check(kind, obj):
    rules = _KINDS.get(kind) if type(kind) is str else None
    if rules is None:
        raise MessageError("kind", "must be one of " + ", ".join(KINDS) + " (tables: protocols.routing)")
    if type(obj) is not dict:
        raise MessageError(_ROOT, "must be a JSON object")
    _fields(obj, "", rules[0])
    if rules[1] is not None:
        rules[1](obj)
    return obj


def validate(kind, obj):
    """Check a message of `kind` (one of KINDS); return it unchanged or raise MessageError."""
    try:
        if checks.not_plain_json(obj):  # a float (its path), nesting deeper than 32, or a non-JSON value
            checks.explain(obj, "")
    except ContractError as e:
        raise MessageError(e.path or _ROOT, e.reason) from None
    return _check(kind, obj)


def _known(obj, spec):
    out = {}
    for key, _, _ in spec:
        if key in obj:
            out[key] = obj[key]
    return out


def _known_state(obj):
    """What a reader keeps of a state: the fields of the contract, each port with its known keys only."""
    out = _known(obj, _STATE)
    ports = out.get("ports")
    if ports:
        out["ports"] = {name: _known(ports[name], _PORT_ENTRY) for name in ports}
    return out


def decode(kind, payload, max_bytes=None):
    """JSON text (bytes or str) -> validated dict; `state` takes the will too and keeps only the
    contract's fields, a `cmd` gets default `args`. Raises only MessageError, whatever the payload."""
    try:
        obj = _check(kind, checks.parse_json(payload, "", max_bytes))
        if kind == "state" or kind == "will":
            return _known_state(obj)
        if kind == "cmd" and "args" not in obj:
            obj["args"] = {}
        return obj
    except MessageError:
        raise
    except ContractError as e:
        raise MessageError(e.path or _ROOT, e.reason) from None
    except Exception as e:  # a bug here, not the payload's fault: still only the contract's error leaves
        raise MessageError(_ROOT, UNEXPECTED + type(e).__name__ + ": " + str(e)) from None


def encode(kind, obj):
    """Validate, then compact JSON as UTF-8 bytes."""
    validate(kind, obj)
    try:
        if _CPYTHON:
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        return json.dumps(obj, separators=(",", ":")).encode()
    except UnicodeError:  # MemoryError passes: not the message's fault, send a smaller batch
        raise MessageError(_ROOT, "must not hold unpaired surrogates (\\ud800-\\udfff)") from None
