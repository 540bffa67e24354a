"""Bounds on what the controller takes from gateways and keeps (defence in depth: the decoders in
protocols/ bound fields too, but nothing a gateway sends may reach memory or the database unbounded).

Payloads: an `events` message holds up to 500 records (messages.MAX_RECORDS); a call record is
~250 bytes as the firmware writes it, so 256 KiB leaves twice that. Every other kind a gateway
sends (state, table ack, command result) is a few hundred bytes; 16 KiB leaves room for large
port maps and selftest answers. A larger payload is refused as a bad message before decoding.
"""

from __future__ import annotations

MAX_PAYLOAD = {"events": 256 * 1024}  # bytes, per kind
MAX_PAYLOAD_OTHER = 16 * 1024  # bytes, every other kind
TEXT_MAX = 1024  # characters of any string kept in a record's `data` or a gateway's state
DETAIL_MAX = 500  # characters of an alert's detail (and a table's reject reason)
CODE_MAX = 48  # characters of an alert's code (its column)


def max_payload(kind: str) -> int:
    return MAX_PAYLOAD.get(kind, MAX_PAYLOAD_OTHER)


def clip(text, limit: int = DETAIL_MAX) -> str:
    """`text` as a string of at most `limit` characters (an ellipsis says it was cut), NUL shown as
    `\\0` (PostgreSQL's text refuses it: an alert quoting a gateway's bytes must still be storable)."""
    text = text if isinstance(text, str) else str(text)
    if "\x00" in text:
        text = text.replace("\x00", "\\0")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def bounded(v):
    """A JSON value with every string (keys too) cut to TEXT_MAX characters."""
    t = type(v)
    if t is str:
        return v if len(v) <= TEXT_MAX else v[:TEXT_MAX]
    if t is dict:
        return {bounded(k): bounded(x) for k, x in v.items()}
    if t is list:
        return [bounded(x) for x in v]
    return v
