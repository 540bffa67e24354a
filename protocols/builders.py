"""The contract's bounds on messages and records, and the constructors that keep to them
(protocols.messages checks the bounds and re-exports all of this; one module, not two: each module costs
the board's heap).

Times (call `start`, records' `at`, state `clock`) are UTC seconds, TIME_MIN (2000-01-01T00:00Z) <= t <
TIME_MAX (2100-01-01T00:00Z). Every seq, version and count is an integer 0 <= n < SEQ_LIMIT (2^53: exact
in a double, so in JSON everywhere). Text bounds are in characters. The JSON layer's own bounds (any
payload, any table body) are protocols.checks': MAX_DEPTH, INT_MIN, INT_MAX.

Constructors: optional arguments left at None are omitted (absent = null); free text is cut to its bound,
so what the firmware builds passes `messages.encode`. `fit_record` does the same for a record built as a dict.
"""

TIME_MIN = 946684800  # 2000-01-01T00:00:00Z
TIME_MAX = 4102444800  # 2100-01-01T00:00:00Z, excluded
SEQ_LIMIT = 2 ** 53  # every seq, version and count is below it: exact in a double, in JSON everywhere
MAX_ATTEMPTS = 1000
MAX_CALL_S = 7 * 86400
MAX_CALLER = 32
MAX_REASON = 32
MAX_KIND = 16
MAX_CODE = 48
MAX_DETAIL = 256
MAX_FW = 64
MAX_PROFILE = 32
MAX_ID = 64
MAX_OP = 32
MAX_ERROR = 256  # cmd_result error, table_ack reason
MAX_PORTS = 16
MAX_SIGNAL = 255  # a port's reg and csq
MAX_COUNTED = 1024  # routes or targets in a counters record
MAX_COUNTS = 64  # counts per route or target
MAX_COUNT_NAME = 32
MAX_JSON = 4096  # characters of cmd args / cmd_result result as compact JSON
MAX_RING_S = 600  # a call command's ring_timeout_s, as a target's
MAX_PDD_MS = MAX_RING_S * 1000  # a probe's post-dial delay: alerting comes within the ring timeout


def clip(text, limit):
    """`text` cut to `limit` characters (anything but a string is returned as it is)."""
    return text[:limit] if type(text) is str and len(text) > limit else text


def fit_time(t):
    """A time moved into TIME_MIN..TIME_MAX-1: a board whose clock was never set reports TIME_MIN."""
    if type(t) is not int or t < TIME_MIN:
        return TIME_MIN
    return t if t < TIME_MAX else TIME_MAX - 1


_TEXTS = {"call": (("caller", MAX_CALLER), ("reason", MAX_REASON)),
          "alarm": (("code", MAX_CODE), ("detail", MAX_DETAIL))}


def fit_record(rec):
    """Bring a record the firmware built within the bounds it can break by itself (free text cut,
    times moved into range) so it never stores a record the controller must refuse; in place."""
    for key in ("start", "at"):
        if key in rec:
            rec[key] = fit_time(rec[key])
    for key, limit in _TEXTS.get(rec.get("t"), ()):
        if key in rec:
            rec[key] = clip(rec[key], limit)
    if type(rec.get("t")) is str:
        rec["t"] = clip(rec["t"], MAX_KIND)
    return rec


def state(online=True, fw=None, store_id=None, boot=None, table_version=None, table_sha256=None,
          last_seq=None, ports=None, heap_free=None, uptime_s=None, clock=None, profile=None,
          heap_min_free=None, calls=None, outbox=None, calls_in_progress=None):
    msg = {"online": online}
    for key, value in (("fw", clip(fw, MAX_FW)), ("store_id", store_id), ("boot", boot),
                       ("table_version", table_version), ("table_sha256", table_sha256), ("last_seq", last_seq),
                       ("ports", ports), ("heap_free", heap_free), ("uptime_s", uptime_s), ("clock", clock),
                       ("profile", clip(profile, MAX_PROFILE)), ("heap_min_free", heap_min_free), ("calls", calls),
                       ("outbox", outbox), ("calls_in_progress", calls_in_progress)):
        if value is not None:
            msg[key] = value
    return msg


def will():
    return {"online": False}


def table_ack(version, sha256, status, reason=None):
    return {"version": version, "sha256": sha256, "status": status, "reason": clip(reason, MAX_ERROR)}


def events(store_id, records):
    return {"store_id": store_id, "records": records}


def events_ack(store_id, seq):
    return {"store_id": store_id, "seq": seq}


def cmd(id, op, args=None):
    return {"id": id, "op": op, "args": {} if args is None else args}


def cmd_result(id, ok, result=None, error=None):
    if ok:
        return {"id": id, "ok": ok, "result": result}
    return {"id": id, "ok": ok, "error": clip(error, MAX_ERROR)}


def call_record(seq, start, port, caller, route, outcome, target, attempts, ring_s, talk_s, reason):
    return {"seq": seq, "t": "call", "start": start, "port": port, "caller": clip(caller, MAX_CALLER), "route": route,
            "outcome": outcome, "target": target, "attempts": attempts, "ring_s": ring_s, "talk_s": talk_s,
            "reason": clip(reason, MAX_REASON)}


def counters_record(seq, at, routes, targets, dropped=None):
    rec = {"seq": seq, "t": "counters", "at": at, "routes": routes, "targets": targets}
    if dropped is not None:
        rec["dropped"] = dropped
    return rec


def alarm_record(seq, at, code, detail, port=None):
    rec = {"seq": seq, "t": "alarm", "at": at, "code": clip(code, MAX_CODE), "detail": clip(detail, MAX_DETAIL)}
    if port is not None:
        rec["port"] = port
    return rec


def dropped_record(seq, at, count, first_seq, last_seq):
    return {"seq": seq, "t": "dropped", "at": at, "count": count, "first_seq": first_seq, "last_seq": last_seq}


def outbound_record(seq, cmd, start, port, agent, citizen, outcome, ring_s, talk_s):
    """An operator's call to a citizen (DESIGN §5a), at its end."""
    return {"seq": seq, "t": "outbound", "cmd": cmd, "start": start, "port": port, "agent": agent,
            "citizen": citizen, "outcome": outcome, "ring_s": ring_s, "talk_s": talk_s}


def probe_record(seq, start, target, port, outcome, pdd_ms=None):
    """A probe call (DESIGN §5a): port None when nothing was dialled, pdd_ms None when it never rang."""
    return {"seq": seq, "t": "probe", "start": start, "target": target, "port": port, "outcome": outcome,
            "pdd_ms": pdd_ms}
