"""Holidays close only the routes they should (issue 11 §1), on the board: the controller compiles the
reference deployment (police 102 never closes, the 505 line closes on holidays) for the rig's board with the
day the board lives in as a region holiday; a 102 call is dialled, a 505 call is closed (a call-back, no
centre dialled). The table is the controller's own (controller.compiler.table_doc on a real database)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from controller import reference
from controller.compiler import table_doc
from controller.db import Database
from controller.models import Centre, City, Gateway, GatewayService, Holiday, Service
from tests.hil.conftest import MONDAY_NOON
from tests.hil.test_board_calls import place

pytestmark = pytest.mark.slow
# the rig's scenario centres stand in for the reference's (their numbers answer on every rig)
NUMBERS = {"mariupol-102": "+380629000001", "mariupol-reserve": "+380629000002", "info-505": "+380629000002"}
PORTS = {"gsm1": "102", "gsm2": "505"}  # citizens' calls; gsm3/gsm4 dial the centres


def holidays() -> set[str]:
    """The local dates the board may live in during this module: around the network time emulated rigs set
    (MONDAY_NOON) and around today (a bench's clock), a day either side."""
    kyiv = ZoneInfo(reference.ZONE)
    days = set()
    for t in (MONDAY_NOON, time.time()):
        for d in (-1, 0, 1):
            days.add((datetime.fromtimestamp(t, kyiv) + timedelta(days=d)).strftime("%Y-%m-%d"))
    return days


def board_table(gw_id: str, version: int = 1) -> dict:
    """The controller's table for this board as a Mariupol gateway of the reference deployment."""
    db = Database("sqlite://")
    db.upgrade()
    with db.session() as s:
        reference.seed(s)
        for c in s.scalars(select(Centre)):
            c.number = NUMBERS.get(c.code, c.number)
        for day in holidays():
            s.add(Holiday(city_id=None, date=day))
        city = s.scalars(select(City).where(City.name == "Mariupol")).one()
        services = {sv.number: sv for sv in s.scalars(select(Service))}
        gw = Gateway(id=gw_id, city_id=city.id, profile="esp32-wrover-4gsm", ports=["gsm1", "gsm2", "gsm3", "gsm4"],
                     out_ports=["gsm3", "gsm4"], key_hex="00" * 32)
        s.add(gw)
        s.flush()
        s.add_all(GatewayService(gateway_id=gw_id, service_id=services[number].id, port=port)
                  for port, number in PORTS.items())
        s.flush()
        s.refresh(gw)
        return table_doc(s, gw, version, MONDAY_NOON - 86400)


def test_the_table_closes_505_on_holidays_and_never_102():
    doc = board_table("gw-hil-check")
    closed = {r["id"]: r["closed"] for r in doc["routes"]}
    assert closed == {"police-102": [], "info-505": ["region"]}
    assert set(doc["calendars"]["region"]) >= holidays()


def test_a_holiday_keeps_102_dialling(rig, board, controller):
    lived, rec, truth = place(rig, controller, "+38050", port="gsm1")
    assert (rec["route"], rec["outcome"], rec["target"], rec["reason"]) == ("police-102", "answered", "mariupol-102",
                                                                            "ok")
    assert lived["answered"] and lived["connected_to"] == NUMBERS["mariupol-102"]
    assert [a["number"] for a in truth["attempts"]] == [NUMBERS["mariupol-102"]]


def test_a_holiday_closes_505(rig, board, controller):
    lived, rec, truth = place(rig, controller, "+38050", port="gsm2")
    assert (rec["route"], rec["outcome"], rec["reason"], rec["attempts"]) == ("info-505", "callback", "closed_day", 0)
    assert not lived["answered"] and truth["attempts"] == [], "no centre is dialled on a closed day"
