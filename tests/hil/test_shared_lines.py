"""A centre's lines are shared (issue 11 §5), on four emulated boards at once: the controller service (real
Mosquitto, SQLite) compiles the reference deployment's four gateways, all of which dial the police centre, and
splits the centre's lines among them; every gateway then takes as many calls as its modules can carry at the
same moment, and the ground truth of the four emulated GSM networks shows the centre never had more calls on
its lines than it has lines, and each gateway never more than its share.

Each board can physically put two calls on the centre at once (out ports gsm3 and gsm4), eight in all:
- six lines: more than the gateways, so each gets one and the rest by weight (2/2/1/1): a gateway ignoring its
  share would show, and the centre is full at six;
- three lines, fewer than the gateways: the caps still add up to three (Toretsk, last by id without history,
  gets none), so the four gateways never put more than three calls on the centre at once, and the calls that
  found no line went to the route's next target (the reserve centre) or its fallback (a call-back)."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from controller import reference
from controller.brokers import Mosquitto, free_port
from controller.compiler import Region, latest_table
from controller.models import Centre, Gateway, Record, Route
from controller.rollouts import start_rollout
from controller.service import ControllerService
from controller.settings import Settings
from emulator.board import EmulatedRig
from tests.conditions import until

pytestmark = pytest.mark.slow
PROFILE, PORTS, OUT = "esp32-wrover-4gsm", {"gsm1": "102", "gsm2": "505"}, ["gsm3", "gsm4"]
POLICE = reference.CENTRES["mariupol-102"]["number"]
RESERVE = reference.CENTRES["mariupol-reserve"]["number"]
RESERVE_LINES = 8  # two per gateway: a call that finds no police line always has a reserve line to go to


@pytest.fixture(autouse=True)
def emulated_only(rig_config):
    if rig_config.kind != "emulated":
        pytest.skip("four boards at once: emulated boards only")


@pytest.fixture
def fleet(tmp_path, request):
    """The four reference gateways as emulated boards, the police centre with `request.param` lines; the 505
    line's calls go to the police centre too (no other target: its fallback is a call-back)."""
    lines = request.param
    with Mosquitto() as broker:
        service = ControllerService(Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}", broker=broker.url,
                                             listen_port=free_port())).start()
        rigs: dict[str, EmulatedRig] = {}
        try:
            with service.db.session() as s:
                reference.seed(s, profile=PROFILE, ports=PORTS, out_ports=OUT)
                for code, n in (("mariupol-102", lines), ("mariupol-reserve", RESERVE_LINES)):
                    s.scalars(select(Centre).where(Centre.code == code)).one().capacity = n
                for r in s.scalars(select(Route).where(Route.name == "info-505")):  # 505 calls go to police too
                    r.targets, r.hours, r.after_hours = ["mariupol-102"], None, None
                keys = {g.id: g.key_hex for g in s.scalars(select(Gateway))}
            for gw, key in sorted(keys.items()):
                rig = rigs[gw] = EmulatedRig(gw, key, broker.url, profile=PROFILE, workdir=tmp_path / gw)
                rig.network.set_time(time.time())  # one clock for the four networks' ground truth
                for c in reference.CENTRES.values():
                    rig.network.destination(c["number"], answer_after_s=0.3, talk_s=4)
                rig.power_on()
            until(lambda: all(_online(service, gw) for gw in keys), 120, "four boards online, every port ready")
            with service.db.session() as s:
                start_rollout(s, service.bridge, sorted(keys))
            until(lambda: all(_applied(service, gw) for gw in keys), 90, "four tables applied")
            yield service, rigs, lines
        finally:
            for rig in rigs.values():
                rig.close()
            service.stop()


def _online(service, gw: str) -> bool:
    with service.db.session() as s:
        g = s.get(Gateway, gw)
        ports = (g.state or {}).get("ports") or {}
        return g.online and bool(ports) and all(p.get("ready") for p in ports.values())


def _applied(service, gw: str) -> bool:
    with service.db.session() as s:
        return s.get(Gateway, gw).applied_version is not None


def most_at_once(legs: list[dict]) -> int:
    """The most legs in progress at the same moment (an end before a start at the same instant)."""
    events = sorted([(t["start"], 1) for t in legs] + [(t["end"], -1) for t in legs])
    level = best = 0
    for _, step in events:
        level += step
        best = max(best, level)
    return best


def _caps(service, rigs) -> dict[str, int]:
    with service.db.session() as s:
        return {gw: json.loads(latest_table(s, gw).body)["targets"]["mariupol-102"]["max_calls"] for gw in rigs}


