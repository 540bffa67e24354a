"""A zone's POSIX rule, read from its TZif file (CPython only).

The routing table carries the gateway's time zone as the POSIX TZ string at
the end of the zone's TZif file (DESIGN section 4); boards have no tz
database. `zone_rule("Europe/Kyiv")` finds the file the way `zoneinfo` does
(each folder of `zoneinfo.TZPATH`, then the `tzdata` package) and returns
that string, checked by `protocols.tz.parse`.
"""

import importlib.resources
import os
import zoneinfo

from protocols import tz

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-")


def _parts(name):
    """Path components of a zone name, or None when it cannot be a zone name."""
    if type(name) is not str or not name or len(name) > 255:
        return None
    parts = name.split("/")
    for p in parts:
        if not p or p in (".", "..") or not set(p) <= _NAME_CHARS:
            return None
    return parts


def tzif_bytes(name):
    """The bytes of a zone's TZif file, or None when no file is found for the name."""
    parts = _parts(name)
    return _read_tzif(parts) if parts else None


def _read_tzif(parts):
    for base in zoneinfo.TZPATH:
        path = os.path.join(base, *parts)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
            if data[:4] == b"TZif":
                return data
    try:
        res = importlib.resources.files("tzdata").joinpath("zoneinfo")
        for p in parts:
            res = res.joinpath(p)
        if res.is_file():
            data = res.read_bytes()
            if data[:4] == b"TZif":
                return data
    except (ImportError, OSError):
        pass
    return None


def zone_rule(name):
    """IANA zone name -> the POSIX TZ rule of its TZif footer.

    Raises ValueError("unknown time zone 'X'") when no TZif file is found for
    the name, and ValueError naming the zone when its file has no usable rule.
    """
    data = tzif_bytes(name)
    if data is None:
        raise ValueError("unknown time zone %r" % (name,))
    try:
        footer = tz.footer_from_tzif(data)
        tz.parse(footer)
    except tz.TzError as e:
        raise ValueError("time zone %r has no usable POSIX rule: %s" % (name, e.reason)) from None
    return footer
