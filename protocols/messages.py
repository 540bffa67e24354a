"""Codecs of the MQTT messages (DESIGN §3) and outbox records (DESIGN §6).

`validate`, `decode` and `encode` for the kinds in `KINDS` (`table` is protocols.routing's): types checked exactly,
floats refused anywhere, unknown fields ignored. A `MessageError` names the bad field (`records[3].outcome`;
`payload` for the whole message) and a reason. Constructors build dicts without checking them: `encode` does.
"""

import json
import sys

from protocols import checks
from protocols.errors import ContractError

KINDS = ("state", "will", "table_ack", "events", "events_ack", "cmd", "cmd_result")
RECORD_KINDS = ("call", "counters", "alarm", "dropped")
OUTCOMES = ("answered", "abandoned", "failed", "rejected", "after_hours", "callback", "denied")
# The call `reason` vocabulary; readers accept any other non-empty string too.
REASONS = ("ok", "no_route", "after_hours", "closed_day", "all_busy", "denied", "busy", "no_answer", "failed",
           "caller_hangup")
STATUSES = ("applied", "rejected")
MAX_RECORDS = 500

_ROOT = "payload"
_CPYTHON = sys.implementation.name != "micropython"


class MessageError(ContractError):
    """A message broke the contract: `path` names the field, `reason` says why."""


# A field check is a type (matched exactly) or a predicate giving True when the value is fine, else False
# (reason in _WHY) or (subpath, reason) for a fault inside it. Paths are only built once something fails.

_PORT = "a port name matching [a-z][a-z0-9]{0,15}"
_IDENT = "an id matching [A-Za-z0-9][A-Za-z0-9_.-]{0,47}"
_WHY = {int: "must be an integer", str: "must be a string", bool: "must be true or false", dict: "must be an object",
        list: "must be a list", checks.is_port_name: "must be " + _PORT, checks.is_ident: "must be " + _IDENT}


def _why(reason, pred):
    _WHY[pred] = reason
    return pred


_is_nat = _why("must be an integer >= 0", lambda v: type(v) is int and v >= 0)
_is_pos = _why("must be an integer >= 1", lambda v: type(v) is int and v >= 1)
_is_text = _why("must be a non-empty string", lambda v: type(v) is str and v != "")
_is_id64 = _why("must be a string of 1 to 64 characters", lambda v: type(v) is str and 1 <= len(v) <= 64)
_is_sha = _why("must be 64 lowercase hex digits", lambda v: checks.is_hex(v, 64))
_is_status = _why("must be applied or rejected", lambda v: type(v) is str and v in STATUSES)
_is_outcome = _why("must be one of " + ", ".join(OUTCOMES), lambda v: type(v) is str and v in OUTCOMES)
_is_false = _why("must be false in the will", lambda v: v is False)


def _map(key_ok, key_reason, value_ok):
    """An object whose keys pass `key_ok` and whose values pass `value_ok`."""
    def ok(v):
        if type(v) is not dict:
            return False
        for k in v:
            if not key_ok(k):
                return (str(k), key_reason)
            r = type(v[k]) is value_ok if type(value_ok) is type else value_ok(v[k])
            if r is not True:
                return (checks.at(str(k), r[0]), r[1]) if type(r) is tuple else (str(k), _WHY[value_ok])
        return True
    return _why("must be an object", ok)


_ports = _map(checks.is_port_name, "is not " + _PORT, dict)
NO_ROUTE = "-"  # the counters' key for calls that matched no route


def _is_counted(k):
    return k == NO_ROUTE or checks.is_ident(k)


_counts = _map(_is_counted, "is not " + _IDENT + ' or "-"', _map(_is_text, "must be a non-empty name", _is_nat))
_OPT, _REQ, _NULL, _REQ_NULL = 0, 1, 2, 3


def _fields(obj, base, spec):
    """Check `obj` (at path `base`; an int is the index of a record) against ((key, check, flags), ...)."""
    for key, want, flags in spec:
        v = obj.get(key, _ABSENT)
        if v is _ABSENT:
            if flags & _REQ:
                raise MessageError(checks.at(_path(base), key), "is required")
            continue
        if (type(v) is want) if type(want) is type else (want(v) is True):
            continue
        if v is None and flags & _NULL:
            continue
        r = want(v) if type(want) is not type else False  # only now: the reason and where
        if type(r) is tuple:
            raise MessageError(checks.at(checks.at(_path(base), key), r[0]), r[1])
        raise MessageError(checks.at(_path(base), key), _WHY[want] + (" or null" if flags & _NULL else ""))


