"""Loading and validating a routing table (DESIGN §4) into a compact form.

A body is parsed one top-level field, one target and one route at a time
(see jsonscan) and each is kept as a small object, so a 32 KiB table loads
within an ESP32's heap. The same code validates tables in the controller.
"""

import gc
import json
import sys
from collections import namedtuple

from protocols import checks, jsonscan, tz
from protocols.checks import at, item
from protocols.errors import ContractError
from protocols.sign import sha256_hex

MAX_BODY = 32 * 1024
_SMALL_HEAP = sys.implementation.name == "micropython"  # collect while building only where it matters
SCHEMA = 1
APPLIED_ACTIONS = ("reject", "callback", "forward")
STRATEGIES = ("sequential", "round_robin")
DEFAULT_RING_TIMEOUT_S = 30
REJECT = ("reject", None)
CALLBACK = ("callback", None)
_ID_RULE = "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,47}"
_PORT_RULE = "must be a port name matching [a-z][a-z0-9]{0,15}"


class TableError(ContractError):
    """A table or its envelope broke the contract; the previous table stays."""


# Routes and targets (a call centre or number a route dials) are named
# tuples: about half the heap of instances on
# MicroPython, and a table holds hundreds of them.
Target = namedtuple("Target", ("id", "number", "via", "ring_timeout_s", "max_calls", "denied"))

# `hours` holds (weekday bit mask, start minute, end minute) triples and the
# actions are (name, target id) pairs, so deciding parses nothing.
Route = namedtuple("Route", ("id", "port", "caller", "start", "until", "hours", "targets", "strategy",
                             "fallback", "after_hours"))


class Table:
    def __init__(self, gateway, version, issued_at, tz_text, deny, closed, targets, routes, sha256, lengths):
        self.gateway = gateway
        self.version = version
        self.issued_at = issued_at
        self.tz_text = tz_text
        self.tz = tz.parse(tz_text)
        self._deny = deny  # b"\n+7\n+38064\n": one small object, however many prefixes
        self._deny_lengths = lengths  # the distinct prefix lengths, for is_denied
        self.closed = closed
        self.targets = targets
        self.routes = routes
        self.sha256 = sha256
        self._by_port = {}

    def candidates(self, port):
        """Routes that can serve `port`, in table order (cached per port)."""
        found = self._by_port.get(port)
        if found is None:
            found = [r for r in self.routes if r.port == port or r.port == "*"]
            self._by_port[port] = found
        return found

    @property
    def deny(self):
        """The forbidden prefixes, as a tuple (built on demand)."""
        return tuple(p for p in self._deny.decode().split("\n") if p)

    def is_denied(self, number):
        """True when `number` starts with a forbidden prefix: checked again before every dial."""
        return _denied(self._deny, self._deny_lengths, number)

    def __repr__(self):
        return "Table(%s v%d, %d routes, %d targets)" % (
            self.gateway, self.version, len(self.routes), len(self.targets))


def _denied(packed, lengths, number):
    for n in lengths:
        if len(number) >= n and packed.find(b"\n" + number[:n].encode() + b"\n") >= 0:
            return True
    return False


class _Text:
    """A body as bytes: each member parsed only when asked for."""

    def __init__(self, raw):
        self.raw = raw
        self.spans = {}
        for key, s, e in jsonscan.top_members(raw, "body"):
            self.spans[key] = (s, e)

    def __contains__(self, key):
        return key in self.spans

    def get_raw_null(self, key):
        s, e = self.spans[key]
        return self.raw[s:e] == b"null"

    def get(self, key):
        span = self.spans.get(key)
        return None if span is None else checks.parse_json(self.raw[span[0]:span[1]], key)

    def members(self, key):
        s = self.spans[key][0]
        for name, vs, ve in jsonscan.members(self.raw, s, key)[0]:
            yield name, checks.parse_json(self.raw[vs:ve], at(key, name))

    def elements(self, key):
        s = self.spans[key][0]
        i = 0
        for vs, ve in jsonscan.elements(self.raw, s, key)[0]:
            yield checks.parse_json(self.raw[vs:ve], item(key, i))
            i += 1


class _Doc:
    """A body already parsed into a dict (the controller's path)."""

    def __init__(self, doc):
        checks.no_floats(doc, "")
        self.doc = doc

    def __contains__(self, key):
        return key in self.doc

    def get_raw_null(self, key):
        return self.doc.get(key) is None

    def get(self, key):
        return self.doc.get(key)

    def members(self, key):
        value = checks.typed(self.doc[key], key, dict)
        for name in value:
            yield name, value[name]

    def elements(self, key):
        for v in checks.typed(self.doc[key], key, list):
            yield v


