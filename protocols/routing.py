"""The routing table (DESIGN §4) and the routing decision (DESIGN §5).

`load` validates a table body and returns a `Table` tuned for `decide`;
`seal` / `unseal` wrap a body in its signed MQTT envelope. The firmware runs
`decide` on every inbound call and the controller runs the very same code to
preview a call before a table is pushed.
"""

import json

from protocols import callerset, checks, jsonscan, tz
from protocols.errors import UNEXPECTED, ContractError
from protocols.sign import hmac_sha256, same_digest, sha256_hex, to_key
from protocols.table import (  # noqa: F401  (MAX_BODY, Table, TableError, load: the contract's names)
    AFTER_HOURS,
    BLOCK,
    CLOSED,
    FALLBACK,
    HOURS,
    MAX_BODY,
    MENU,
    MENU_KEYS,
    PORT,
    STRATEGY,
    Table,
    TableError,
    load,
)

MAX_ENVELOPE = 3 * MAX_BODY
ACTIONS = ("dial", "reject", "callback", "forward", "menu")
REASONS = ("ok", "no_route", "after_hours", "closed_day", "all_busy", "denied")


class Decision:
    """What to do with one inbound call; `menu` and `option` only when a menu is involved (DESIGN §5a)."""

    def __init__(self, action, route, targets, reason, menu=None, option=None, fallback=None, turn_key=None):
        self.action = action
        self.route = route
        self.targets = targets
        self.reason = reason
        self.menu = menu
        self.option = option
        self.fallback = fallback  # a "dial": the action to apply when no target answers (not in as_dict)
        self.turn_key = turn_key  # a round-robin "dial": the key of its turn (turn_key_of), to advance after

    def as_dict(self):
        d = {"action": self.action, "route": self.route, "targets": self.targets, "reason": self.reason}
        if self.menu is not None:
            d["menu"] = self.menu
            d["option"] = self.option
        return d

    def __eq__(self, other):
        return isinstance(other, Decision) and self.as_dict() == other.as_dict()

    def __repr__(self):
        return "Decision(%s, route=%r, targets=%r, reason=%s)" % (
            self.action, self.route, self.targets, self.reason)


# ---------------------------------------------------------------- deciding


def turn_key_of(route_id, menu=None, option=None):
    """The key of a round-robin turn in decide's `turn` mapping: the route id, or for a menu's option
    "<menu id>/<key>" ("/" is in no id, so the two never collide)."""
    return route_id if option is None else menu + "/" + option


def decide(table, port, caller, now, busy=None, turn=0, keys=None):
    """The routing decision of DESIGN §5 (and §5a: fall-through, menus) for one inbound call.

    `keys`: for a route with a menu, None before the caller was asked (the decision is `menu`), "" when
    no key came in time, else the key pressed. `turn`: the round-robin counter, or a mapping
    {turn_key_of(...): counter} (absent: 0) so one call decides once whatever route it takes; a round-robin
    "dial" names the key it used in `d.turn_key`, for the caller to advance."""
    caller = caller or ""
    found = callerset.keys(caller, table.caller_lengths)  # the packed prefixes' keys, made once per call
    i = _pick(table, port, caller, found, now, None)
    if i < 0:
        return Decision("reject", None, [], "no_route")
    routes = table.routes
    lt = None
    passed = None  # closed routes whose after_hours is "next": no longer candidates
    while True:
        if lt is None:
            lt = tz.localtime(now, table.tz)
        closed = None
        rest = routes.rest_at(i)
        dates = table.closed if rest[CLOSED] is None else rest[CLOSED]  # §5a: the route's calendars
        if dates and tz.date_str(lt) in dates:
            closed = "closed_day"
        elif rest[HOURS] is not None and not _open(rest[HOURS], lt):
            closed = "after_hours"
        if closed is None:
            break
        if rest[AFTER_HOURS][0] != "next":
            return _apply(table, routes.id_at(i), rest[AFTER_HOURS], closed)
        passed = [i] if passed is None else passed + [i]
        i = _pick(table, port, caller, found, now, passed)
        if i < 0:
            return Decision("reject", None, [], "after_hours")
    route_id = routes.id_at(i)
    if rest[MENU] is None:
        return _dial(table, route_id, routes.targets_at(i), rest[STRATEGY], rest[FALLBACK], busy, turn, None, None)
    menu = table.menus[rest[MENU]]
    if keys is None:  # play the prompt first
        return Decision("menu", route_id, [], "ok", menu.id, None)
    opt = menu.options[MENU_KEYS.index(keys)] if len(keys) == 1 and keys in MENU_KEYS else None
    if opt is None:  # no key in time, or one the menu does not have
        opt = menu.options[MENU_KEYS.index(menu.default)]
    return _dial(table, route_id, opt.targets, opt.strategy, opt.fallback, busy, turn, menu.id, opt.key)


def _dial(table, route_id, ids, strategy, fallback, busy, turn, menu, option):
    """Steps 4-5: order the targets, drop the denied and the full; none left: the fallback."""
    n = len(ids)
    key = None
    if strategy == "round_robin" and n:
        key = turn_key_of(route_id, menu, option)
        k = (turn.get(key, 0) if type(turn) is dict else turn) % n
        ids = ids[k:] + ids[:k]
    targets = table.targets
    allowed = [tid for tid in ids if not targets[tid].denied]
    if not allowed:
        return _apply(table, route_id, fallback, "denied", menu, option)
    free = []
    for tid in allowed:
        cap = targets[tid].max_calls
        if cap is None or (busy.get(tid, 0) if busy else 0) < cap:
            free.append(tid)
    if free:
        return Decision("dial", route_id, free, "ok", menu, option, fallback, key)
    return _apply(table, route_id, fallback, "all_busy", menu, option)


