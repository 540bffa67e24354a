"""Small file helpers of the store (LittleFS on the board, any filesystem on the host), DESIGN §7."""

import json
import os

try:
    from binascii import crc32
except ImportError:  # pragma: no cover
    crc32 = None


def crc(b):
    return crc32(b) & 0xFFFFFFFF if crc32 else 0


def read_json(path):
    """The JSON in `path`, or None when it is missing, torn or corrupt (the caller falls back)."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except Exception:
        return None


def write_atomic(path, data):
    """Replace `path`: write `path.tmp`, close, rename onto `path` (never remove first)."""
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.rename(path + ".tmp", path)


def new_id():
    """A store id: 16 hex characters."""
    return "".join("%02x" % b for b in os.urandom(8))


def scan_lines(path, fn):
    """fn(seq, line, index of the space) for each whole `<seq> <json>` line until fn returns True.
    Returns True when the file ends in a torn (unterminated) line. Corrupt lines are skipped (a line is
    checked for its shape even when it is not parsed: records a snapshot covers are only counted)."""
    with open(path, "rb") as f:
        while True:
            line = f.readline()
            if not line or line[-1:] != b"\n":
                return bool(line)
            sp = line.find(b" ")
            if not line_ok(line, sp):
                continue
            try:
                if fn(int(line[:sp]), line, sp):
                    return False
            except (ValueError, TypeError, AttributeError, KeyError, IndexError):
                pass


def line_ok(line, sp):
    """The shape of a whole record line, `<seq> {...}\n` (checked before any parse)."""
    return sp > 0 and line[sp + 1:sp + 2] == b"{" and line[-2:] == b"}\n"