def load(body, gateway=None, newer_than=None):
    """bytes / str / dict -> Table; raises TableError(path, reason).

    With `gateway` and `newer_than`, the id and anti-rollback checks run
    before the rest of the table is validated (unseal uses them).
    """
    try:
        if type(body) is dict:
            src, sha = _Doc(body), None
        else:
            t = type(body)
            if t is str:
                raw = body.encode()
            elif t is bytes or t is bytearray:
                raw = body  # parsed where it lies, no copy
            elif t is memoryview:
                raw = bytes(body)
            else:
                raise TableError("body", "must be JSON text or an object, not " + t.__name__)
            if len(raw) > MAX_BODY:
                raise TableError("body", "is %d bytes, more than the %d allowed" % (len(raw), MAX_BODY))
            src, sha = _Text(raw), sha256_hex(raw)
        return _build(src, sha, gateway, newer_than)
    except TableError:
        raise
    except ContractError as e:
        raise TableError(e.path, e.reason)
    except MemoryError:
        raise TableError("body", "does not fit in this gateway's memory")


def _need(src, key, kind):
    if key not in src:
        raise TableError(key, "is required")
    return checks.typed(src.get(key), key, kind)


def _build(src, sha, expect_gateway, newer_than):
    gw = _need(src, "gateway", str)
    if expect_gateway is not None and gw != expect_gateway:
        raise TableError("gateway", "table is for %r, this gateway is %r" % (gw, expect_gateway))
    if not checks.is_gateway_id(gw):
        raise TableError("gateway", "must match [a-z0-9-]{3,32}")
    version = _need(src, "version", int)
    if newer_than is not None and version <= newer_than:
        raise TableError("version", "%d is not newer than the running version %d" % (version, newer_than))
    if version < 1:
        raise TableError("version", "must be a positive integer")
    schema = _need(src, "schema", int)
    if schema != SCHEMA:
        raise TableError("schema", "is %d, this reader knows schema %d" % (schema, SCHEMA))
    issued = src.get("issued_at")
    if issued is not None:
        checks.typed(issued, "issued_at", int)
    rule = _need(src, "tz", str)
    try:
        tz.parse(rule)
    except ContractError as e:
        raise TableError("tz", e.reason)
    deny, lengths = _packed_deny(src)
    closed = _strings(src, "closed", _is_date, "must be a date YYYY-MM-DD")
    _present(src, "targets")
    targets = {}
    for tid, t in src.members("targets"):
        targets[tid] = _target(tid, t, deny, lengths)
    _present(src, "routes")
    routes = []
    ids = {}
    shared = {"*": "*"}  # one copy of each port name and hours list
    i = 0
    for r in src.elements("routes"):
        path = item("routes", i)
        route = _route(checks.typed(r, path, dict), path, targets, shared)
        del r
        if _SMALL_HEAP and i % 16 == 15:
            gc.collect()
        if route.id in ids:
            raise TableError(at(path, "id"), "duplicates the id of routes[%d]" % ids[route.id])
        ids[route.id] = i
        routes.append(route)
        i += 1
    if _SMALL_HEAP:
        gc.collect()
    return Table(gw, version, issued, rule, deny, closed, targets, routes, sha, lengths)


def _present(src, key):
    if key not in src:
        raise TableError(key, "is required")


def _strings(src, key, ok, reason):
    values = src.get(key)
    if values is None:
        return ()
    checks.typed(values, key, list)
    for i in range(len(values)):
        if not ok(values[i]):
            raise TableError(item(key, i), reason)
    return tuple(values)


def _is_date(s):
    if type(s) is not str or len(s) != 10 or s[4] != "-" or s[7] != "-":
        return False
    y, m, d = s[:4], s[5:7], s[8:]
    if not (checks.is_digits(y, 4, 4) and checks.is_digits(m, 2, 2) and checks.is_digits(d, 2, 2)):
        return False
    y, m, d = int(y), int(m), int(d)
    if not 1 <= m <= 12:
        return False
    return 1 <= d <= tz.month_days(y, m)


