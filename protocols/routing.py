"""The routing table (DESIGN §4) and the routing decision (DESIGN §5).

`load` validates a table body and returns a `Table` tuned for `decide`;
`seal` / `unseal` wrap a body in its signed MQTT envelope. The firmware runs
`decide` on every inbound call and the controller runs the very same code to
preview a call before a table is pushed.
"""

import json

from protocols import checks, tz
from protocols.errors import ContractError
from protocols.sign import hmac_sha256, same_digest, to_key
from protocols.table import MAX_BODY, Table, TableError, load  # noqa: F401  (the contract's names)

MAX_ENVELOPE = 3 * MAX_BODY
ACTIONS = ("dial", "reject", "callback", "forward")
REASONS = ("ok", "no_route", "after_hours", "closed_day", "all_busy", "denied")


class Decision:
    """What to do with one inbound call."""

    def __init__(self, action, route, targets, reason):
        self.action = action
        self.route = route
        self.targets = targets
        self.reason = reason

    def as_dict(self):
        return {"action": self.action, "route": self.route, "targets": self.targets, "reason": self.reason}

    def __eq__(self, other):
        return isinstance(other, Decision) and self.as_dict() == other.as_dict()

    def __repr__(self):
        return "Decision(%s, route=%r, targets=%r, reason=%s)" % (
            self.action, self.route, self.targets, self.reason)


# ---------------------------------------------------------------- deciding


def decide(table, port, caller, now, busy=None, turn=0):
    """The routing decision of DESIGN §5 for one inbound call."""
    route = _pick(table, port, caller or "", now)
    if route is None:
        return Decision("reject", None, [], "no_route")
    lt = tz.localtime(now, table.tz)
    if table.closed and tz.date_str(lt) in table.closed:
        return _apply(table, route, route.after_hours, "closed_day")
    if route.hours is not None and not _open(route.hours, lt):
        return _apply(table, route, route.after_hours, "after_hours")
    ids = route.targets
    n = len(ids)
    if route.strategy == "round_robin" and n:
        k = turn % n
        ids = ids[k:] + ids[:k]
    targets = table.targets
    allowed = [tid for tid in ids if not targets[tid].denied]
    if not allowed:
        return _apply(table, route, route.fallback, "denied")
    free = []
    for tid in allowed:
        cap = targets[tid].max_calls
        if cap is None or (busy.get(tid, 0) if busy else 0) < cap:
            free.append(tid)
    if free:
        return Decision("dial", route.id, free, "ok")
    return _apply(table, route, route.fallback, "all_busy")


def _pick(table, port, caller, now):
    """Step 1-2: the in-effect candidate with the longest caller prefix,
    then a named port over "*", then the earlier route."""
    best = None
    best_len = -1
    best_named = False
    for route in table.candidates(port):
        if (route.start is not None and now < route.start) or (route.until is not None and now >= route.until):
            continue
        length = 0
        if route.caller:
            length = -1
            for prefix in route.caller:
                if len(prefix) > length and caller.startswith(prefix):
                    length = len(prefix)
            if length < 0:
                continue
        named = route.port != "*"
        if length > best_len or (length == best_len and named and not best_named):
            best, best_len, best_named = route, length, named
    return best


def _open(hours, lt):
    minute = lt[3] * 60 + lt[4]
    day = lt[6]
    prev = 7 if day == 1 else day - 1
    for mask, start, end in hours:
        if start < end:
            if mask & (1 << day) and start <= minute < end:
                return True
        elif start > end:
            if (mask & (1 << day) and minute >= start) or (mask & (1 << prev) and minute < end):
                return True
    return False


def _apply(table, route, act, reason):
    name, tid = act
    if name == "forward":
        if table.targets[tid].denied:
            return Decision("reject", route.id, [], "denied")
        return Decision("forward", route.id, [tid], reason)
    return Decision(name, route.id, [], reason)


# ---------------------------------------------------------------- envelope


def seal(body, key):
    """Body bytes + the gateway's key -> the signed MQTT payload (bytes)."""
    raw = body.encode() if type(body) is str else bytes(body)
    sig = hmac_sha256(to_key(key), raw)
    return json.dumps({"v": 1, "alg": "HS256", "sig": sig, "body": raw.decode()}).encode()


def unseal(payload, key, gateway, current_version=0):
    """Check envelope, signature, gateway id and anti-rollback, then load()."""
    try:
        env = checks.parse_json(payload, "envelope", MAX_ENVELOPE)
    except ContractError as e:
        raise TableError(e.path, e.reason)
    if type(env) is not dict:
        raise TableError("envelope", "must be a JSON object")
    if env.get("v") != 1:
        raise TableError("v", "must be 1")
    if env.get("alg") != "HS256":
        raise TableError("alg", "must be HS256")
    sig = env.get("sig")
    if not checks.is_hex(sig, 64):
        raise TableError("sig", "must be 64 lowercase hex digits")
    body = env.get("body")
    if type(body) is not str:
        raise TableError("body", "must be a string holding the table JSON")
    del env
    raw = body.encode()
    del body
    if not same_digest(hmac_sha256(to_key(key), raw), sig):
        raise TableError("sig", "signature does not match: wrong key or altered body")
    return load(raw, gateway=gateway, newer_than=current_version)