_ABSENT = object()


def _path(base):
    return checks.item("records", base) if type(base) is int else base


_STATE = (("online", bool, _REQ), ("fw", str, _OPT), ("store_id", _is_id64, _OPT), ("boot", _is_nat, _OPT),
          ("table_version", _is_nat, _NULL), ("table_sha256", _is_sha, _NULL), ("last_seq", _is_nat, _OPT),
          ("ports", _ports, _OPT), ("heap_free", _is_nat, _OPT), ("uptime_s", _is_nat, _OPT), ("clock", int, _NULL))
_WILL = (("online", _is_false, _REQ),) + _STATE[1:]
_TABLE_ACK = (("version", _is_nat, _REQ), ("sha256", _is_sha, _REQ_NULL), ("status", _is_status, _REQ),
              ("reason", str, _NULL))
_EVENTS = (("store_id", _is_id64, _REQ), ("records", list, _REQ))
_EVENTS_ACK = (("store_id", _is_id64, _REQ), ("seq", _is_nat, _REQ))
_CMD = (("id", _is_id64, _REQ), ("op", _is_text, _REQ), ("args", dict, _OPT))
_CMD_RESULT = (("id", _is_id64, _REQ), ("ok", bool, _REQ))
_HEAD = (("seq", _is_pos, _REQ), ("t", _is_text, _REQ))
_CALL = (("start", int, _REQ), ("port", checks.is_port_name, _REQ), ("caller", str, _REQ_NULL),
         ("route", checks.is_ident, _REQ_NULL), ("outcome", _is_outcome, _REQ), ("target", checks.is_ident, _REQ_NULL),
         ("attempts", _is_nat, _REQ), ("ring_s", _is_nat, _REQ), ("talk_s", _is_nat, _REQ), ("reason", _is_text, _REQ))
_COUNTERS = (("at", int, _REQ), ("routes", _counts, _REQ), ("targets", _counts, _REQ), ("dropped", _is_nat, _OPT))
_ALARM = (("at", int, _REQ), ("code", _is_text, _REQ), ("detail", str, _REQ), ("port", checks.is_port_name, _NULL))
_DROPPED = (("at", int, _REQ), ("count", _is_pos, _REQ), ("first_seq", _is_pos, _REQ), ("last_seq", _is_pos, _REQ))
_RECORDS = {"call": _CALL, "counters": _COUNTERS, "alarm": _ALARM, "dropped": _DROPPED}


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
            raise MessageError(_path(i), "must be an object")
        _fields(rec, i, _HEAD)  # the record's path is built only when it is wrong
        seq = rec["seq"]
        if seq <= prev:
            raise MessageError(checks.at(_path(i), "seq"), "must be greater than the previous seq, " + str(prev))
        prev = seq
        spec = _RECORDS.get(rec["t"])  # other kinds: only seq and t are checked
        if spec is not None:
            _fields(rec, i, spec)
            if spec is _DROPPED:
                if rec["last_seq"] < rec["first_seq"]:
                    raise MessageError(checks.at(_path(i), "last_seq"), "must be at least first_seq")
                if rec["count"] > rec["last_seq"] - rec["first_seq"] + 1:
                    raise MessageError(checks.at(_path(i), "count"), "must be at most last_seq - first_seq + 1")


def _cmd_result(obj):
    if obj["ok"]:
        if obj.get("error") is not None:
            raise MessageError("error", "must be absent or null when ok is true")
    elif not _is_text(obj.get("error")):
        raise MessageError("error", "must be a non-empty string when ok is false")


_KINDS = {"state": (_STATE, None), "will": (_WILL, None), "table_ack": (_TABLE_ACK, _table_ack),
          "events": (_EVENTS, _events), "events_ack": (_EVENTS_ACK, None), "cmd": (_CMD, None),
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


_SURROGATES = "must not hold unpaired surrogates (\\ud800-\\udfff)"
if _CPYTHON:
    import re

    # an escape \uD800-\uDFFF, or the three bytes such a code point would be in (json.loads lets them pass)
    _SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]|\xed[\xa0-\xbf]")


