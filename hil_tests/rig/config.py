"""Rig files (TOML, `hil_tests/rigs/*.toml`) read into small dataclasses; a bad file names its bad key.

    rig = config.load("hil_tests/rigs/emulated.toml")     # RigConfigError: "<file>: [power] coil: ..."
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from hil_tests.rig.base import FEATURES

RIGS = Path(__file__).resolve().parent.parent / "rigs"
DEFAULT = RIGS / "emulated.toml"
KINDS = {"emulated": FEATURES, "bench": FEATURES - {"power_cut_injection", "clock_control", "flash_stats",
                                                    "modem_faults", "broker_control", "prompt_truth"}}
# bench-in-a-box: a bench whose parts are the emulator's (console pty, Modbus relay, subscriber modems), reached
# only through the bench's drivers; its broker is private, so it can also stop and start it
KINDS["box"] = KINDS["bench"] | {"broker_control"}


class RigConfigError(ValueError):
    pass


@dataclass(frozen=True)
class BoardConfig:
    id: str
    key: str
    profile: str
    boot_timeout_s: float = 60.0
    numbers: dict = field(default_factory=dict)  # port -> SIM number (benches)


@dataclass(frozen=True)
class SerialConfig:
    url: str  # any pyserial URL: /dev/ttyUSB0, rfc2217://host:port, socket://host:port
    baudrate: int = 115200


@dataclass(frozen=True)
class PowerConfig:
    kind: str  # "modbus-tcp" | "modbus-rtu"
    host: str = ""
    port: int = 502
    serial: str = ""  # modbus-rtu: the RS-485 adapter
    baudrate: int = 9600
    unit: int = 1
    coil: int = 0
    invert: bool = False  # the board is powered while the coil is OFF (a normally-closed contact)
    off_s: float = 2.0  # how long a cycle keeps the board off (capacitors drain)


@dataclass(frozen=True)
class ModemConfig:
    name: str
    url: str
    number: str  # callers: the SIM's number (what the board sees as caller id); centres: the number dialled
    baudrate: int = 115200


@dataclass(frozen=True)
class RigConfig:
    path: Path
    name: str
    kind: str
    features: frozenset[str]
    board: BoardConfig
    broker: str  # "private": the rig starts its own Mosquitto; else mqtt://host:port
    broker_user: str | None = None
    broker_password: str | None = None
    controller_id: str = "hil-controller"
    console: SerialConfig | None = None
    power: PowerConfig | None = None
    callers: tuple[ModemConfig, ...] = ()
    centres: tuple[ModemConfig, ...] = ()
    emulated: dict = field(default_factory=dict)  # emulated rigs: heap, flash_blocks


class _Section:
    """Typed reads from one table of the file; every error says file, section and key."""

    def __init__(self, path: Path, name: str, data, known: set[str]):
        self.path, self.name = path, name
        if not isinstance(data, dict):
            self.fail(None, "must be a table")
        self.data = data
        unknown = sorted(set(data) - known)
        if unknown:
            self.fail(unknown[0], "unknown key (known: %s)" % ", ".join(sorted(known)))

    def fail(self, key, reason: str):
        where = f"[{self.name}]" if self.name else "top level"
        raise RigConfigError(f"{self.path}: {where}{' ' + key if key else ''}: {reason}")

    def get(self, key: str, kind: type, default=..., check=None, why: str = ""):
        if key not in self.data:
            if default is ...:
                self.fail(key, "missing")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.fail(key, f"must be {kind.__name__}, not {type(value).__name__}")
        if check is not None and not check(value):
            self.fail(key, why or "out of range")
        return value


def load(path: str | Path) -> RigConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise RigConfigError(f"{path}: no such rig file") from None
    except tomllib.TOMLDecodeError as e:
        raise RigConfigError(f"{path}: not TOML: {e}") from None
    top = _Section(path, "", data, {"name", "kind", "features", "board", "broker", "controller", "console",
                                    "power", "callers", "centres", "emulated"})
    kind = top.get("kind", str, check=KINDS.__contains__, why="must be one of " + ", ".join(KINDS))
    features = top.get("features", list, default=sorted(KINDS[kind]))
    bad = [f for f in features if f not in FEATURES]
    if bad:
        top.fail("features", f"unknown feature {bad[0]!r} (known: {', '.join(sorted(FEATURES))})")
    if not set(features) <= KINDS[kind]:
        top.fail("features", f"a {kind} rig cannot have {sorted(set(features) - KINDS[kind])[0]}")
    b = _Section(path, "board", data.get("board", None), {"id", "key", "profile", "boot_timeout_s", "numbers"})
    board = BoardConfig(
        id=b.get("id", str, check=bool, why="must not be empty"),
        key=b.get("key", str, check=_is_key, why="must be 64 hex digits"),
        profile=b.get("profile", str, check=_known_profile, why="unknown board profile (known: %s)" % _profiles()),
        boot_timeout_s=b.get("boot_timeout_s", float, 60.0, check=lambda v: 0 < v <= 3600),
        numbers=b.get("numbers", dict, {}))
    br = _Section(path, "broker", data.get("broker", {"url": "private"}), {"url", "user", "password"})
    ct = _Section(path, "controller", data.get("controller", {}), {"client_id"})
    cfg = dict(path=path, name=top.get("name", str, default=path.stem), kind=kind, features=frozenset(features),
               board=board, broker=br.get("url", str, check=_is_broker, why="must be 'private' or mqtt://host:port"),
               broker_user=br.get("user", str, None), broker_password=br.get("password", str, None),
               controller_id=ct.get("client_id", str, "hil-controller"))
    if kind == "emulated":
        em = _Section(path, "emulated", data.get("emulated", {}), {"heap", "flash_blocks"})
        cfg["emulated"] = {"heap": em.get("heap", str, None),
                           "flash_blocks": em.get("flash_blocks", int, 256, check=lambda v: 32 <= v <= 65536)}
        return RigConfig(**cfg)
    from hil_tests.rig import bench_config  # the bench's parts: console, power relay, modems

    if kind == "box":  # the emulator makes the console and the relay; the modems get their ptys there
        return RigConfig(**cfg, **bench_config.parse_box(path, data, _Section))
    return RigConfig(**cfg, **bench_config.parse(path, data, _Section))


def _is_key(v: str) -> bool:
    return len(v) == 64 and all(c in "0123456789abcdefABCDEF" for c in v)


def _is_broker(v: str) -> bool:
    return v == "private" or v.startswith(("mqtt://", "mqtts://"))


def _profiles() -> str:
    from firmware.gw import profiles

    return ", ".join(sorted(profiles.PROFILES))


def _known_profile(v: str) -> bool:
    from firmware.gw import profiles

    return v in profiles.PROFILES
