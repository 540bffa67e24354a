"""Validation primitives shared by the table, message and topic validators.

MicroPython's `re` has no counted repetition and `bool` is not an `int`
there while it is one on CPython, so the checks below are written by hand
and compare types exactly; both interpreters then agree on every input.
"""

import json
import sys

from protocols.errors import ContractError

# The JSON layer's bounds, for every payload and table body (both interpreters)
MAX_DEPTH = 32  # lists and objects nested in each other
INT_MIN = -(2 ** 63)  # integers fit in 64 bits
INT_MAX = 2 ** 63 - 1
TOO_DEEP = "is nested more than 32 deep"
INT_RANGE = "holds an integer outside -2^63..2^63-1"

_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def at(path, key):
    """Path of a field inside an object: at("routes[0]", "id") -> "routes[0].id"."""
    return path + "." + key if path else key


def item(path, index):
    """Path of a list element: item("deny", 3) -> "deny[3]"."""
    return path + "[" + str(index) + "]"


def _only(s, allowed):
    """Every character of `s` is in `allowed`: strip stops at the first one that is not."""
    return not s.strip(allowed)


def is_int(v):
    return type(v) is int


def is_digits(s, lo, hi):
    return type(s) is str and lo <= len(s) <= hi and _only(s, _DIGITS)


def is_e164(s):
    """`+` then 2-15 digits, the first not 0."""
    return type(s) is str and len(s) >= 3 and s[0] == "+" and s[1] != "0" and is_digits(s[1:], 2, 15)


def is_short_number(s):
    return is_digits(s, 2, 15)


def is_number(s):
    """A dialable number of the contract: E.164 with `+`, or a short number."""
    return is_e164(s) or is_short_number(s)


def is_e164_prefix(s):
    """A prefix of E.164 numbers: `+` then 1-15 digits, the first not 0."""
    return type(s) is str and len(s) >= 2 and s[0] == "+" and s[1] != "0" and is_digits(s[1:], 1, 15)


def is_caller_prefix(s):
    """A caller-number prefix: digits, optionally after a `+`, at most 16 characters."""
    if type(s) is not str or not s:
        return False
    body = s[1:] if s[0] == "+" else s
    return is_digits(body, 1, 15)


def is_port_name(s):
    """`[a-z][a-z0-9]{0,15}`."""
    return type(s) is str and 1 <= len(s) <= 16 and s[0] in _LOWER and _only(s, _PORT_CHARS)


_PORT_CHARS = _LOWER + _DIGITS
_IDENT_FIRST = _LOWER + _UPPER + _DIGITS
_IDENT_REST = _IDENT_FIRST + "_.-"
_GATEWAY_CHARS = _LOWER + _DIGITS + "-"


def is_ident(s):
    """Route and target ids: `[A-Za-z0-9][A-Za-z0-9_.-]{0,47}`."""
    return (type(s) is str and 1 <= len(s) <= 48 and s[0] in _IDENT_FIRST
            and _only(s, _IDENT_REST))


def is_gateway_id(s):
    """`[a-z0-9-]{3,32}`; also the MQTT client id and username."""
    return type(s) is str and 3 <= len(s) <= 32 and _only(s, _GATEWAY_CHARS)


def is_hex(s, length):
    return type(s) is str and len(s) == length and _only(s, "0123456789abcdef")


def no_floats(v, path):
    """Refuse a float anywhere inside `v`; the contract has none (the error names where).

    Object members are visited in sorted key order: MicroPython's dicts do not keep insertion
    order, and both interpreters must name the same float."""
    if _first_odd(v, path):
        raise ContractError(path, "must hold only JSON values (string-keyed objects, lists, str, int, bool, None)")


def _first_odd(v, path):
    """Raise at the first float (sorted keys); True when something else JSON lacks is inside."""
    t = type(v)
    if t is float:
        raise ContractError(path, "floats are not allowed, use an integer")
    if t is dict:
        for k in v:
            if type(k) is not str:
                return True
        odd = False
        for k in sorted(v):
            odd = _first_odd(v[k], at(path, k)) or odd
        return odd
    if t is list:
        odd = False
        for i in range(len(v)):
            odd = _first_odd(v[i], item(path, i)) or odd
        return odd
    return t not in _JSON


def _deeper(v, depth):
    """True when a list or object inside `v` (itself at `depth`) is nested more than MAX_DEPTH deep."""
    if depth > MAX_DEPTH:
        return True
    t = type(v)
    if t is dict:
        v = v.values()
    elif t is not list:
        return False
    for x in v:
        t = type(x)
        if (t is dict or t is list) and _deeper(x, depth + 1):
            return True
    return False


