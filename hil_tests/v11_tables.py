"""Synthetic 32 KiB tables of the contract v1.1 fields (DESIGN §5a) and of the contract's maxima, for
bench/table_memory_bench.py and the HIL tests: calendars and closed dates, menus, many targets, long ids,
probes and a mix. Each is a valid table (protocols.routing.load) as close to `limit` as whole items allow.

Every shape keeps the same first route, r0: on gsm1, any caller, dialling target "b" (+380620000002 via
gsm2) on Monday 2026-11-23 (tests.hil.conftest.MONDAY_NOON), so one call checks that the board routes by
the table it applied. In the closed-date shapes r0 dials "a" but that Monday is a closed date (the last
one of the list, or of the last calendar), so r0 forwards to "b" with reason closed_day.
"""

from __future__ import annotations

import json

from protocols.routing import MAX_BODY

PORTS = ("gsm1", "gsm2", "fxo1")
TZ = "EET-2EEST,M3.5.0/3,M10.5.0/4"


def _base(gateway: str, version: int, **more) -> dict:
    doc = {"schema": 1, "gateway": gateway, "version": version, "issued_at": 1700000000, "tz": TZ,
           "targets": {"a": {"number": "+380620000001", "via": ["gsm1"]},
                       "b": {"number": "+380620000002", "via": ["gsm2"]}},
           "routes": []}
    doc.update(more)
    return doc


