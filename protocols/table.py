"""Loading and validating a routing table (DESIGN §4) into a compact form.

A body is parsed one top-level field, one target and one route at a time
(see jsonscan) and each is kept as a small object, so a 32 KiB table loads
within an ESP32's heap. The same code validates tables in the controller.
"""

import gc
import json
import sys
from collections import namedtuple

from protocols import callerset, checks, jsonscan, tz
from protocols.checks import at, item
from protocols.errors import UNEXPECTED, ContractError
from protocols.routeset import (  # noqa: F401  (Route and the rest's indexes: names of this module)
    AFTER_HOURS,
    BLOCK,
    CLOSED,
    FALLBACK,
    HOURS,
    MENU,
    PORT,
    STRATEGY,
    Route,
    Routes,
)
from protocols.sign import sha256_hex

MAX_BODY = 32 * 1024
_SMALL_HEAP = sys.implementation.name == "micropython"  # collect while building only where it matters
SCHEMA = 1
APPLIED_ACTIONS = ("reject", "callback", "forward")
STRATEGIES = ("sequential", "round_robin")
DEFAULT_RING_TIMEOUT_S = 30
REJECT = ("reject", None)
CALLBACK = ("callback", None)
NEXT = ("next", None)  # after_hours only (DESIGN §5a): a closed route yields to the next candidate
_ID_RULE = "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,47}"
_PORT_RULE = "must be a port name matching [a-z][a-z0-9]{0,15}"


class TableError(ContractError):
    """A table or its envelope broke the contract; the previous table stays."""


# Targets (a call centre or number a route dials) are named tuples: about half the heap of instances on
# MicroPython. Routes, hundreds to a table, are kept column by column (protocols.routeset).
Target = namedtuple("Target", ("id", "number", "via", "ring_timeout_s", "max_calls", "denied"))
# a menu (IVR at the edge): options: an Option or None for each of MENU_KEYS, by its place there (a tuple
# costs a fraction of a dict's heap); default: the key used on a timeout or an unknown key
Menu = namedtuple("Menu", ("id", "prompt", "timeout_s", "tries", "default", "options"))
Option = namedtuple("Option", ("key", "targets", "strategy", "fallback"))
MENU_KEYS = "0123456789*#"


class Table:
    probes = ()  # DESIGN §5a: protocols.probes.Probe tuples, set by _build when the table has some
    caller_chunks = ()  # the routes' shared caller spans (protocols.callerset), set by _build
    caller_lengths = ()  # the distinct caller prefix lengths, longest first

    def __init__(self, gateway, version, issued_at, tz_text, deny, closed, targets, routes, sha256, lengths,
                 menus=None):
        self.gateway = gateway
        self.version = version
        self.issued_at = issued_at
        self.tz_text = tz_text
        self.tz = tz.parse(tz_text)
        self._deny = deny  # (b"\n+7\n+38064\n", ...): a few objects of <= 1 KiB, however many prefixes
        self._deny_lengths = lengths  # the distinct prefix lengths, for is_denied
        self.closed = closed
        self.targets = targets
        self.routes = routes  # a protocols.routeset.Routes
        self.menus = menus or {}
        self.sha256 = sha256
        self._by_port = {}

    def candidates(self, port):
        """The routes that can serve `port`, in table order (cached per port): for each block of routes
        (protocols.routeset) bytes of k << 1 | 1 when the block's route k names the port (0: it is "*"),
        the tie-break routing._pick needs without reading the route."""
        found = self._by_port.get(port)
        if found is None:
            routes = self.routes
            flag = [(1 if r[PORT] == port else 0 if r[PORT] == "*" else -1) for r in routes.rests]
            found = []
            for b in range(len(routes.rest_of)):
                rest_of = routes.rest_of[b]
                found.append(bytes([k << 1 | flag[rest_of[k]] for k in range(min(BLOCK, len(routes) - b * BLOCK))
                                    if flag[rest_of[k]] >= 0]))
            self._by_port[port] = found
        return found

    @property
    def deny(self):
        """The forbidden prefixes, as a tuple (built on demand)."""
        return tuple(p for chunk in self._deny for p in chunk.decode().split("\n") if p)

    def is_denied(self, number):
        """True when `number` starts with a forbidden prefix: checked again before every dial."""
        return _denied(self._deny, self._deny_lengths, number)

    def __repr__(self):
        return "Table(%s v%d, %d routes, %d targets)" % (
            self.gateway, self.version, len(self.routes), len(self.targets))