def _packed_deny(src):
    """The deny list as one bytes object and its distinct prefix lengths, parsed one prefix at a time."""
    if "deny" not in src or src.get_raw_null("deny"):
        return b"\n", ()
    out = bytearray(b"\n")
    lengths = []
    i = 0
    for p in src.elements("deny"):
        if not checks.is_e164_prefix(p):
            raise TableError(item("deny", i), "must be an E.164 prefix: + then 1-15 digits")
        out.extend(p.encode())
        out.append(10)
        if len(p) not in lengths:
            lengths.append(len(p))
        i += 1
    return bytes(out), tuple(sorted(lengths))


def _target(tid, t, deny, lengths):
    path = "targets." + str(tid)
    if not checks.is_ident(tid):
        raise TableError(path, "target id " + _ID_RULE)
    checks.need_object(t, path)
    number = checks.need(t, "number", path, str)
    if not checks.is_number(number):
        raise TableError(at(path, "number"), "must be E.164 (+ then 2-15 digits, not starting with 0) "
                         "or a short number of 2-15 digits")
    via = checks.need(t, "via", path, list)
    if not via:
        raise TableError(at(path, "via"), "must name at least one port")
    for i in range(len(via)):
        if not checks.is_port_name(via[i]):
            raise TableError(item(at(path, "via"), i), _PORT_RULE)
    ring = checks.get(t, "ring_timeout_s", path, int, DEFAULT_RING_TIMEOUT_S)
    if not 1 <= ring <= 600:
        raise TableError(at(path, "ring_timeout_s"), "must be between 1 and 600 seconds")
    cap = checks.get(t, "max_calls", path, int)
    if cap is not None and cap < 0:
        raise TableError(at(path, "max_calls"), "must be 0 or more")
    return Target(tid, number, tuple(via), ring, cap, _denied(deny, lengths, number))


def _route(r, path, targets, shared):
    rid = checks.need(r, "id", path, str)
    if not checks.is_ident(rid):
        raise TableError(at(path, "id"), _ID_RULE)
    port = checks.need(r, "port", path, str)
    if port != "*" and not checks.is_port_name(port):
        raise TableError(at(path, "port"), _PORT_RULE + " or \"*\"")
    port = shared.setdefault(port, port)
    callers = checks.get(r, "caller", path, list, [])
    for i in range(len(callers)):
        if not checks.is_caller_prefix(callers[i]):
            raise TableError(item(at(path, "caller"), i), "must be a caller prefix: digits, optionally after +")
    start = checks.get(r, "from", path, int)
    until = checks.get(r, "until", path, int)
    if start is not None and until is not None and until <= start:
        raise TableError(at(path, "until"), "must be later than from")
    hours = r.get("hours")
    if hours is not None:
        hp = at(path, "hours")
        checks.typed(hours, hp, list)
        hours = tuple(_window(hours[i], item(hp, i)) for i in range(len(hours)))
        hours = shared.setdefault(hours, hours)
    ids = checks.need(r, "targets", path, list)
    for i in range(len(ids)):
        if type(ids[i]) is not str or ids[i] not in targets:
            raise TableError(item(at(path, "targets"), i), "names no target of this table")
        ids[i] = targets[ids[i]].id  # share the one id string
    strategy = checks.get(r, "strategy", path, str, "sequential")
    if strategy not in STRATEGIES:
        raise TableError(at(path, "strategy"), "must be sequential or round_robin")
    strategy = STRATEGIES[STRATEGIES.index(strategy)]  # the one shared string
    return Route(rid, port, tuple(callers), start, until, hours, tuple(ids), strategy,
                 _action(r, "fallback", path, targets), _action(r, "after_hours", path, targets))


def _window(w, path):
    checks.need_object(w, path)
    days = checks.need(w, "days", path, str)
    mask = 0
    for ch in days:
        if ch not in "1234567":
            raise TableError(at(path, "days"), "must hold ISO weekdays 1-7 (1 = Monday), got " + json.dumps(ch))
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


def _action(r, key, path, targets):
    act = r.get(key)
    if act is None:
        return REJECT
    path = at(path, key)
    checks.need_object(act, path)
    name = checks.need(act, "action", path, str)
    if name not in APPLIED_ACTIONS:
        raise TableError(at(path, "action"), "must be reject, callback or forward")
    if name != "forward":
        return REJECT if name == "reject" else CALLBACK
    target = act.get("target")
    if target is None:
        raise TableError(at(path, "target"), "is required when action is forward")
    if type(target) is not str or target not in targets:
        raise TableError(at(path, "target"), "names no target of this table")
    return ("forward", targets[target].id)
