"""Reading what a gateway last said (its stored `state`) defensively: a value of the wrong type reads as
None, so stored data never breaks a page, a listing or an API answer."""

from __future__ import annotations

INT64_MAX = 2**63 - 1
MAX_PORTS = 64


def state_int(v) -> int | None:
    """A stored state's integer, or None when it is anything else (a bool, a text, a list, out of 64 bits)."""
    return v if type(v) is int and -INT64_MAX - 1 <= v <= INT64_MAX else None


def state_text(v, limit: int = 64) -> str | None:
    return v if type(v) is str and len(v) <= limit else None


def state_dict(v) -> dict:
    return v if type(v) is dict else {}


def live_ports(state) -> dict[str, dict]:
    """What the state says of each port: only plain values (int, short text, bool, null) per field."""
    out = {}
    for name, info in list(state_dict(state_dict(state).get("ports")).items())[:MAX_PORTS]:
        info = state_dict(info)
        out[name] = {k: v for k, v in list(info.items())[:32] if v is None or type(v) is bool
                     or state_int(v) is not None or state_text(v) is not None}
        if "csq" in info:
            out[name]["csq"] = state_int(info["csq"])
    return out
