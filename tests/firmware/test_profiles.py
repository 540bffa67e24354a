"""Board profiles describe wiring a real ESP32 can have: no GPIO serves two purposes in one profile."""

import pytest

from firmware.gw import profiles


def _pins(spec: dict) -> list[int]:
    pins = [v for port in spec["ports"].values() for k, v in port.items() if k not in ("kind", "uart")]
    return pins + list(spec.get("bridge_pins", {}).values())


@pytest.mark.parametrize("name", sorted(profiles.PROFILES))
def test_no_gpio_is_wired_twice(name):
    pins = _pins(profiles.PROFILES[name])
    twice = sorted({p for p in pins if pins.count(p) > 1})
    assert not twice, f"{name}: GPIO {twice} wired to more than one thing"


@pytest.mark.parametrize("name", sorted(profiles.PROFILES))
def test_outputs_are_not_on_input_only_gpios(name):
    spec = profiles.PROFILES[name]
    outputs = [port[k] for port in spec["ports"].values() for k in ("tx", "power", "hook") if k in port]
    outputs += list(spec.get("bridge_pins", {}).values())
    assert not [p for p in outputs if 34 <= p <= 39], f"{name}: GPIO 34-39 are input-only on an ESP32"
