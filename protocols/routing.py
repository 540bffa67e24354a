"""The routing table (DESIGN §4) and the routing decision (DESIGN §5).

`load` validates a table body and returns a `Table` tuned for `decide`;
`seal` / `unseal` wrap a body in its signed MQTT envelope. The firmware runs
`decide` on every inbound call and the controller runs the very same code to
preview a call before a table is pushed.
"""

import json

from protocols import checks, jsonscan, tz
from protocols.errors import ContractError
from protocols.sign import hmac_sha256, same_digest, sha256_hex, to_key
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
    if type(payload) is str:
        payload = payload.encode()
    if type(payload) not in (bytes, bytearray, memoryview):
        raise TableError("envelope", "must be bytes")
    table, _ = unseal_into(bytearray(payload), key, gateway, current_version)
    return table


def unseal_into(buf, key, gateway, current_version=0):
    """unseal() on a bytearray the caller gives up: the envelope is decoded in place, leaving
    `buf` holding the body, so a board needs no second copy of a 32 KiB table.
    Returns (table, sig). A TableError carries `version` and `sha256` of the body when known."""
    env = _envelope(buf)
    sig = env["sig"]
    s, e = env["body"]
    jsonscan.unescape_to_front(buf, s, e, "body")
    return verify_body(buf, sig, key, gateway, current_version), sig


def _envelope(buf):
    try:
        if len(buf) > MAX_ENVELOPE:
            raise TableError("envelope", "is %d bytes, more than the %d allowed" % (len(buf), MAX_ENVELOPE))
        spans = {}
        for k, vs, ve in jsonscan.top_members(buf, "envelope"):
            spans[k] = (vs, ve)
    except TableError:
        raise
    except ContractError as e:
        raise TableError(e.path, e.reason)
    out = {}
    for key, want in (("v", 1), ("alg", "HS256")):
        got = _small(buf, spans, key)
        if got != want:
            raise TableError(key, "must be " + json.dumps(want))
    sig = _small(buf, spans, "sig")
    if not checks.is_hex(sig, 64):
        raise TableError("sig", "must be 64 lowercase hex digits")
    out["sig"] = sig
    span = spans.get("body")
    if span is None or buf[span[0]] != 34:
        raise TableError("body", "must be a string holding the table JSON")
    out["body"] = span
    return out


def _small(buf, spans, key):
    span = spans.get(key)
    if span is None or span[1] - span[0] > 200:
        return None
    try:
        return json.loads(buf[span[0]:span[1]])
    except ValueError:
        return None


def verify_body(body, sig, key, gateway, current_version=0):
    """A table body and its signature -> Table, with every check of unseal()."""
    if not same_digest(hmac_sha256(to_key(key), body), sig):
        raise _tagged(TableError("sig", "signature does not match: wrong key or altered body"), body)
    try:
        return load(body, gateway=gateway, newer_than=current_version)
    except TableError as e:
        raise _tagged(e, body)


def _tagged(err, body):
    """Attach what is known of a refused body to its error, for the table ack."""
    err.sha256 = sha256_hex(body)
    err.version = None
    try:
        i = body.find(b'"version"')
        if i >= 0:
            j = body.find(b":", i) + 1
            k = j
            while k < len(body) and body[k] in b" 0123456789":
                k += 1
            err.version = int(bytes(body[j:k]))
    except Exception:
        pass
    return err
