"""The rig interfaces over the emulator's board (emulator.board.EmulatedRig, the product's; not duplicated here).

Power, console and flash go straight to the emulated board; the network is its GsmNetwork (its caller presses
DTMF keys once the board answers); the broker is a private Mosquitto unless the rig
file names one.
"""

from __future__ import annotations

from pathlib import Path

from controller.brokers import Mosquitto
from emulator import board as emulated_board
from firmware.gw import profiles
from hil_tests.rig import base
from hil_tests.rig.config import RigConfig


class _Power(base.Power):
    def __init__(self, board: emulated_board.EmulatedRig):
        self._board = board

    def on(self) -> None:
        self._board.power_on()

    def off(self) -> None:
        self._board.power_off()

    def cut(self) -> None:
        self._board.power_off()  # the emulator's power off is already sudden: the process is killed

    @property
    def boots(self) -> int:
        return self._board.boots


class _Console(base.Console):
    def __init__(self, board: emulated_board.EmulatedRig, log_path: Path):
        self._board, self.log_path = board, log_path

    def lines(self) -> list[str]:
        return self._board.console().splitlines()

    def flush_log(self) -> None:
        self.log_path.write_text(self._board.console() + "\n")


class _Network(base.Network):
    def __init__(self, network, rig_name: str):
        self._net, self.rig_name = network, rig_name

    def call(self, port, caller, keys=None, hangup_after_s=None, keys_after_s=1.0):
        return self._net.call(port, caller, hangup_after_s=hangup_after_s, keys=keys, keys_after_s=keys_after_s)

    def destination(self, number, answer_after_s=1, talk_s=5, busy=False, no_answer=False, unreachable=False,
                    lines=None, alert_after_s=None):
        self._net.destination(number, answer_after_s=answer_after_s, talk_s=talk_s, busy=busy,
                              no_answer=no_answer, unreachable=unreachable, lines=lines,
                              **({} if alert_after_s is None else {"alert_after_s": alert_after_s}))

    def truth(self):
        return self._net.truth()

    def set_time(self, unix, tz_quarters=0):
        self._net.set_time(unix, tz_quarters)

    def garbage(self, port, data=b"\x00\xff\xfe\x13garbage\x88"):
        self._net.garbage(port, data)

    def __getattr__(self, name):  # the emulator's other powers (freeze, set_signal, ...) stay reachable
        return getattr(self._net, name)


class _Flash(base.Flash):
    def __init__(self, board: emulated_board.EmulatedRig, rig_name: str):
        self._board, self.rig_name = board, rig_name

    def stats(self) -> dict:
        return self._board.flash_stats()

    def cut_after(self, n: int) -> None:
        self._board.power_cut_after(n)


class _PrivateBroker(base.Broker):
    def __init__(self, mosquitto: Mosquitto, rig_name: str):
        super().__init__(mosquitto.url, rig_name)
        self.mosquitto = mosquitto

    def stop(self) -> None:
        self.mosquitto.stop()

    def start(self) -> None:
        self.mosquitto.start()


class EmulatedRig(base.Rig):
    """`with EmulatedRig(config.load(path), log_dir) as rig:` an emulated board, powered off until power.on()."""

    def __init__(self, cfg: RigConfig, log_dir: str | Path):
        self.cfg, self.name, self.features = cfg, cfg.name, cfg.features
        b = cfg.board
        self.board = base.BoardInfo(b.id, b.key, b.profile, tuple(profiles.get(b.profile)["ports"]), dict(b.numbers))
        self.log_dir = Path(log_dir)
        self._mosquitto: Mosquitto | None = None
        self.emulated: emulated_board.EmulatedRig | None = None

    def open(self) -> EmulatedRig:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.cfg.broker == "private":
            self._mosquitto = Mosquitto().start()
            self.broker = _PrivateBroker(self._mosquitto, self.name)
        else:
            self.broker = base.Broker(self.cfg.broker, self.name)
        b, em = self.cfg.board, self.cfg.emulated
        self.emulated = emulated_board.EmulatedRig(
            b.id, b.key, self.broker.url, profile=b.profile, heap=em.get("heap"),
            flash_blocks=em.get("flash_blocks", 256), user=self.cfg.broker_user, password=self.cfg.broker_password)
        self.power = _Power(self.emulated)
        self.console = _Console(self.emulated, self.log_dir / f"{b.id}-console.log")
        self.network = _Network(self.emulated.network, self.name)
        self.flash = _Flash(self.emulated, self.name)
        return self

    def close(self) -> None:
        if self.emulated is not None:
            self.emulated.power_off()
            self.console.flush_log()
            self.emulated.close()
            self.emulated = None
        if self._mosquitto is not None:
            self._mosquitto.close()
            self._mosquitto = None
