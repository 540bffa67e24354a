"""Board profiles: which ports a board has, how they are wired, its heap.

`heap` is what the unix port is given with `-X heapsize=` to emulate the
board: the unix port is 64-bit, so objects are about twice their ESP32 size
(an ESP32 with ~110 KB free is emulated with 220K).
"""

PROFILES = {
    "esp32-2gsm": {
        "heap": "220K",
        "ports": {
            "gsm1": {"kind": "gsm", "uart": 1, "tx": 17, "rx": 16, "power": 4},
            "gsm2": {"kind": "gsm", "uart": 2, "tx": 26, "rx": 27, "power": 14},
        },
        "bridge_pins": {"gsm1:gsm2": 33},
        "wdt_ms": 30000,
    },
    # Four modules need more UARTs than an ESP32 has: two of them hang on an SC16IS752
    # SPI dual UART, and the WROVER module's PSRAM gives the heap room for four lines.
    "esp32-wrover-4gsm": {
        "heap": "320K",
        "ports": {
            "gsm1": {"kind": "gsm", "uart": 1, "tx": 17, "rx": 16, "power": 4},
            "gsm2": {"kind": "gsm", "uart": 2, "tx": 26, "rx": 27, "power": 14},
            "gsm3": {"kind": "gsm", "uart": 3, "tx": 18, "rx": 19, "power": 15},
            "gsm4": {"kind": "gsm", "uart": 4, "tx": 21, "rx": 22, "power": 13},
        },
        "bridge_pins": {"gsm1:gsm3": 32, "gsm1:gsm4": 33, "gsm2:gsm3": 25, "gsm2:gsm4": 23},
        "wdt_ms": 30000,
    },
    "esp32-gsm-fxo": {
        "heap": "220K",
        "ports": {
            "gsm1": {"kind": "gsm", "uart": 1, "tx": 17, "rx": 16, "power": 4},
            "fxo1": {"kind": "fxo", "ring": 34, "hook": 25, "dtmf": 2},
        },
        "bridge_pins": {"gsm1:fxo1": 33},
        "wdt_ms": 30000,
    },
}


def get(name):
    p = PROFILES.get(name)
    if p is None:
        raise ValueError("unknown board profile %r; known: %s" % (name, ", ".join(sorted(PROFILES))))
    return p