def validate(kind, obj):
    """Check a message of `kind` (one of KINDS); return it unchanged or raise MessageError."""
    try:
        if checks.not_plain_json(obj):
            checks.no_floats(obj, "")  # names the path of a float
            raise MessageError(_ROOT, "must hold only JSON values (string-keyed objects, lists, str, int, bool, None)")
    except ContractError as e:
        raise MessageError(e.path or _ROOT, e.reason) from None
    except RuntimeError:  # RecursionError on CPython
        raise MessageError(_ROOT, "is nested too deeply") from None
    return _check(kind, obj)


def _may_hold_surrogates(payload):
    """In bytes, only a \\uD800-\\uDFFF escape or its encoded bytes can make one: a cheap look for
    them spares re-encoding every message. A str may hold one as it is."""
    if type(payload) is str:
        return True
    return _SURROGATE_ESCAPE.search(bytes(payload) if type(payload) is not bytes else payload) is not None


def decode(kind, payload, max_bytes=None):
    """JSON text (bytes or str) -> validated dict; `state` takes the will too, a `cmd` gets default `args`."""
    try:
        obj = checks.parse_json(payload, "", max_bytes)
        if _CPYTHON and _may_hold_surrogates(payload):  # "\\ud800" escapes give lone surrogates,
            json.dumps(obj, ensure_ascii=False).encode()  # which no UTF-8 encoder takes
    except ContractError as e:
        raise MessageError(e.path or _ROOT, e.reason) from None
    except UnicodeError:
        raise MessageError(_ROOT, _SURROGATES) from None
    except RuntimeError:
        raise MessageError(_ROOT, "is nested too deeply") from None
    _check(kind, obj)
    if kind == "cmd" and "args" not in obj:
        obj["args"] = {}
    return obj


def encode(kind, obj):
    """Validate, then compact JSON as UTF-8 bytes."""
    validate(kind, obj)
    try:
        if _CPYTHON:
            return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        return json.dumps(obj, separators=(",", ":")).encode()
    except UnicodeError:  # MemoryError passes: not the message's fault, send a smaller batch
        raise MessageError(_ROOT, _SURROGATES) from None


# Constructors. Optional arguments left at None are omitted (absent = null).

def state(online=True, fw=None, store_id=None, boot=None, table_version=None, table_sha256=None,
          last_seq=None, ports=None, heap_free=None, uptime_s=None, clock=None):
    msg = {"online": online}
    for key, value in (("fw", fw), ("store_id", store_id), ("boot", boot), ("table_version", table_version),
                       ("table_sha256", table_sha256), ("last_seq", last_seq), ("ports", ports),
                       ("heap_free", heap_free), ("uptime_s", uptime_s), ("clock", clock)):
        if value is not None:
            msg[key] = value
    return msg


def will():
    return {"online": False}


def table_ack(version, sha256, status, reason=None):
    return {"version": version, "sha256": sha256, "status": status, "reason": reason}


def events(store_id, records):
    return {"store_id": store_id, "records": records}


def events_ack(store_id, seq):
    return {"store_id": store_id, "seq": seq}


def cmd(id, op, args=None):
    return {"id": id, "op": op, "args": {} if args is None else args}


def cmd_result(id, ok, result=None, error=None):
    if ok:
        return {"id": id, "ok": ok, "result": result}
    return {"id": id, "ok": ok, "error": error}


def call_record(seq, start, port, caller, route, outcome, target, attempts, ring_s, talk_s, reason):
    return {"seq": seq, "t": "call", "start": start, "port": port, "caller": caller, "route": route, "outcome": outcome,
            "target": target, "attempts": attempts, "ring_s": ring_s, "talk_s": talk_s, "reason": reason}


def counters_record(seq, at, routes, targets, dropped=None):
    rec = {"seq": seq, "t": "counters", "at": at, "routes": routes, "targets": targets}
    if dropped is not None:
        rec["dropped"] = dropped
    return rec


def alarm_record(seq, at, code, detail, port=None):
    rec = {"seq": seq, "t": "alarm", "at": at, "code": code, "detail": detail}
    if port is not None:
        rec["port"] = port
    return rec


def dropped_record(seq, at, count, first_seq, last_seq):
    return {"seq": seq, "t": "dropped", "at": at, "count": count, "first_seq": first_seq, "last_seq": last_seq}