def _body(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _fill(doc: dict, limit: int, add) -> bytes:
    """Call add(doc, i) for i = 0, 1, ... while the compact body stays within `limit` (add returns an undo
    function); the last body that fitted."""
    body = _body(doc)
    i = 0
    while True:
        undo = add(doc, i)
        candidate = _body(doc)
        if len(candidate) > limit:
            undo()
            return body
        body = candidate
        i += 1


def _date(i: int) -> str:
    """The i-th date from 2030-01-01 on (never 2023-11-13: the call's day stays open), 28 days a month."""
    y, rest = divmod(i, 12 * 28)
    m, d = divmod(rest, 28)
    return f"{2030 + y:04d}-{m + 1:02d}-{d + 1:02d}"


HOLIDAY = "2026-11-23"  # MONDAY_NOON's local date
ON_HOLIDAY = {"targets": ["a"], "after_hours": {"action": "forward", "target": "b"}}


def _first_route(**more) -> dict:
    return {"id": "r0", "port": "gsm1", "targets": ["b"], **more}


def closed_table(gateway: str = "gw-bench-1", limit: int = MAX_BODY, version: int = 1) -> bytes:
    """The table's own `closed` list (v1): as many dates as fit, one route using it."""
    doc = _base(gateway, version, closed=[HOLIDAY], routes=[_first_route(**ON_HOLIDAY)])

    def add(d, i):
        d["closed"].insert(i, _date(i))
        return lambda: d["closed"].pop(i)
    return _fill(doc, limit, add)


def calendars_table(gateway: str = "gw-bench-1", limit: int = MAX_BODY, version: int = 1,
                    calendars: int = 16, routes: int = 64) -> bytes:
    """`calendars` (§5a): `calendars` calendars share the dates that fit, and `routes` routes each name a
    different pair of them in `closed`: each route closes on the union of its two calendars."""
    doc = _base(gateway, version, calendars={f"cal{c:02d}": [] for c in range(calendars)})
    last = f"cal{calendars - 1:02d}"
    doc["calendars"][last].append(HOLIDAY)
    doc["routes"].append(_first_route(**ON_HOLIDAY, closed=["cal00", last]))
    for k in range(1, routes):
        a, b = k % calendars, (k // calendars + k + 1) % calendars
        doc["routes"].append({"id": f"r{k}", "port": PORTS[k % 2], "caller": [f"+3805{k:03d}"], "targets": ["a"],
                              "closed": [f"cal{a:02d}", f"cal{b:02d}"]})

    def add(d, i):
        cal = d["calendars"][f"cal{i % calendars:02d}"]
        cal.insert(len(cal) - (cal[-1:] == [HOLIDAY]), _date(i))  # the holiday stays last
        return lambda: cal.remove(_date(i))
    return _fill(doc, limit, add)


def menus_table(gateway: str = "gw-bench-1", limit: int = MAX_BODY, version: int = 1) -> bytes:
    """As many menus as fit, each with a 64-character prompt and all twelve keys, every option with its own
    strategy, fallback and one or two targets; routes r1... play them (r0 dials b)."""
    doc = _base(gateway, version, menus={}, routes=[_first_route()])

    def add(d, i):
        mid = f"menu{i:03d}"
        d["menus"][mid] = {
            "prompt": (f"prompt-{i:03d}-" + "x" * 64)[:64], "timeout_s": 1 + i % 60, "tries": 1 + i % 5,
            "default": "0",
            "options": {key: {"targets": ["a", "b"][:1 + (i + k) % 2], "strategy": ("sequential", "round_robin")[k % 2],
                              "fallback": {"action": ("reject", "callback")[k % 2]}}
                        for k, key in enumerate("0123456789*#")}}
        d["routes"].append({"id": f"r{i + 1}", "port": PORTS[i % 2], "caller": [f"+3805{i:03d}"], "menu": mid})

        def undo():
            d["menus"].pop(mid)
            d["routes"].pop()
        return undo
    return _fill(doc, limit, add)


def many_targets_table(gateway: str = "gw-bench-1", limit: int = MAX_BODY, version: int = 1) -> bytes:
    """As many targets as fit, each with its own number, two via ports, ring_timeout_s and max_calls; routes
    r1... each dial a few of them (r0 dials b)."""
    doc = _base(gateway, version, routes=[_first_route()])

    def add(d, i):
        tid = f"t{i:04d}"
        d["targets"][tid] = {"number": f"+3806{i:07d}", "via": [PORTS[i % 3], PORTS[(i + 1) % 3]],
                             "ring_timeout_s": 10 + i % 50, "max_calls": i % 8}
        added_route = i % 8 == 7
        if added_route:
            d["routes"].append({"id": f"r{i // 8 + 1}", "port": PORTS[i % 2],
                                "targets": [f"t{i - k:04d}" for k in range(8)], "strategy": "round_robin"})

        def undo():
            d["targets"].pop(tid)
            if added_route:
                d["routes"].pop()
        return undo
    return _fill(doc, limit, add)


def _long(prefix: str, i: int) -> str:
    return f"{prefix}{i:05d}." + "L" * 48


def long_ids_table(gateway: str = "gw-bench-1", limit: int = MAX_BODY, version: int = 1) -> bytes:
    """Ids at the contract's maxima: 48-character target, route, menu and calendar ids, 15-digit numbers,
    16-character port names, 64-character prompts; as many routes as fit, each naming its own target."""
    port = "p" * 15 + "1"
    doc = _base(gateway, version, calendars={_long("cal", 0)[:48]: ["2031-12-31"]},
                menus={_long("menu", 0)[:48]: {"prompt": "P" * 64, "default": "#",
                                               "options": {"#": {"targets": ["a"]}}}})
    doc["routes"].append(_first_route(closed=[]))

    def add(d, i):
        tid, rid = _long("target", i)[:48], _long("route", i)[:48]
        d["targets"][tid] = {"number": f"+{380620000000000 + i:015d}"[:16], "via": [port, "gsm1"],
                             "ring_timeout_s": 600, "max_calls": 100000}
        route = {"id": rid, "port": port, "caller": ["+" + f"{380500000000000 + i:015d}"],
                 "targets": [tid], "fallback": {"action": "forward", "target": tid},
                 "closed": [_long("cal", 0)[:48]]}
        if i % 4 == 3:
            route = {**route, "menu": _long("menu", 0)[:48]}
            del route["targets"]
        d["routes"].append(route)

        def undo():
            d["targets"].pop(tid)
            d["routes"].pop()
        return undo
    return _fill(doc, limit, add)


def _window(i: int) -> dict:
    days = "1234567"[i % 7:] or "7"
    return {"days": days, "start": f"{i % 24:02d}:{i % 60:02d}", "end": f"{(i + 7) % 24:02d}:{(i * 7) % 60:02d}"}


def probes_table(gateway: str = "gw-bench-1", limit: int = MAX_BODY, version: int = 1) -> bytes:
    """The 64 probes allowed (protocols.probes.MAX_PROBES), one a target, their hours as many windows as fit."""
    doc = _base(gateway, version, routes=[_first_route()], probes=[])
    for i in range(64):
        doc["targets"][f"t{i:02d}"] = {"number": f"+38063{i:07d}", "via": [PORTS[i % 2]]}
        doc["probes"].append({"target": f"t{i:02d}", "every_s": 600 + i, "hours": []})

    def add(d, i):
        hours = d["probes"][i % 64]["hours"]
        hours.append(_window(i))
        return hours.pop
    return _fill(doc, limit, add)


def hours_table(gateway: str = "gw-bench-1", limit: int = MAX_BODY, version: int = 1,
                routes: int = 64) -> bytes:
    """`routes` routes whose hours are as many distinct windows as fit (r0 open on Mondays 00:00-24:00)."""
    doc = _base(gateway, version, routes=[_first_route(hours=[{"days": "1", "start": "00:00", "end": "24:00"}])])
    for k in range(1, routes):
        doc["routes"].append({"id": f"r{k}", "port": PORTS[k % 2], "caller": [f"+3805{k:03d}"], "targets": ["a"],
                              "hours": []})

    def add(d, i):
        hours = d["routes"][1 + i % (routes - 1)]["hours"]
        hours.append(_window(i))
        return hours.pop
    return _fill(doc, limit, add)


def mixed_table(gateway: str = "gw-bench-1", limit: int = MAX_BODY, version: int = 1) -> bytes:
    """A quarter of the body each: deny prefixes and calendars, targets, menus, routes (with hours, callers
    and closed), probes on the first targets."""
    doc = _base(gateway, version, deny=[], closed=[], calendars={f"cal{c}": [] for c in range(8)}, menus={},
                probes=[])
    doc["routes"].append(_first_route(closed=[]))

    def add(d, i):
        undo = []
        kind = i % 4
        if kind == 0:
            d["deny"].append(f"+7{i:05d}")
            cal = d["calendars"][f"cal{i % 8}"]
            cal.append(_date(i))
            undo += [d["deny"].pop, cal.pop]
        elif kind == 1:
            tid = f"t{i:04d}"
            d["targets"][tid] = {"number": f"+3806{i:07d}", "via": [PORTS[i % 2]], "max_calls": 2}
            undo.append(lambda: d["targets"].pop(tid))
            if len(d["probes"]) < 64 and i % 3 == 0:
                d["probes"].append({"target": tid, "every_s": 900, "hours": [_window(i)]})
                undo.append(d["probes"].pop)
        elif kind == 2:
            mid = f"m{i:04d}"
            d["menus"][mid] = {"prompt": f"menu {i} " + "p" * 40, "default": "1",
                               "options": {k: {"targets": ["a", "b"][:1 + j % 2]} for j, k in enumerate("123*")}}
            undo.append(lambda: d["menus"].pop(mid))
        else:
            d["routes"].append({"id": f"r{i}", "port": PORTS[i % 2], "caller": [f"+3805{i:04d}", f"+3809{i:04d}"],
                                "hours": [_window(i), _window(i + 1)], "targets": ["a", "b"],
                                "closed": [f"cal{i % 8}", f"cal{(i + 3) % 8}"],
                                **({"menu": f"m{i - 1:04d}", "targets": None} if i % 8 == 7 else {})})
            if d["routes"][-1].get("targets") is None:
                del d["routes"][-1]["targets"]
            undo.append(d["routes"].pop)

        def undo_all():
            for u in reversed(undo):
                u()
        return undo_all
    return _fill(doc, limit, add)


SHAPES = {  # name: (generator, what it is)
    "closed": (closed_table, "the table's closed list: as many dates as fit"),
    "calendars": (calendars_table, "16 calendars of dates, 64 routes each closed on its own pair of them"),
    "menus": (menus_table, "menus of 12 options and 64-character prompts, each played by a route"),
    "manytargets": (many_targets_table, "as many targets as fit (numbers, 2 via, caps), 8 to a route"),
    "longids": (long_ids_table, "48-character ids, 15-digit numbers, 16-character ports, one target a route"),
    "probes": (probes_table, "64 probes whose hours are as many windows as fit"),
    "hours": (hours_table, "64 routes whose hours are as many windows as fit"),
    "mixed": (mixed_table, "deny, calendars, targets, menus, routes and probes, a quarter each"),
}
