"""The parts of a real bench in its rig file: the board's serial console, the power relay, caller and centre modems."""

from __future__ import annotations

from hil_tests.rig.config import ModemConfig, PowerConfig, SerialConfig

POWER_KINDS = ("modbus-tcp", "modbus-rtu")


def parse(path, data: dict, section) -> dict:
    """`section` is config._Section (typed reads whose errors name file, table and key)."""
    con = section(path, "console", data.get("console"), {"url", "baudrate"})
    console = SerialConfig(url=con.get("url", str, check=bool, why="must not be empty"),
                           baudrate=con.get("baudrate", int, 115200, check=lambda v: 300 <= v <= 4_000_000))
    pw = section(path, "power", data.get("power"), {"kind", "host", "port", "serial", "baudrate", "unit", "coil",
                                                    "invert", "off_s"})
    kind = pw.get("kind", str, check=POWER_KINDS.__contains__, why="must be one of " + ", ".join(POWER_KINDS))
    power = PowerConfig(
        kind=kind,
        host=pw.get("host", str, check=bool, why="must not be empty") if kind == "modbus-tcp" else "",
        port=pw.get("port", int, 502, check=lambda v: 0 < v < 65536),
        serial=pw.get("serial", str, check=bool, why="must not be empty") if kind == "modbus-rtu" else "",
        baudrate=pw.get("baudrate", int, 9600, check=lambda v: 300 <= v <= 4_000_000),
        unit=pw.get("unit", int, 1, check=lambda v: 0 <= v <= 247),
        coil=pw.get("coil", int, 0, check=lambda v: 0 <= v <= 65535),
        invert=pw.get("invert", bool, False),
        off_s=pw.get("off_s", float, 2.0, check=lambda v: 0 <= v <= 600))
    return {"console": console, "power": power, "callers": _modems(path, data, "callers", section),
            "centres": _modems(path, data, "centres", section)}


def parse_box(path, data: dict, section) -> dict:
    """bench-in-a-box: no [console] or [power] (the emulated board's pty and relay); modems need no url."""
    for absent in ("console", "power"):
        if absent in data:
            section(path, "", {}, set()).fail(absent, "a box rig's console and power are the emulated board's")
    return {"callers": _modems(path, data, "callers", section, url=False),
            "centres": _modems(path, data, "centres", section, url=False)}


def _modems(path, data: dict, name: str, section, url: bool = True) -> tuple[ModemConfig, ...]:
    items = data.get(name, [])
    if not isinstance(items, list):
        section(path, name, None, set())  # raises: must be a table (an array of tables: [[callers]])
    out = []
    for i, item in enumerate(items):
        m = section(path, f"{name}[{i}]", item, {"name", "url", "number", "baudrate"} if url else {"name", "number"})
        out.append(ModemConfig(name=m.get("name", str, f"{name[:-1]}-{i + 1}"),
                               url=m.get("url", str, check=bool, why="must not be empty") if url else "",
                               number=m.get("number", str, check=_is_number, why="must be +digits or digits"),
                               baudrate=m.get("baudrate", int, 115200, check=lambda v: 300 <= v <= 4_000_000)))
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        section(path, name, {}, set()).fail("name", "two modems share a name")
    return tuple(out)


def _is_number(v: str) -> bool:
    digits = v[1:] if v.startswith("+") else v
    return 2 <= len(digits) <= 20 and digits.isdigit()
