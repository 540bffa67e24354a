"""A real bench: the board reached only through real interfaces.

Console: the board's UART through pyserial (`serial_for_url`: a tty, rfc2217://, socket://). Power: a Modbus
relay coil through a pymodbus client (TCP or RTU). Calls: caller and centre GSM modems driven with AT commands
through pyserial (hil_tests.rig.bench_network). The broker is the one the rig file names. A bench has only
the features its rig file lists, and never those that need the inside of the board (power_cut_injection,
clock_control, flash_stats, modem_faults) or of the broker (broker_control).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from hil_tests.rig import base
from hil_tests.rig.bench_network import BenchNetwork, CentreLine
from hil_tests.rig.config import RigConfig
from hil_tests.rig.drivers.at_modem import AtModem
from hil_tests.rig.drivers.modbus_power import ModbusPower
from hil_tests.rig.drivers.serial_console import SerialConsole


class _NotedPower(base.Power):
    """The relay, with each switch written into the console's timeline."""

    def __init__(self, relay: ModbusPower, console: SerialConsole):
        self.relay, self._console = relay, console
        self.boots = 0

    def on(self) -> None:
        self.relay.on()
        self.boots += 1
        self._console.note(f"power on (boot {self.boots})")

    def off(self) -> None:
        self.relay.off()
        self._console.note("power off")

    def cut(self) -> None:
        self.relay.cut()
        self._console.note("power cut")


class BenchRig(base.Rig):
    def __init__(self, cfg: RigConfig, log_dir: str | Path):
        self.cfg, self.name, self.features = cfg, cfg.name, cfg.features
        b = cfg.board
        from firmware.gw import profiles

        self.board = base.BoardInfo(b.id, b.key, b.profile, tuple(profiles.get(b.profile)["ports"]), dict(b.numbers))
        self.log_dir = Path(log_dir)
        self._stack: ExitStack | None = None

    def open(self) -> BenchRig:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:  # a part that cannot be reached closes the ones already open
            console = SerialConsole(self.cfg.console.url, self.cfg.console.baudrate,
                                    self.log_dir / f"{self.board.id}-console.log").open()
            stack.callback(console.close)
            relay = ModbusPower(self.cfg.power).open()
            stack.callback(relay.close)
            callers = {}
            for m in self.cfg.callers:
                modem = AtModem(m.name, m.url, m.baudrate).open()
                stack.callback(modem.close)
                callers[m.name] = (modem, m.number)
            by_number = {n: port for port, n in self.board.numbers.items()}
            centres = {}
            for m in self.cfg.centres:
                modem = AtModem(m.name, m.url, m.baudrate)
                centres[m.number] = CentreLine(modem, m.number, by_number)  # sets its URC handler before open
                modem.open()
                stack.callback(modem.close)
            self.console, self.power = console, _NotedPower(relay, console)
            self.network = BenchNetwork(self.name, dict(self.board.numbers), callers, centres)
            self.flash = base.Flash()
            self.flash.rig_name = self.network.rig_name = self.name
            self.broker = base.Broker(self.cfg.broker, self.name)
            self._stack = stack.pop_all()
        return self

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