def _denied(packed, lengths, number):
    for n in lengths:
        if len(number) >= n:
            key = b"\n" + number[:n].encode() + b"\n"
            for chunk in packed:
                if chunk.find(key) >= 0:
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

    def check_rest(self, known):
        """The members the loader does not read must still be strict JSON (a float names its path)."""
        for key in self.spans:
            if key not in known:
                s, e = self.spans[key]
                checks.check_json(self.raw[s:e], key)

    def elements(self, key):
        s = self.spans[key][0]
        i = 0
        for vs, ve in jsonscan.elements(self.raw, s, key)[0]:
            yield checks.parse_json(self.raw[vs:ve], item(key, i))
            i += 1


class _Doc:
    """A body already parsed into a dict (the controller's path)."""

    def __init__(self, doc):
        if checks.not_plain_json(doc):  # a float (its path), nesting deeper than 32, a non-JSON value
            checks.explain(doc, "")
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

    def check_rest(self, known):
        pass  # the whole dict was checked when it came in


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
    except UnicodeError:  # a str holding lone surrogates (CPython)
        raise TableError("body", "is not valid UTF-8")
    except Exception as e:  # a bug, not the table's fault: still only the contract's error leaves
        raise TableError("body", UNEXPECTED + type(e).__name__ + ": " + str(e))


def load_from(src, sha256, gateway=None, newer_than=None):
    """Like load(), from a source read piece by piece (the firmware's table file on flash): any object
    with `in`, get(key), get_raw_null(key), members(key) and elements(key), as _Text has.
    MemoryError passes: the board answers it as too big."""
    try:
        return _build(src, sha256, gateway, newer_than)
    except TableError:
        raise
    except ContractError as e:
        raise TableError(e.path, e.reason)


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
    calendars = _calendars(src)
    _present(src, "targets")
    targets = {}
    for tid, t in src.members("targets"):
        targets[tid] = _target(tid, t, deny, lengths)
        del t
        if _SMALL_HEAP:
            gc.collect()
    shared = {"*": "*"}  # one copy of each port name, hours list, target list and forward action
    menus = _menus(src, targets, shared)
    _present(src, "routes")
    packer = callerset.Packer(_kept)
    routes = _routes(src, targets, shared, calendars, menus, packer)
    chunks, caller_lengths = packer.finish()
    routes.finish(chunks)
    del packer
    probes = _probes(src, targets, shared)
    src.check_rest(_READ)
    table = Table(gw, version, issued, rule, deny, closed, targets, routes, sha, lengths, menus)
    table.caller_chunks, table.caller_lengths = chunks, caller_lengths
    if probes:
        table.probes = probes
    return table


def _probes(src, targets, shared):
    """`probes` (DESIGN §5a), validated by protocols.probes: imported only by a table that has some."""
    if "probes" not in src:
        return ()
    from protocols import probes

    return probes.load(src, targets, _window, shared)


