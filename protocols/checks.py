"""Validation primitives shared by the table, message and topic validators.

MicroPython's `re` has no counted repetition and `bool` is not an `int`
there while it is one on CPython, so the checks below are written by hand
and compare types exactly; both interpreters then agree on every input.
"""

import json
import sys

from protocols.errors import ContractError

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
    """Refuse a float anywhere inside `v`; the contract has none (the error names where)."""
    t = type(v)
    if t is float:
        raise ContractError(path, "floats are not allowed, use an integer")
    if t is dict:
        for k in v:
            no_floats(v[k], at(path, str(k)))
    elif t is list:
        for i in range(len(v)):
            no_floats(v[i], item(path, i))


def parse_json(data, path, max_bytes=None):
    """bytes or str -> JSON value, with contract errors instead of parser errors.

    Parses the bytes as they are (no decoded copy): a 32 KiB table must load
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
        if _CPYTHON:  # the parser refuses floats as it meets them: no second walk over the value
            return json.loads(data, parse_float=_refuse_float, parse_constant=_refuse_float)
        value = json.loads(data)
    except MemoryError:
        raise ContractError(path, "does not fit in this gateway's memory")
    except _Float:  # parse again to say where the float is
        no_floats(json.loads(data), path)
        raise ContractError(path, "floats are not allowed, use an integer")
    except ValueError:
        raise ContractError(path, "is not valid JSON (or not UTF-8)")
    if not_plain_json(value):  # parsed JSON holds nothing odd but floats
        no_floats(value, path)
    return value


_CPYTHON = sys.implementation.name != "micropython"


class _Float(Exception):
    pass


def _refuse_float(text):
    raise _Float()


_JSON = (type(None), bool, int, str)


def not_plain_json(v):
    """True when `v` holds a float or anything else JSON lacks (cheap: builds no paths)."""
    t = type(v)
    if t is dict:
        for k in v:
            x = v[k]
            if type(k) is not str or (type(x) not in _JSON and not_plain_json(x)):
                return True
    elif t is list:
        for x in v:
            if type(x) not in _JSON and not_plain_json(x):
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