def _eight_calls_at_once(rigs) -> dict[str, dict[str, str]]:
    """Two citizens per board at once (102 on gsm1, 505 on gsm2), until every call ended: {gw: {caller: port}}."""
    placed = {gw: {f"+38067{i:03d}{n:04d}": port for n, port in enumerate(("gsm1", "gsm2"))}
              for i, gw in enumerate(rigs)}
    calls = [rigs[gw].network.call(port, caller) for gw, callers in placed.items() for caller, port in callers.items()]
    for call in calls:
        call.wait(60)
    return placed


def _ended_legs(rig, number: str) -> list[dict] | None:
    """The board's outbound legs to `number`, once all of them ended."""
    legs = [t for t in rig.network.truth() if t["dir"] == "out" and t["number"] == number]
    return legs if all(t["end"] is not None for t in legs) else None


@pytest.mark.parametrize("fleet", [6], indirect=True)
def test_four_gateways_never_put_more_calls_on_the_centre_than_its_lines(fleet):
    service, rigs, lines = fleet
    caps = _caps(service, rigs)
    assert sum(caps.values()) == lines and min(caps.values()) >= 1, caps
    _eight_calls_at_once(rigs)  # eight citizens at once, two per board
    per_gateway = {gw: until(lambda rig=rig: _ended_legs(rig, POLICE), 30, f"{gw}'s calls to the centre, ended")
                   for gw, rig in rigs.items()}
    for gw, legs in per_gateway.items():
        assert most_at_once(legs) == caps[gw], (gw, caps[gw], [(t["start"], t["end"]) for t in legs])
    everyone = [t for legs in per_gateway.values() for t in legs]
    assert most_at_once(everyone) == lines, "the centre's lines full, never more (eight calls were offered)"


@pytest.mark.parametrize("fleet", [3], indirect=True)
def test_four_gateways_sharing_three_lines_never_put_more_than_three_calls_on_them(fleet):
    """Fewer lines than gateways: Toretsk gets no line (max_calls 0), so its 102 call goes to the reserve centre
    (the route's next target) and its 505 call to the call-back list (that route's fallback); ground truth: the
    police centre never had more than three calls at once from the four networks together."""
    service, rigs, lines = fleet
    caps = _caps(service, rigs)
    assert caps == {"gw-kramatorsk-1": 1, "gw-mariupol-1": 1, "gw-sloviansk-1": 1, "gw-toretsk-1": 0}
    with service.db.session() as s:
        warning = Region(s).splits()["mariupol-102"].warning
    assert warning.startswith("centre mariupol-102 has 3 lines but 4 gateways dial it: no line for gw-toretsk-1")

    placed = _eight_calls_at_once(rigs)
    truth = {gw: until(lambda rig=rig: rig.network.truth() if _ended_legs(rig, POLICE) is not None
                       and _ended_legs(rig, RESERVE) is not None else None, 30, f"{gw}'s outbound legs, ended")
             for gw, rig in rigs.items()}
    police = {gw: [t for t in legs if t["dir"] == "out" and t["number"] == POLICE] for gw, legs in truth.items()}
    everyone = [t for legs in police.values() for t in legs]
    assert 1 <= most_at_once(everyone) <= lines, [(t["start"], t["end"]) for t in everyone]
    for gw, legs in police.items():
        assert most_at_once(legs) <= caps[gw], (gw, [(t["start"], t["end"]) for t in legs])
    assert police["gw-toretsk-1"] == [], "a gateway without a line never dials the centre"

    def records():
        with service.db.session() as s:
            rows = s.scalars(select(Record).where(Record.kind == "call")).all()
            got = {(r.gateway_id, r.caller): (r.port, r.route, r.outcome, r.target, r.reason) for r in rows}
        return got if len(got) == 8 else None

    stored = until(records, 60, "the eight calls' records stored")
    for gw, callers in placed.items():
        inbound = {t["caller"]: t for t in truth[gw] if t["dir"] == "in"}
        for caller, port in callers.items():
            p, route, outcome, target, reason = stored[(gw, caller)]
            assert p == port and route == ("police-102" if port == "gsm1" else "info-505"), stored[(gw, caller)]
            leg = inbound[caller]
            if target == "mariupol-102":  # it found a line on the centre
                assert gw != "gw-toretsk-1" and outcome == "answered" and leg["answered_by"] == POLICE
            elif route == "police-102":  # the centre's line taken: the route's next target
                assert (outcome, target, reason, leg["answered_by"]) == ("answered", "mariupol-reserve", "ok", RESERVE)
            else:  # the 505 route has no other target: its fallback
                assert (outcome, reason) == ("callback", "all_busy"), stored[(gw, caller)]
            assert POLICE not in [a["number"] for a in leg["attempts"]] or target == "mariupol-102", leg["attempts"]
    toretsk = {stored[("gw-toretsk-1", c)][1:4] for c in placed["gw-toretsk-1"]}
    assert toretsk == {("police-102", "answered", "mariupol-reserve"), ("info-505", "callback", None)}, toretsk
