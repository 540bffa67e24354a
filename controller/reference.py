"""The reference deployment of DESIGN §9, as region configuration.

Police 102 of the Donetsk region: one centre in Mariupol takes 102 calls from Mariupol,
Kramatorsk and Sloviansk; Toretsk, a front-line town, is switched over to it on 21 July 2016
(before that its 102 went to its own duty station); numbers in occupied territory are never
dialled; the information line 505 works daily 09:00-19:00. `seed()` writes it into a database;
`table()` compiles one gateway's table from it, with the same compiler the controller uses.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from controller.models import Base, Centre, City, DenyPrefix, Gateway, GatewayService, Holiday, Route, Service

ZONE = "Europe/Kyiv"
SWITCH_OVER = 1469048400  # 2016-07-21 00:00 in Kyiv
INDEPENDENCE_DAY = "2016-08-24"
DENY = {"+7": "Russia", "+38064": "occupied Luhansk region", "+380622": "occupied Donetsk",
        "+380623": "occupied Donetsk"}

# max_calls: the centre's lines (Centre.capacity), shared by the gateways that dial it (controller.capacity):
# Mariupol's centre and its reserve have a line for each of the four cities once Toretsk is switched over
CENTRES = {
    "mariupol-102": {"number": "+380629000102", "ring_timeout_s": 25, "max_calls": 4},
    "mariupol-reserve": {"number": "+380629000112", "ring_timeout_s": 25, "max_calls": 4},
    "info-505": {"number": "+380629000505", "ring_timeout_s": 20, "max_calls": 4},
    "donetsk-102": {"number": "+380622000102", "ring_timeout_s": 25},
    "toretsk-duty": {"number": "+380624720102", "ring_timeout_s": 30, "max_calls": 1},
}

CITIES = {
    "gw-mariupol-1": "Mariupol",
    "gw-kramatorsk-1": "Kramatorsk",
    "gw-sloviansk-1": "Sloviansk",
    "gw-toretsk-1": "Toretsk",
}

# every reference gateway is a four-module board: citizens' 102 on gsm1, the 505 line on gsm3, the old
# Donetsk line on gsm4; the centres are dialled via gsm2. The demo, `preview` and `table reference` share it.
PROFILE = "esp32-wrover-4gsm"
PORTS = {"gsm1": "102", "gsm3": "505", "gsm4": "102-old"}
OUT_PORTS = ["gsm2"]


def gateway_key(gateway: str) -> str:
    """A fixed key per reference gateway (the demo's; real gateways get random ones)."""
    return hashlib.sha256(b"citygate reference " + gateway.encode()).hexdigest()


def seed(s: Session, profile: str = PROFILE, ports: dict[str, str] | None = None,
         out_ports: list[str] | None = None) -> None:
    ports = ports or PORTS
    services = {"102": Service(number="102", name="Police", closed_on_holidays=False),
                "505": Service(number="505", name="Citizens' information", closed_on_holidays=True),
                "102-old": Service(number="1020", name="Police, old Donetsk line", closed_on_holidays=False)}
    s.add_all(services.values())
    for code, c in CENTRES.items():
        s.add(Centre(code=code, name=code, number=c["number"], capacity=c.get("max_calls"),
                     ring_timeout_s=c["ring_timeout_s"]))
    for prefix, note in DENY.items():
        s.add(DenyPrefix(prefix=prefix, note=note))
    s.add(Holiday(city_id=None, date=INDEPENDENCE_DAY))
    s.flush()
    for gw_id, name in CITIES.items():
        city = City(name=name, zone=ZONE)
        s.add(city)
        s.flush()
        police = dict(city_id=city.id, service_id=services["102"].id, targets=["mariupol-102", "mariupol-reserve"],
                      fallback={"action": "callback"})
        if name == "Toretsk":
            s.add(Route(name="police-102-local", city_id=city.id, service_id=services["102"].id,
                        targets=["toretsk-duty"], fallback={"action": "callback"}, valid_until=SWITCH_OVER))
            s.add(Route(name="police-102", valid_from=SWITCH_OVER, **police))
        else:
            s.add(Route(name="police-102", **police))
        s.add(Route(name="info-505", city_id=city.id, service_id=services["505"].id, targets=["info-505"],
                    hours=[{"days": "1234567", "start": "09:00", "end": "19:00"}],
                    fallback={"action": "callback"}, after_hours={"action": "callback"}))
        s.add(Route(name="old-donetsk-line", city_id=city.id, service_id=services["102-old"].id,
                    targets=["donetsk-102"], fallback={"action": "forward", "target": "donetsk-102"}))
        gw = Gateway(id=gw_id, city_id=city.id, profile=profile, ports=sorted(set(ports) | set(out_ports or OUT_PORTS)),
                     out_ports=list(out_ports or OUT_PORTS), key_hex=gateway_key(gw_id))
        s.add(gw)
        for port, service in ports.items():
            s.add(GatewayService(gateway_id=gw_id, service_id=services[service].id, port=port))
    s.flush()


def table(gateway: str, version: int = 1, issued_at: int = SWITCH_OVER - 86400) -> dict:
    """The table body for one reference gateway, compiled from the seeded configuration."""
    from controller.compiler import table_doc

    if gateway not in CITIES:
        raise KeyError(f"no reference gateway {gateway!r}; known: {', '.join(CITIES)}")
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        seed(s)
        return table_doc(s, s.get(Gateway, gateway), version, issued_at)


def body(gateway: str, version: int = 1) -> bytes:
    return json.dumps(table(gateway, version), separators=(",", ":")).encode()