def explain(value, path, floats=False):
    """Raise the contract's error for a value `not_plain_json` flagged (or that held a float in its text):
    too deep (at `path`), else the first float's path, else odd types (at `path`)."""
    t = type(value)
    if (t is dict or t is list) and _deeper(value, 1):
        raise ContractError(path, TOO_DEEP)
    no_floats(value, path)
    if floats:  # a float the parser saw but a repeated key replaced
        raise ContractError(path, "floats are not allowed, use an integer")


def parse_json(data, path, max_bytes=None):
    """bytes or str -> JSON value, with contract errors instead of parser errors.

    The same texts are accepted on CPython and MicroPython: strict JSON (RFC 8259) in UTF-8,
    no floats, no lone surrogates, integers within 64 bits, at most MAX_DEPTH levels of nesting
    (MicroPython's own parser is laxer: protocols.jsonstrict walks the bytes first there).
    Errors found in the text name `path`; a float's error names where the float is.
    Parses the bytes as they are (no decoded copy on MicroPython): a 32 KiB table must load
    inside a small heap.
    """
    t = type(data)
    if t is memoryview:
        data = bytes(data)
    elif t is not str and t is not bytes and t is not bytearray:
        raise ContractError(path, "expected JSON text (bytes or str)")
    if max_bytes is not None and len(data) > max_bytes:
        size = len(data.encode()) if t is str else len(data)
        if size > max_bytes:
            raise ContractError(path, "is " + str(size) + " bytes, more than the " + str(max_bytes) + " allowed")
    try:
        if _CPYTHON:
            value, floats = _loads_cpython(data, t is str, path)
        else:
            from protocols import jsonstrict  # imported once a board parses: the boot's imports are tight

            found = jsonstrict.check(data.encode() if t is str else data, path)
            value = json.loads(data)
            if found & jsonstrict.PAIRS:
                value = jsonstrict.join_pairs(value)
            floats = found & jsonstrict.FLOATS
    except ContractError:
        raise
    except MemoryError:
        raise ContractError(path, "does not fit in this gateway's memory")
    except ValueError:  # UnicodeDecodeError too
        raise ContractError(path, "is not valid JSON (or not UTF-8)")
    except RuntimeError:  # RecursionError: far deeper than MAX_DEPTH
        raise ContractError(path, TOO_DEEP)
    if floats or not_plain_json(value):
        explain(value, path, floats)
    return value


def check_json(data, path):
    """parse_json's checks without keeping the value: on MicroPython a walk that builds nothing
    (a field the reader ignores may be large), parsed only to name where a float is."""
    if _CPYTHON or type(data) is str:
        parse_json(data, path)
        return
    from protocols import jsonstrict

    if jsonstrict.check(data, path) & jsonstrict.FLOATS:
        parse_json(data, path)


CPYTHON = _CPYTHON = sys.implementation.name != "micropython"
if _CPYTHON:  # kept out of MicroPython's heap: the board never runs it
    from protocols.cpjson import loads as _loads_cpython


_JSON = (type(None), bool, int, str)


def not_plain_json(v, depth=1):
    """True when `v` holds a float or anything else JSON lacks, or nests more than MAX_DEPTH deep
    (cheap: builds no paths)."""
    t = type(v)
    if t is dict:
        if depth > MAX_DEPTH:
            return True
        for k in v:
            x = v[k]
            if type(k) is not str or (type(x) not in _JSON and not_plain_json(x, depth + 1)):
                return True
    elif t is list:
        if depth > MAX_DEPTH:
            return True
        for x in v:
            if type(x) not in _JSON and not_plain_json(x, depth + 1):
                return True
    else:
        return t not in _JSON
    return False


def need(obj, key, path, kind):
    """Fetch a required field of an object and check its type."""
    if key not in obj:
        raise ContractError(at(path, key), "is required")
    return typed(obj[key], at(path, key), kind)


def get(obj, key, path, kind, default=None):
    """Fetch an optional field; absent or null gives `default`."""
    v = obj.get(key)
    if v is None:
        return default
    return typed(v, at(path, key), kind)


_KIND_NAMES = {int: "an integer", str: "a string", bool: "true or false", list: "a list", dict: "an object"}


def typed(v, path, kind):
    if type(v) is not kind:
        raise ContractError(path, "must be " + _KIND_NAMES[kind])
    return v


def need_object(v, path):
    return typed(v, path, dict)
