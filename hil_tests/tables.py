"""Synthetic routing tables for benches and memory tests."""

from __future__ import annotations

import json

from protocols.routing import MAX_BODY

PORTS = ("gsm1", "gsm2", "fxo1")


def big_table(gateway: str = "gw-bench-1", limit: int = MAX_BODY, deny: int = 300, version: int = 1) -> bytes:
    """A valid table body as close to `limit` bytes as whole routes allow.

    Many routes with caller prefixes, opening hours and schedules, twenty
    targets and `deny` forbidden prefixes: the worst case a gateway must
    load and decide within its heap.
    """
    targets = {
        f"centre-{i:02d}": {"number": f"+38062{i:02d}00{i:03d}", "via": [PORTS[i % 2]], "ring_timeout_s": 20 + i,
                            "max_calls": 2 + i % 4}
        for i in range(20)
    }
    doc = {
        "schema": 1, "gateway": gateway, "version": version, "issued_at": 1700000000,
        "tz": "EET-2EEST,M3.5.0/3,M10.5.0/4",
        "deny": [f"+7{i:03d}" for i in range(deny)],
        "closed": ["2026-01-01", "2026-01-07", "2026-08-24", "2026-12-25"],
        "targets": targets,
        "routes": [],
    }
    body = json.dumps(doc, separators=(",", ":")).encode()
    i = 0
    while True:
        route = {
            "id": f"route-{i:04d}", "port": PORTS[i % 3] if i % 7 else "*",
            "caller": [f"+380{50 + i % 50}{i % 10}"] if i % 4 else [],
            "from": 1700000000 + i * 60 if i % 5 == 0 else None, "until": None,
            "hours": [{"days": "12345", "start": "08:00", "end": "20:00"},
                      {"days": "67", "start": "22:00", "end": "06:00"}] if i % 3 else [],
            "targets": [f"centre-{(i + k) % 20:02d}" for k in range(3)],
            "strategy": "round_robin" if i % 2 else "sequential",
            "fallback": {"action": "callback"},
            "after_hours": {"action": "forward", "target": f"centre-{i % 20:02d}"} if i % 6 == 0
            else {"action": "reject"},
        }
        doc["routes"].append(route)
        candidate = json.dumps(doc, separators=(",", ":")).encode()
        if len(candidate) > limit:
            doc["routes"].pop()
            return body
        body = candidate
        i += 1


def route_heavy_table(gateway: str = "gw-bench-1", limit: int = MAX_BODY, version: int = 1) -> bytes:
    """A valid table body as close to `limit` bytes as whole routes allow, made of the smallest routes.

    Two targets and as many one-target routes (each a caller prefix on a port) as fit: the most
    route objects a 32 KiB table can hold, the other worst case for the board's heap.
    """
    doc = {
        "schema": 1, "gateway": gateway, "version": version, "issued_at": 1700000000, "tz": "UTC0",
        "deny": [], "closed": [],
        "targets": {"a": {"number": "+380620000001", "via": ["gsm1"]},
                    "b": {"number": "+380620000002", "via": ["gsm2"]}},
        "routes": [],
    }
    body = json.dumps(doc, separators=(",", ":")).encode()
    i = 0
    while True:
        doc["routes"].append({"id": f"r{i}", "port": PORTS[i % 2], "caller": [f"+3805{i:05d}"],
                              "targets": ["a" if i % 2 else "b"]})
        candidate = json.dumps(doc, separators=(",", ":")).encode()
        if len(candidate) > limit:
            doc["routes"].pop()
            return body
        body = candidate
        i += 1


def _fill_routes(doc: dict, limit: int, route) -> bytes:
    """Append route(i) to doc["routes"] while the compact body stays within `limit`; the body."""
    body = json.dumps(doc, separators=(",", ":")).encode()
    i = 0
    while True:
        doc["routes"].append(route(i))
        candidate = json.dumps(doc, separators=(",", ":")).encode()
        if len(candidate) > limit:
            doc["routes"].pop()
            return body
        body = candidate
        i += 1


def _few_targets(gateway: str, version: int, n: int = 2) -> dict:
    """n targets a, b, ... numbered from +380620000001 (route_heavy_table's a and b), via gsm1, gsm2 in turn."""
    ids = "abcdefghijklmnop"[:n]
    return {"schema": 1, "gateway": gateway, "version": version, "issued_at": 1700000000, "tz": "UTC0",
            "targets": {t: {"number": f"+3806200000{k + 1:02d}", "via": [PORTS[k % 2]]} for k, t in enumerate(ids)},
            "routes": []}


def bare_routes_table(gateway: str = "gw-bench-1", limit: int = MAX_BODY, version: int = 1) -> bytes:
    """As many of the smallest routes as fit, none naming callers: the most routes a 32 KiB table holds."""
    return _fill_routes(_few_targets(gateway, version), limit,
                        lambda i: {"id": f"r{i}", "port": PORTS[i % 2], "targets": ["a" if i % 2 else "b"]})


def many_callers_table(gateway: str = "gw-bench-1", limit: int = MAX_BODY, version: int = 1,
                       callers: int = 40) -> bytes:
    """Routes of `callers` caller prefixes each: the most prefix text a 32 KiB table holds."""
    return _fill_routes(_few_targets(gateway, version), limit, lambda i: {
        "id": f"r{i}", "port": PORTS[i % 2], "targets": ["a"],
        "caller": [f"+38{i:03d}{k:02d}" for k in range(callers)]})


def distinct_routes_table(gateway: str = "gw-bench-1", limit: int = MAX_BODY, version: int = 1) -> bytes:
    """Small routes each with its own list of one to three targets (of sixteen): few target lists are equal
    (a board once kept a tuple for each). r0, first on gsm1, dials b (via gsm2, as the other shapes' r0)."""
    doc = _few_targets(gateway, version, 16)
    ids = "abcdefghijklmnop"
    return _fill_routes(doc, limit, lambda i: {
        "id": f"r{i}", "port": PORTS[i % 3],
        "targets": [ids[(i + 1) % 16], ids[(i // 16) % 16], ids[(i // 256) % 16]][:1 + i % 3],
        **({"strategy": "round_robin"} if i % 2 else {})})
