"""What a HIL scenario may ask of a rig, whatever the rig is made of (labgrid style: resources -> drivers -> these).

A rig is one board under test with its power, its console, the phone network around it (callers that
dial the board's ports, centres the board dials), its flash (where the rig can see it) and the broker
the board talks to. `features` says which of the optional abilities this rig has; asking for one it
lacks raises `MissingFeature`, and the pytest plugin's `needs` marker skips such scenarios up front.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

# gsm: GSM ports with callers and centres; fxo: FXO lines; power_cut_injection: flash loses power after N ops;
# clock_control: the network's clock can be set; flash_stats: block writes/erases can be read;
# modem_faults: a board modem can be made to send garbage; broker_control: the broker can be stopped and started;
# prompt_truth: truth() tells what the board's modem played to a caller ("prompts") and the keys it heard ("keys")
FEATURES = frozenset({"gsm", "fxo", "power_cut_injection", "clock_control", "flash_stats", "modem_faults",
                      "broker_control", "prompt_truth"})
CONSOLE_TAIL = 30  # lines an expect() failure quotes


class MissingFeature(RuntimeError):
    def __init__(self, rig: str, feature: str):
        super().__init__(f"rig {rig} lacks feature {feature}")
        self.rig, self.feature = rig, feature


@dataclass(frozen=True)
class BoardInfo:
    """The gateway on the rig, as its rig file says: what the controller must know to talk to it."""

    id: str
    key: str
    profile: str
    ports: tuple[str, ...] = ()
    numbers: dict = field(default_factory=dict)  # port -> the SIM's phone number (benches; empty when emulated)


class Power(ABC):
    @abstractmethod
    def on(self) -> None: ...

    @abstractmethod
    def off(self) -> None:
        """Switched off as an operator would: through the relay, with the rig's off time respected."""

    def cycle(self) -> None:
        self.off()
        self.on()

    @abstractmethod
    def cut(self) -> None:
        """Sudden loss of power, now (nothing waits, nothing is flushed)."""


class Console(ABC):
    """The board's console: every line since the rig opened, kept in memory and in `log_path`."""

    log_path: Path | None = None

    @abstractmethod
    def lines(self) -> list[str]: ...

    def mark(self) -> int:
        """A position to expect() from: only lines after it count."""
        return len(self.lines())

    def text(self) -> str:
        return "\n".join(self.lines())

    def expect(self, pattern: str, timeout: float = 20, after: int = 0) -> re.Match:
        """The first console line from line `after` on matching `pattern` (a regex); TimeoutError names
        the pattern, the last lines and the log file when none comes within `timeout` s."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines()[after:]:
                m = rx.search(line)
                if m:
                    return m
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        self.flush_log()
        tail = "\n".join(self.lines()[-CONSOLE_TAIL:])
        raise TimeoutError(f"no console line matching {pattern!r} within {timeout}s (full log: {self.log_path});"
                           f" last lines:\n{tail}")

    def flush_log(self) -> None:  # noqa: B027 (most rigs write their log as lines come)
        """Make `log_path` hold every line so far (rigs that write it as lines come need nothing)."""


class Network(ABC):
    """The phone network around the board, the calls of `emulator.network.GsmNetwork` a scenario uses."""

    @abstractmethod
    def call(self, port: str, caller: str, keys: str | None = None, hangup_after_s: float | None = None,
             keys_after_s: float = 1.0):
        """A call from `caller` into the board's `port`; `keys` (DTMF) are pressed from `keys_after_s` s after it
        is answered (a menu answers to play its prompt; None: no key). Returns a handle with `wait(timeout) ->
        dict` (answered, ring_s, talk_s, connected_to, ended_by)."""

    @abstractmethod
    def destination(self, number: str, answer_after_s: float = 1, talk_s: float = 5, busy: bool = False,
                    no_answer: bool = False, unreachable: bool = False, lines: int | None = None,
                    alert_after_s: float | None = None) -> None:
        """What a number the board dials does from now on; `alert_after_s`: how long after the board dials it
        rings (the post-dial delay a probe measures), where the rig can choose it (None: the network's own)."""

    @abstractmethod
    def truth(self) -> list[dict]:
        """Every leg as it really happened (see GsmNetwork.truth for the fields)."""

    def inbound(self) -> list[dict]:
        return [t for t in self.truth() if t["dir"] == "in"]

    def set_time(self, unix: float | None, tz_quarters: int = 0) -> None:
        raise MissingFeature(self.rig_name, "clock_control")

    def garbage(self, port: str, data: bytes = b"\x00\xff\xfe\x13garbage\x88") -> None:
        raise MissingFeature(self.rig_name, "modem_faults")

    rig_name = "?"


class Flash:
    def stats(self) -> dict:
        """{"writes": n, "erases": n} block operations since the flash was made."""
        raise MissingFeature(self.rig_name, "flash_stats")

    def cut_after(self, n: int) -> None:
        """The board loses power at its n-th flash block write or erase from now."""
        raise MissingFeature(self.rig_name, "power_cut_injection")

    rig_name = "?"


class Broker:
    """The broker the board and the controller meet on; stop()/start() (an outage) with `broker_control`."""

    def __init__(self, url: str, rig_name: str = "?"):
        self.url, self.rig_name = url, rig_name

    def stop(self) -> None:
        raise MissingFeature(self.rig_name, "broker_control")

    def start(self) -> None:
        raise MissingFeature(self.rig_name, "broker_control")


class Rig(ABC):
    """One board and everything around it. `open()` reaches the parts (the board stays off), `close()` lets go."""

    name: str
    features: frozenset[str]
    board: BoardInfo
    power: Power
    console: Console
    network: Network
    flash: Flash
    broker: Broker

    def require(self, *features: str) -> None:
        for f in features:
            if f not in self.features:
                raise MissingFeature(self.name, f)

    @abstractmethod
    def open(self) -> Rig: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Rig:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
