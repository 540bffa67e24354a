"""CPython's side of checks.parse_json: its own parser is strict JSON already, but for the checks here.

Kept in its own module so that MicroPython, which never runs it, never holds it in its heap.
"""

import json
import re

from protocols.checks import INT_MAX, INT_MIN, INT_RANGE
from protocols.errors import ContractError

LONE = "is not valid JSON (lone surrogate escape)"
_SURROGATE_CHAR = re.compile("[" + chr(0xD800) + "-" + chr(0xDFFF) + "]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # json.loads lets lone ones pass
# a run of 19 digits, where an integer may not fit in 64 bits: digits -> "0", the rest -> " ", then a
# plain search (C speed; a regex takes microseconds over a message full of digits)
_DIGITS_ONLY = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_RUN = b"0" * 19


class _Float(Exception):
    pass


def _refuse_float(text):
    raise _Float()


def _refuse_constant(text):
    raise ValueError("NaN and Infinity are not JSON")


# made once: json.loads(text, **hooks) builds a decoder on every call
_STRICT = json.JSONDecoder(parse_float=_refuse_float, parse_constant=_refuse_constant)
_FLOATS = json.JSONDecoder(parse_constant=_refuse_constant)


def loads(data, is_str, path):
    """(value, held a float) for JSON text; raises ContractError or ValueError (bad JSON or UTF-8)."""
    if is_str:
        text = data
        if _SURROGATE_CHAR.search(text):
            raise ContractError(path, LONE)
    else:
        text = data.decode()  # strict: no encoded surrogates, no overlongs, no UTF-16 guessing
    floats = False
    try:  # the parser refuses floats as it meets them: no walk when there are none
        value = _STRICT.decode(text)
    except _Float:
        floats = True
        value = _FLOATS.decode(text)
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeError:
            raise ContractError(path, LONE) from None
    if _RUN in (text.encode() if is_str else data).translate(_DIGITS_ONLY) and _big_int(value):
        raise ContractError(path, INT_RANGE)
    return value, floats


def _big_int(v):
    t = type(v)
    if t is int:
        return not INT_MIN <= v <= INT_MAX
    if t is dict:
        v = v.values()
    elif t is not list:
        return False
    for x in v:
        if type(x) not in (str, bool, type(None)) and _big_int(x):
            return True
    return False
