"""Rows of the records table for record kinds other than calls (DESIGN §5a/§6), and the columns' widths.

Outbound calls and probes fill the columns that lists and reports read (start time, port, citizen or
target, outcome, ring and talk seconds); every kind keeps the whole record in `data`, bounded.
"""

from __future__ import annotations

from controller.limits import bounded

# Column widths: a longer value is kept in `data` (up to TEXT_MAX); the column gets a prefix (PostgreSQL
# would refuse it).
WIDTH = {"port": 16, "caller": 32, "route": 48, "outcome": 24, "target": 48, "reason": 32}
KIND_WIDTH = 16
_INT32 = 2**31


def _text(v, width: int) -> str | None:
    return v[:width] if type(v) is str and v else None


def _count(v) -> int | None:
    return v if type(v) is int and 0 <= v < _INT32 else None


def other_row(gw: str, sid: str, r: dict, received: int, dumps) -> tuple:
    """Any other record: kept whole in `data` (bounded); outbound calls and probes (DESIGN §5a) also fill
    the columns their lists and reports read, each value checked here as the decoder may not know them."""
    kind = r["t"][:KIND_WIDTH]
    at = r.get("at") if kind not in ("outbound", "probe") else r.get("start")
    at = at if type(at) is int and -_TIME_LIMIT < at < _TIME_LIMIT else None
    port = caller = outcome = target = ring = talk = None
    if kind in ("outbound", "probe"):
        port, outcome = _text(r.get("port"), WIDTH["port"]), _text(r.get("outcome"), WIDTH["outcome"])
        if kind == "outbound":
            caller = _text(r.get("citizen"), WIDTH["caller"])
            ring, talk = _count(r.get("ring_s")), _count(r.get("talk_s"))
        else:
            target = _text(r.get("target"), WIDTH["target"])
    return (gw, sid, r["seq"], kind, at, port, caller, None, outcome, target, None, ring, talk, None, None,
            dumps(bounded(r)), received)


_TIME_LIMIT = 2**62
