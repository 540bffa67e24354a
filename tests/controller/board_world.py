"""What the board tests share: one emulated board (gw-mariupol-1, the real firmware on MicroPython) on a
controller service as `citygate serve` runs it (a real Mosquitto of its own, a SQLite file), the
reference deployment seeded, the board brought online and its table rolled out.

    with controller(tmp_path) as service:
        with service.db.session() as s:
            key = seed(s, out_ports=["gsm2"])     # and whatever else the test changes
        with board(service, key, tmp_path) as rig:
            rig.network.destination(...)          # who answers
            rig.power_on()
            roll_out(service)                     # online, every port ready, table applied
            yield service, rig

Each step stops what it started when the test ends (the board, then the service, then the broker)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from controller import reference
from controller.brokers import Mosquitto, free_port
from controller.models import Gateway
from controller.rollouts import start_rollout
from controller.service import ControllerService
from controller.settings import Settings
from emulator.board import EmulatedRig
from tests.conditions import until

GW, PROFILE = "gw-mariupol-1", "esp32-wrover-4gsm"
PORTS = {"gsm1": "102", "gsm3": "505"}  # the inbound lines: police and the information line


def gateway(service) -> Gateway:
    """The board's row as the controller has it now (detached)."""
    with service.db.session() as s:
        gw = s.get(Gateway, GW)
        s.expunge(gw)
        return gw


@contextmanager
def controller(directory: Path, **settings) -> Iterator[ControllerService]:
    """A started controller service (its Settings plus `settings`) on its own Mosquitto, its database
    directory/c.db."""
    with Mosquitto() as broker:
        service = ControllerService(Settings(database_url=f"sqlite:///{directory / 'c.db'}", broker=broker.url,
                                             listen_port=free_port(), **settings)).start()
        try:
            yield service
        finally:
            service.stop()


def seed(s, out_ports: list[str]) -> str:
    """The reference deployment with GW of PROFILE answering PORTS and dialling out on `out_ports`; GW's key."""
    reference.seed(s, profile=PROFILE, ports=PORTS, out_ports=out_ports)
    return s.get(Gateway, GW).key_hex


@contextmanager
def board(service: ControllerService, key: str, directory: Path, gateway_id: str = GW) -> Iterator[EmulatedRig]:
    """The gateway's emulated board (GW unless said) on the service's broker, powered off (its files under
    directory/gateway_id)."""
    rig = EmulatedRig(gateway_id, key, service.settings.broker, profile=PROFILE, workdir=directory / gateway_id)
    try:
        yield rig
    finally:
        rig.close()


def lines_up(gw: Gateway) -> bool:
    """Every port of the board says it is ready (its last state). The link comes up without waiting for the
    modems, and a modem whose start-up commands go unanswered for 2 s (a loaded machine starves the
    emulated network as much as the board) is power-cycled by the firmware and started again: until then
    the network turns calls to that port away as unreachable, and the port cannot dial out."""
    ports = (gw.state or {}).get("ports") or {}
    return bool(ports) and all(p.get("ready") for p in ports.values())


def roll_out(service: ControllerService, ready: Callable[[Gateway], bool] = lines_up,
             version: int | None = None) -> None:
    """Wait for the board online and `ready` (unless said: every port up, `lines_up`), roll its compiled
    table out, wait for it applied (that `version`, when given)."""
    until(lambda: gateway(service).online and ready(gateway(service)), 90, "the board online, its ports ready")
    with service.db.session() as s:
        start_rollout(s, service.bridge, [GW])
    until(lambda: gateway(service).applied_version if version is None
          else gateway(service).applied_version == version, 60, "the table applied")