def _routes(src, targets, shared, calendars, menus, packer):
    """The routes in table order (protocols.routeset). On a small heap each route's leftovers are
    collected before the next is parsed and the columns are sized once from the source's count: what the
    table keeps then lies packed, not strewn among dead parser objects, and no column grows on a crowded heap."""
    n = src.count("routes") if hasattr(src, "count") else 0
    routes = Routes(n if 0 < n <= MAX_BODY // _MIN_ROUTE else 0, targets)
    seen = bytearray(_ID_BITS // 8)
    i = 0
    for r in src.elements("routes"):
        path = item("routes", i)
        rid, ids, when, rest = _route(checks.typed(r, path, dict), path, targets, shared, calendars, menus,
                                      packer)
        del r  # with the caller prefixes staged, the parsed route can go before they are placed
        if _SMALL_HEAP:
            gc.collect()
        caller, span = packer.place()
        j = _earlier(routes, rid, seen)
        if j >= 0:
            raise TableError(at(path, "id"), "duplicates the id of routes[%d]" % j)
        routes.add(rid, caller, span, ids, when, rest)
        del ids, when, rest
        i += 1
    if _SMALL_HEAP:
        gc.collect()
    return routes


_MIN_ROUTE = 30  # bytes of the smallest route text, {"id":"a","port":"*","menu":"m"}: bounds a count
_ID_BITS = 4096


def _earlier(routes, rid, seen):
    """The index of an earlier route with the id `rid`, else -1. `seen`, a fixed bit set over the ids'
    hashes, makes that search rare: no dict of ids grows while the routes load."""
    h = hash(rid) & (_ID_BITS - 1)
    bit = 1 << (h & 7)
    if not seen[h >> 3] & bit:
        seen[h >> 3] |= bit
        return -1
    return routes.find(rid)


_READ = ("gateway", "version", "schema", "issued_at", "tz", "deny", "closed", "calendars", "menus", "targets",
         "routes", "probes")


def _menus(src, targets, shared):
    """`menus` (DESIGN §5a): {menu id: Menu}; each option dials like a route (targets, strategy, fallback)."""
    out = {}
    for mid, m, path in _by_id(src, "menus"):
        checks.need_object(m, path)
        prompt = checks.need(m, "prompt", path, str)
        if not 1 <= len(prompt) <= 64:
            raise TableError(at(path, "prompt"), "must be 1 to 64 characters")
        timeout = checks.get(m, "timeout_s", path, int, 8)
        if not 1 <= timeout <= 60:
            raise TableError(at(path, "timeout_s"), "must be between 1 and 60 seconds")
        tries = checks.get(m, "tries", path, int, 2)
        if not 1 <= tries <= 5:
            raise TableError(at(path, "tries"), "must be between 1 and 5")
        opts = checks.need(m, "options", path, dict)
        if not opts:
            raise TableError(at(path, "options"), "must hold at least one option")
        options = [None] * len(MENU_KEYS)
        for key in sorted(opts):  # sorted: both interpreters report the same first fault
            op = at(at(path, "options"), key)
            if len(key) != 1 or key not in MENU_KEYS:
                raise TableError(op, "a menu key is one of 0-9 * #")
            o = checks.need_object(opts[key], op)
            ids = _target_ids(o, op, targets)
            options[MENU_KEYS.index(key)] = Option(key, shared.setdefault(ids, ids), _strategy(o, op),
                                                   _one(shared, _action(o, "fallback", op, targets)))
        default = checks.need(m, "default", path, str)
        if default not in opts:  # (its keys are checked above)
            raise TableError(at(path, "default"), "must be one of the menu's option keys")
        out[mid] = Menu(mid, prompt, timeout, tries, default, tuple(options))
    return out


def _target_ids(r, path, targets):
    """A route's or option's `targets`: ids of this table's targets, sharing their id strings."""
    ids = checks.need(r, "targets", path, list)
    for i in range(len(ids)):
        if type(ids[i]) is not str or ids[i] not in targets:
            raise TableError(item(at(path, "targets"), i), "names no target of this table")
        ids[i] = targets[ids[i]].id  # share the one id string
    return tuple(ids)


def _strategy(r, path):
    strategy = checks.get(r, "strategy", path, str, "sequential")
    if strategy not in STRATEGIES:
        raise TableError(at(path, "strategy"), "must be sequential or round_robin")
    return STRATEGIES[STRATEGIES.index(strategy)]  # the one shared string


def _by_id(src, key):
    """The members of an optional top-level object keyed by ids (menus, calendars): (id, value, path)."""
    if key not in src or src.get_raw_null(key):
        return
    for name, value in src.members(key):
        path = at(key, name)
        if not checks.is_ident(name):
            raise TableError(path, _ID_RULE)
        yield name, value, path


def _calendars(src):
    """`calendars` (DESIGN §5a): {calendar id: (date, ...)}; ids as route ids, dates as `closed`'s."""
    out = {}
    for cid, dates, path in _by_id(src, "calendars"):
        checks.typed(dates, path, list)
        for j in range(len(dates)):
            if not _is_date(dates[j]):
                raise TableError(item(path, j), "must be a date YYYY-MM-DD")
        out[cid] = tuple(dates)
    return out


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


DENY_CHUNK = 1024  # a board's heap is fragmented: 1,000 prefixes in one 6 KB object may find no room


def _packed_deny(src):
    """The deny list as a few bytes objects ("\n"-framed prefixes, each <= DENY_CHUNK bytes) and its
    distinct prefix lengths, parsed one prefix at a time."""
    if "deny" not in src or src.get_raw_null("deny"):
        return (), ()
    chunks, out, n = [], bytearray(DENY_CHUNK), 1
    out[0] = 10
    lengths = []
    i = 0
    for p in src.elements("deny"):
        if not checks.is_e164_prefix(p):
            raise TableError(item("deny", i), "must be an E.164 prefix: + then 1-15 digits")
        k = len(p)
        if n + k >= DENY_CHUNK:
            chunks.append(_kept(out, n))
            n = 1
        out[n:n + k] = p.encode()
        out[n + k] = 10
        n += k + 1
        if k not in lengths:
            lengths.append(k)
        i += 1
    chunks.append(_kept(out, n))
    return tuple(chunks), tuple(sorted(lengths))


def _kept(buf, n):
    """bytes of buf[:n], made once the parser's leftovers are gone (on a small heap): kept objects lie packed."""
    if _SMALL_HEAP:
        gc.collect()
    return bytes(memoryview(buf)[:n])


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


def _route(r, path, targets, shared, calendars, menus, packer):
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
        hours = tuple(_window(hours[i], hp, i) for i in range(len(hours)))
        hours = shared.setdefault(hours, hours)
    menu = r.get("menu")
    if menu is not None:
        if type(menu) is not str or menu not in menus:
            raise TableError(at(path, "menu"), "names no menu of this table")
        if "targets" in r:
            raise TableError(at(path, "targets"), "a route names targets or a menu, not both")
        menu = menus[menu].id
        ids = ()
    else:
        ids = _target_ids(r, path, targets)
    rest = (port, hours, _strategy(r, path), _one(shared, _action(r, "fallback", path, targets)),
            _one(shared, _action(r, "after_hours", path, targets, True)), _route_closed(r, path, calendars, shared),
            menu)
    when = None if start is None and until is None else (start, until)
    packer.stage(callers)  # placed by _routes once the parsed route is gone
    return rid, ids, when, rest  # Routes.add's fields: it keeps one copy of each ids, when, rest


def _one(shared, action):
    """One copy of each ("forward", target) action among the routes (the others are constants)."""
    return shared.setdefault(action, action) if action[0] == "forward" else action


def _route_closed(r, path, calendars, shared):
    """The union of the route's calendars (one shared tuple per distinct list), or None without `closed`."""
    names = r.get("closed")
    if names is None:
        return None
    path = at(path, "closed")
    checks.typed(names, path, list)
    dates = []
    for j in range(len(names)):
        if type(names[j]) is not str or names[j] not in calendars:
            raise TableError(item(path, j), "names no calendar of this table")
        for d in calendars[names[j]]:
            if d not in dates:
                dates.append(d)
    key = ("closed",) + tuple(names)
    return shared.setdefault(key, tuple(dates))


def _window(w, hp, i, path=""):
    """Window i of the `hours` at path hp: mask << 22 | start << 11 | end. Its path is made only to name a
    fault (three strings for each of hundreds of windows crowded a board's heap while the table loaded)."""
    try:
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
    except TableError:
        if path:
            raise
        return _window(w, hp, i, item(hp, i))  # again, to name the field
    return mask << 22 | start << 11 | end  # one small int (< 2**30, a board's smallest): no tuple per window


def _minutes(s, path, allow_24):
    if len(s) != 5 or s[2] != ":" or not checks.is_digits(s[:2], 2, 2) or not checks.is_digits(s[3:], 2, 2):
        raise TableError(path, "must be a time HH:MM")
    h, m = int(s[:2]), int(s[3:])
    if allow_24 and h == 24 and m == 0:
        return 1440
    if h > 23 or m > 59:
        raise TableError(path, "%s is not a time of day (00:00-23:59%s)" % (s, ", or 24:00" if allow_24 else ""))
    return h * 60 + m


def _action(r, key, path, targets, may_fall_through=False):
    act = r.get(key)
    if act is None:
        return REJECT
    path = at(path, key)
    checks.need_object(act, path)
    name = checks.need(act, "action", path, str)
    if name == "next" and may_fall_through:
        return NEXT
    if name not in APPLIED_ACTIONS:
        raise TableError(at(path, "action"), "must be reject, callback, forward or next" if may_fall_through
                         else "must be reject, callback or forward (next is for after_hours only)")
    if name != "forward":
        return REJECT if name == "reject" else CALLBACK
    target = act.get("target")
    if target is None:
        raise TableError(at(path, "target"), "is required when action is forward")
    if type(target) is not str or target not in targets:
        raise TableError(at(path, "target"), "names no target of this table")
    return ("forward", targets[target].id)
