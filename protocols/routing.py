"""The routing table (DESIGN §4) and the routing decision (DESIGN §5).

`load` validates a table body and returns a `Table` tuned for `decide`;
`seal` / `unseal` wrap a body in its signed MQTT envelope. The firmware runs
`decide` on every inbound call and the controller runs the very same code to
preview a call before a table is pushed.
"""

import json

from protocols import checks, tz
from protocols.checks import at, item
from protocols.errors import ContractError
from protocols.sign import hmac_sha256, same_digest, sha256_hex, to_key

MAX_BODY = 32 * 1024
MAX_ENVELOPE = 3 * MAX_BODY
SCHEMA = 1
ACTIONS = ("dial", "reject", "callback", "forward")
APPLIED_ACTIONS = ("reject", "callback", "forward")
REASONS = ("ok", "no_route", "after_hours", "closed_day", "all_busy", "denied")
STRATEGIES = ("sequential", "round_robin")
DEFAULT_RING_TIMEOUT_S = 30
_REJECT = {"action": "reject"}


class TableError(ContractError):
    """A table or its envelope broke the contract; the previous table stays."""


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


class Table:
    """A validated table. `routes` and `targets` keep their wire shape, with
    `hours` turned into (weekday mask, start minute, end minute) triples and
    each target marked `denied` once, so a decision does no string parsing."""

    def __init__(self, doc, sha256):
        self.doc = doc
        self.sha256 = sha256
        self.gateway = doc["gateway"]
        self.version = doc["version"]
        self.tz = doc["_rule"]
        self.deny = doc["deny"]
        self.closed = doc["closed"]
        self.targets = doc["targets"]
        self.routes = doc["routes"]
        self._by_port = {}

    def candidates(self, port):
        """Routes that can serve `port`, in table order (cached per port)."""
        found = self._by_port.get(port)
        if found is None:
            found = [r for r in self.routes if r["port"] == port or r["port"] == "*"]
            self._by_port[port] = found
        return found

    def is_denied(self, number):
        for prefix in self.deny:
            if number.startswith(prefix):
                return True
        return False

    def __repr__(self):
        return "Table(%s v%d, %d routes, %d targets)" % (
            self.gateway, self.version, len(self.routes), len(self.targets))


# ---------------------------------------------------------------- loading


def load(body):
    """bytes / str / dict -> Table; raises TableError(path, reason)."""
    sha = None
    try:
        if type(body) is dict:
            checks.no_floats(body, "")
            doc = body
        else:
            doc = _parse(body, "")
            sha = sha256_hex(body.encode() if type(body) is str else body)
        _validate(doc)
    except TableError:
        raise
    except ContractError as e:
        raise TableError(e.path, e.reason)
    return Table(doc, sha)


def _parse(body, path):
    try:
        doc = checks.parse_json(body, path, MAX_BODY)
    except ContractError as e:
        raise TableError(e.path or "body", e.reason)
    if type(doc) is not dict:
        raise TableError(path or "body", "must be a JSON object")
    return doc


def _validate(doc):
    schema = checks.need(doc, "schema", "", int)
    if schema != SCHEMA:
        raise TableError("schema", "is %d, this reader knows schema %d" % (schema, SCHEMA))
    if not checks.is_gateway_id(checks.need(doc, "gateway", "", str)):
        raise TableError("gateway", "must match [a-z0-9-]{3,32}")
    if checks.need(doc, "version", "", int) < 1:
        raise TableError("version", "must be a positive integer")
    checks.get(doc, "issued_at", "", int)
    rule = checks.need(doc, "tz", "", str)
    try:
        doc["_rule"] = tz.parse(rule)
    except ContractError as e:
        raise TableError("tz", e.reason)
    doc["deny"] = _string_list(doc, "deny", checks.is_e164_prefix, "must be an E.164 prefix: + then 1-15 digits")
    doc["closed"] = _string_list(doc, "closed", _is_date, "must be a date YYYY-MM-DD")
    targets = checks.need(doc, "targets", "", dict)
    for tid in targets:
        _validate_target(doc, tid, targets[tid])
    routes = checks.need(doc, "routes", "", list)
    seen = {}
    for i in range(len(routes)):
        path = item("routes", i)
        route = checks.typed(routes[i], path, dict)
        _validate_route(route, path, targets)
        if route["id"] in seen:
            raise TableError(at(path, "id"), "duplicates the id of routes[%d]" % seen[route["id"]])
        seen[route["id"]] = i