def _pick(table, port, caller, found, now, passed):
    """Step 1-2: the index of the in-effect candidate with the longest caller prefix (`found`:
    callerset.keys), then a named port over "*", then the earlier route (none of those `passed` over);
    -1 for none. Reads the routes' columns block by block (protocols.routeset): no route object is made."""
    routes = table.routes
    whens, chunks = routes.whens, routes.chunks
    best = -1
    best_len = -1
    best_named = 0  # the best names the port (1) or is "*" (0)
    n0, key0 = found[0] if found else (-1, None)  # the longest key, tried first (most tables have one length)
    b = base = 0
    for block in table.candidates(port):  # per block of routes: bytes of k << 1 | names the port
        when_of, caller_of, spans = routes.when_of[b], routes.caller_of[b], routes.spans[b]
        for entry in block:
            k = entry >> 1
            w = when_of[k]
            if w:
                start, until = whens[w]
                if (start is not None and now < start) or (until is not None and now >= until):
                    continue
            if passed is not None and base + k in passed:
                continue
            length = 0
            c = caller_of[k]
            if c:  # callerset.match, inline: this loop runs for every candidate of every call
                if key0 is None:  # the caller starts with none of the table's prefix lengths
                    continue
                length = -1
                chunk = chunks[c]
                s = spans[k]
                if s:  # packed: find the keys between start and end
                    e = s >> 10
                    s &= 1023
                    if chunk.find(key0, s, e) >= 0:
                        length = n0
                    else:
                        for n, key in found:
                            if n < n0 and chunk.find(key, s, e) >= 0:
                                length = n
                                break
                else:  # CPython's form: the prefixes as strings
                    for prefix in chunk:
                        if len(prefix) > length and caller.startswith(prefix):
                            length = len(prefix)
                if length < 0:
                    continue
            if length > best_len or (length == best_len and entry & 1 and not best_named):
                best, best_len, best_named = base + k, length, entry & 1
        b += 1
        base += BLOCK
    return best


def _open(hours, lt):
    minute = lt[3] * 60 + lt[4]
    day = lt[6]
    prev = 7 if day == 1 else day - 1
    for w in hours:  # mask << 22 | start << 11 | end (protocols.table._window)
        mask, start, end = w >> 22, w >> 11 & 2047, w & 2047
        if start < end:
            if mask & (1 << day) and start <= minute < end:
                return True
        elif start > end:
            if (mask & (1 << day) and minute >= start) or (mask & (1 << prev) and minute < end):
                return True
    return False


def _apply(table, route_id, act, reason, menu=None, option=None):
    name, tid = act
    if name == "forward":
        if table.targets[tid].denied:
            return Decision("reject", route_id, [], "denied", menu, option)
        return Decision("forward", route_id, [tid], reason, menu, option)
    return Decision(name, route_id, [], reason, menu, option)


# ---------------------------------------------------------------- envelope


def seal(body, key):
    """Body (UTF-8 JSON text, bytes or str) + the gateway's key -> the signed MQTT payload (bytes).
    Raises TableError("body", ...) for a body that is not UTF-8 or is larger than MAX_BODY."""
    try:
        raw = body.encode() if type(body) is str else bytes(body)
        if len(raw) > MAX_BODY:
            raise TableError("body", "is %d bytes, more than the %d allowed" % (len(raw), MAX_BODY))
        if not checks.CPYTHON:  # MicroPython's decode takes encoded surrogates, CPython's refuses them
            from protocols import jsonstrict

            jsonstrict.utf8(raw, "body")
        text = raw.decode()
    except ContractError as e:
        raise TableError(e.path, e.reason)
    except (UnicodeError, TypeError, ValueError):
        raise TableError("body", "must be UTF-8 JSON text (bytes or str)")
    sig = hmac_sha256(to_key(key), raw)  # a bad key: ValueError, the caller's fault
    return json.dumps({"v": 1, "alg": "HS256", "sig": sig, "body": text}).encode()


def unseal(payload, key, gateway, current_version=0):
    """Check envelope, signature, gateway id and anti-rollback, then load()."""
    if type(payload) is str:
        try:
            payload = payload.encode()
        except UnicodeError:  # lone surrogates (CPython)
            raise TableError("envelope", "is not valid UTF-8")
    if type(payload) not in (bytes, bytearray, memoryview):
        raise TableError("envelope", "must be bytes")
    table, _ = unseal_into(bytearray(payload), key, gateway, current_version)
    return table


def unseal_into(buf, key, gateway, current_version=0):
    """unseal() on a bytearray the caller gives up: the envelope is decoded in place, leaving
    `buf` holding the body, so a board needs no second copy of a 32 KiB table.
    Returns (table, sig). A TableError carries `version` and `sha256` of the body when known;
    nothing but a TableError leaves, whatever the bytes."""
    try:
        return _unseal_into(buf, key, gateway, current_version)
    except TableError:
        raise
    except ContractError as e:
        raise TableError(e.path, e.reason)
    except MemoryError:
        raise TableError("envelope", "does not fit in this gateway's memory")
    except Exception as e:  # a bug, not the payload's fault
        raise TableError("envelope", UNEXPECTED + type(e).__name__ + ": " + str(e))


def _unseal_into(buf, key, gateway, current_version):
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
        return checks.parse_json(buf[span[0]:span[1]], key)
    except ContractError:
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
