"""The reference deployment of DESIGN §9, as routing table bodies.

Police 102 of the Donetsk region: one centre in Mariupol takes 102 calls
from Mariupol, Kramatorsk and Sloviansk; Toretsk, a front-line town, is
switched over to it on 21 July 2016; numbers in occupied territory are never
dialled; the information line 505 works daily 09:00-19:00. Used by
`citygate preview` now and seeded into the region model by the demo later.
"""

from __future__ import annotations

import json

from controller.timezones import zone_rule

ZONE = "Europe/Kyiv"
SWITCH_OVER = 1469048400  # 2016-07-21 00:00 in Kyiv
INDEPENDENCE_DAY = "2016-08-24"
DENY = ["+7", "+38064", "+380622", "+380623"]  # Russia, occupied Luhansk and Donetsk exchanges

CENTRES = {
    "mariupol-102": {"number": "+380629000102", "via": ["gsm2"], "ring_timeout_s": 25, "max_calls": 3},
    "mariupol-reserve": {"number": "+380629000112", "via": ["gsm2"], "ring_timeout_s": 25, "max_calls": 2},
    "info-505": {"number": "+380629000505", "via": ["gsm2"], "ring_timeout_s": 20, "max_calls": 4},
    "donetsk-102": {"number": "+380622000102", "via": ["gsm2"], "ring_timeout_s": 25},
    "toretsk-duty": {"number": "+380624720102", "via": ["gsm2"], "ring_timeout_s": 30, "max_calls": 1},
}

CITIES = {
    "gw-mariupol-1": "Mariupol",
    "gw-kramatorsk-1": "Kramatorsk",
    "gw-sloviansk-1": "Sloviansk",
    "gw-toretsk-1": "Toretsk",
}


def table(gateway: str, version: int = 1, issued_at: int = SWITCH_OVER - 86400) -> dict:
    """The table body for one reference gateway."""
    if gateway not in CITIES:
        raise KeyError(f"no reference gateway {gateway!r}; known: {', '.join(CITIES)}")
    police = {"id": "police-102", "port": "gsm1", "targets": ["mariupol-102", "mariupol-reserve"],
              "strategy": "sequential", "fallback": {"action": "callback"}}
    routes = [police]
    if gateway == "gw-toretsk-1":
        # Until the switch-over Toretsk's 102 goes to its own duty station; from it on, to Mariupol.
        police["from"] = SWITCH_OVER
        routes.append({"id": "police-102-local", "port": "gsm1", "until": SWITCH_OVER,
                       "targets": ["toretsk-duty"], "fallback": {"action": "callback"}})
    routes.append({"id": "info-505", "port": "fxo1",
                   "hours": [{"days": "1234567", "start": "09:00", "end": "19:00"}],
                   "targets": ["info-505"], "fallback": {"action": "callback"},
                   "after_hours": {"action": "callback"}})
    routes.append({"id": "old-donetsk-line", "port": "gsm3", "targets": ["donetsk-102"],
                   "fallback": {"action": "forward", "target": "donetsk-102"}})
    return {"schema": 1, "gateway": gateway, "version": version, "issued_at": issued_at,
            "tz": zone_rule(ZONE), "deny": DENY, "closed": [INDEPENDENCE_DAY],
            "targets": CENTRES, "routes": routes}


def body(gateway: str, version: int = 1) -> bytes:
    return json.dumps(table(gateway, version), separators=(",", ":")).encode()