def _string_list(doc, key, ok, reason):
    values = checks.get(doc, key, "", list, [])
    for i in range(len(values)):
        if not ok(values[i]):
            raise TableError(item(key, i), reason)
    return values


def _is_date(s):
    if type(s) is not str or len(s) != 10 or s[4] != "-" or s[7] != "-":
        return False
    y, m, d = s[:4], s[5:7], s[8:]
    if not (checks.is_digits(y, 4, 4) and checks.is_digits(m, 2, 2) and checks.is_digits(d, 2, 2)):
        return False
    y, m, d = int(y), int(m), int(d)
    if not 1 <= m <= 12:
        return False
    days = (31, 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28,
            31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[m - 1]
    return 1 <= d <= days


def _validate_target(doc, tid, target):
    path = "targets." + str(tid)
    if not checks.is_ident(tid):
        raise TableError(path, "target id must match [A-Za-z0-9][A-Za-z0-9_.-]{0,47}")
    checks.need_object(target, path)
    if not checks.is_number(checks.need(target, "number", path, str)):
        raise TableError(at(path, "number"), "must be E.164 (+ then 2-15 digits, not starting with 0) "
                         "or a short number of 2-15 digits")
    via = checks.need(target, "via", path, list)
    if not via:
        raise TableError(at(path, "via"), "must name at least one port")
    for i in range(len(via)):
        if not checks.is_port_name(via[i]):
            raise TableError(item(at(path, "via"), i), "must be a port name matching [a-z][a-z0-9]{0,15}")
    ring = checks.get(target, "ring_timeout_s", path, int, DEFAULT_RING_TIMEOUT_S)
    if not 1 <= ring <= 600:
        raise TableError(at(path, "ring_timeout_s"), "must be between 1 and 600 seconds")
    target["ring_timeout_s"] = ring
    cap = checks.get(target, "max_calls", path, int)
    if cap is not None and cap < 0:
        raise TableError(at(path, "max_calls"), "must be 0 or more")
    target["max_calls"] = cap
    denied = False
    for prefix in doc["deny"]:
        if target["number"].startswith(prefix):
            denied = True
    target["denied"] = denied


def _validate_route(route, path, targets):
    if not checks.is_ident(checks.need(route, "id", path, str)):
        raise TableError(at(path, "id"), "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,47}")
    port = checks.need(route, "port", path, str)
    if port != "*" and not checks.is_port_name(port):
        raise TableError(at(path, "port"), "must be a port name matching [a-z][a-z0-9]{0,15} or \"*\"")
    callers = checks.get(route, "caller", path, list, [])
    for i in range(len(callers)):
        if not checks.is_caller_prefix(callers[i]):
            raise TableError(item(at(path, "caller"), i), "must be a caller prefix: digits, optionally after +")
    route["caller"] = callers
    start = checks.get(route, "from", path, int)
    until = checks.get(route, "until", path, int)
    if start is not None and until is not None and until <= start:
        raise TableError(at(path, "until"), "must be later than from")
    route["from"], route["until"] = start, until
    hours = route.get("hours")
    if hours is not None:
        route["hours"] = [_window(w, item(at(path, "hours"), i))
                          for i, w in enumerate(checks.typed(hours, at(path, "hours"), list))]
    ids = checks.need(route, "targets", path, list)
    for i in range(len(ids)):
        if type(ids[i]) is not str or ids[i] not in targets:
            raise TableError(item(at(path, "targets"), i), "names no target of this table")
    strategy = checks.get(route, "strategy", path, str, "sequential")
    if strategy not in STRATEGIES:
        raise TableError(at(path, "strategy"), "must be sequential or round_robin")
    route["strategy"] = strategy
    route["fallback"] = _action(route, "fallback", path, targets)
    route["after_hours"] = _action(route, "after_hours", path, targets)


def _window(w, path):
    checks.need_object(w, path)
    days = checks.need(w, "days", path, str)
    mask = 0
    for ch in days:
        if ch not in "1234567":
            raise TableError(at(path, "days"), "must hold ISO weekdays 1-7 (1 = Monday), got " + repr(ch))
        if mask & (1 << int(ch)):
            raise TableError(at(path, "days"), "repeats weekday " + ch)
        mask |= 1 << int(ch)
    if not mask:
        raise TableError(at(path, "days"), "must name at least one weekday")
    start = _minutes(checks.need(w, "start", path, str), at(path, "start"), False)
    end = _minutes(checks.need(w, "end", path, str), at(path, "end"), True)
    return (mask, start, end)


def _minutes(s, path, allow_24):
    if len(s) != 5 or s[2] != ":" or not checks.is_digits(s[:2], 2, 2) or not checks.is_digits(s[3:], 2, 2):
        raise TableError(path, "must be a time HH:MM")
    h, m = int(s[:2]), int(s[3:])
    if allow_24 and h == 24 and m == 0:
        return 1440
    if h > 23 or m > 59:
        raise TableError(path, "%s is not a time of day (00:00-23:59%s)" % (s, ", or 24:00" if allow_24 else ""))
    return h * 60 + m


def _action(route, key, path, targets):
    act = route.get(key)
    if act is None:
        return _REJECT
    path = at(path, key)
    checks.need_object(act, path)
    name = checks.need(act, "action", path, str)
    if name not in APPLIED_ACTIONS:
        raise TableError(at(path, "action"), "must be reject, callback or forward")
    if name == "forward":
        target = act.get("target")
        if target is None:
            raise TableError(at(path, "target"), "is required when action is forward")
        if type(target) is not str or target not in targets:
            raise TableError(at(path, "target"), "names no target of this table")
    return act


# ---------------------------------------------------------------- deciding


def decide(table, port, caller, now, busy=None, turn=0):
    """The routing decision of DESIGN §5 for one inbound call."""
    route = _pick(table, port, caller or "", now)
    if route is None:
        return Decision("reject", None, [], "no_route")
    lt = tz.localtime(now, table.tz)
    if table.closed and tz.date_str(lt) in table.closed:
        return _apply(table, route, route["after_hours"], "closed_day")
    hours = route.get("hours")
    if hours is not None and not _open(hours, lt):
        return _apply(table, route, route["after_hours"], "after_hours")
    ids = route["targets"]
    n = len(ids)
    if route["strategy"] == "round_robin" and n:
        k = turn % n
        ids = ids[k:] + ids[:k]
    targets = table.targets
    allowed = [tid for tid in ids if not targets[tid]["denied"]]
    if not allowed:
        return _apply(table, route, route["fallback"], "denied")
    free = []
    for tid in allowed:
        cap = targets[tid]["max_calls"]
        if cap is None or busy is None or busy.get(tid, 0) < cap:
            free.append(tid)
    if free:
        return Decision("dial", route["id"], free, "ok")
    return _apply(table, route, route["fallback"], "all_busy")


def _pick(table, port, caller, now):
    best = None
    best_key = None
    for route in table.candidates(port):
        start, until = route["from"], route["until"]
        if (start is not None and now < start) or (until is not None and now >= until):
            continue
        callers = route["caller"]
        length = 0
        if callers:
            length = -1
            for prefix in callers:
                if len(prefix) > length and caller.startswith(prefix):
                    length = len(prefix)
            if length < 0:
                continue
        key = (length, route["port"] != "*")
        if best is None or key > best_key:
            best, best_key = route, key
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
    name = act["action"]
    if name == "forward":
        tid = act["target"]
        if table.targets[tid]["denied"]:
            return Decision("reject", route["id"], [], "denied")
        return Decision("forward", route["id"], [tid], reason)
    return Decision(name, route["id"], [], reason)


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
    doc = _parse(raw, "body")
    if doc.get("gateway") != gateway:
        raise TableError("gateway", "table is for %r, this gateway is %r" % (doc.get("gateway"), gateway))
    version = doc.get("version")
    if type(version) is not int:
        raise TableError("version", "must be an integer")
    if version <= current_version:
        raise TableError("version", "%d is not newer than the running version %d" % (version, current_version))
    try:
        _validate(doc)
    except TableError:
        raise
    except ContractError as e:
        raise TableError(e.path, e.reason)
    return Table(doc, sha256_hex(raw))
