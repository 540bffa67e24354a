"""An emulated gateway board: the real firmware on the MicroPython unix port.

The board's modems are ptys served by the emulated GSM network, its flash is
a file-backed LittleFS image that counts writes and erases and can lose power
at any block operation, and its power is this object's to cut.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from firmware.gw import profiles
from hil_tests.rig import micropython
from hil_tests.rig.gsmnet import GsmNetwork

FIRMWARE = micropython.REPO / "firmware"
REBOOT_EXIT = 3


class EmulatedRig:
    """`with EmulatedRig("gw-a-1", key, "mqtt://127.0.0.1:1883") as rig: rig.network.call(...)`."""

    def __init__(self, gateway: str, key: str | bytes, broker: str, profile: str = "esp32-2gsm",
                 workdir: str | Path | None = None, flash_blocks: int = 256, heap: str | None = None,
                 password: str | None = None, user: str | None = None):
        self.gateway = gateway
        self.key = key.hex() if isinstance(key, bytes) else key
        self.broker = broker
        self.profile = profile
        self.spec = profiles.get(profile)
        self.heap = heap or self.spec["heap"]
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"citygate-{gateway}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.flash_blocks = flash_blocks
        self.user = user
        self.password = password
        self.network = GsmNetwork()
        self.proc: subprocess.Popen | None = None
        self._console: list[str] = []
        self._console_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self.boots = 0
        self.power_cuts = 0
        self._auto_reboot = True
        self._board = self._write_board()

    # ------------------------------------------------------------ setup

    def _write_board(self) -> Path:
        ports = {}
        for name, p in self.spec["ports"].items():
            if p["kind"] == "gsm":
                ports[name] = {"kind": "gsm", "dev": self.network.add_modem(name)}
            elif p["kind"] == "fxo":
                ports[name] = {"kind": "fxo", "dev": self.network.add_fxo(name)}
            else:
                raise NotImplementedError(f"profile {self.profile}: port {name} is {p['kind']}, "
                                          "the emulated rig has GSM modems and FXO lines only")
        provision = {"id": self.gateway, "key": self.key, "broker": self.broker, "profile": self.profile,
                     "user": self.user or self.gateway, "password": self.password}
        board = {
            "profile": self.profile,
            "flash": {"image": str(self.workdir / "flash.img"), "blocks": self.flash_blocks, "block_size": 4096,
                      "ctl": str(self.workdir / "flash.ctl"), "stats": str(self.workdir / "flash.stats")},
            "ports": ports,
            "provision": provision,
        }
        path = self.workdir / "board.json"
        path.write_text(json.dumps(board, indent=1))
        return path

    def __enter__(self) -> EmulatedRig:
        self.power_on()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._auto_reboot = False
        self.power_off()
        self.network.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------ power

    def power_on(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        env = dict(os.environ, MICROPYPATH=micropython.search_path(FIRMWARE))
        cmd = micropython.command(FIRMWARE / "main.py", str(self._board), heap=self.heap)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.workdir, start_new_session=True)
        self.boots += 1
        self._log(f"=== rig: power on (boot {self.boots}) ===")
        self._reader = threading.Thread(target=self._read_console, args=(self.proc,), daemon=True)
        self._reader.start()

    def power_off(self) -> None:
        """Sudden loss of power: the process is killed, nothing is flushed, and the modems,
        which the board powers, drop their calls and restart."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self._modems_lose_power()
        self._log("=== rig: power off ===")

    def _modems_lose_power(self) -> None:
        for port, p in self.spec["ports"].items():
            if p["kind"] in ("gsm", "fxo"):
                self.network.power_cycle(port)

    def power_cycle(self) -> None:
        self.power_off()
        self.power_on()

    def power_cut_after(self, n: int) -> None:
        """The flash loses power at its n-th block write or erase from now."""
        tmp = self.workdir / "flash.ctl.tmp"
        tmp.write_text(f"cut_after {n}\n")
        tmp.replace(self.workdir / "flash.ctl")  # a new inode: the board notices at its next block op

    def flash_stats(self) -> dict:
        path = self.workdir / "flash.stats"
        if not path.exists():
            return {"writes": 0, "erases": 0}
        text = path.read_text().strip()
        try:
            data = json.loads(text)
            return {"writes": int(data["writes"]), "erases": int(data["erases"])}
        except (ValueError, KeyError, TypeError):
            writes, erases = text.split()[:2]
            return {"writes": int(writes), "erases": int(erases)}

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # ------------------------------------------------------------ console

    def _read_console(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if line.startswith("POWER-CUT"):
                # the board is dead before anyone reads the line: a test that waits for it and
                # powers on again must find the old process gone, not still being killed
                self.power_cuts += 1
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                self._modems_lose_power()
            self._log(line)
            if line.startswith("HW bridge "):
                a, b = line.split()[2:4]
                self.network.bridge(a, b)  # the audio switch, as the network sees it
        code = proc.wait()
        if code == REBOOT_EXIT and self._auto_reboot and self.proc is proc:
            self._log("=== rig: firmware asked for a reset ===")
            self.proc = None
            self.power_on()

    def _log(self, line: str) -> None:
        with self._console_lock:
            self._console.append(line)

    def console(self) -> str:
        with self._console_lock:
            return "\n".join(self._console)

    def wait_console(self, pattern: str, timeout: float = 20, after: int = 0) -> re.Match:
        """Wait for a console line matching `pattern` (regex), searching from line `after`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._console_lock:
                lines = self._console[after:]
            for line in lines:
                m = rx.search(line)
                if m:
                    return m
            time.sleep(0.05)
        raise TimeoutError(f"no console line matching {pattern!r} within {timeout}s; last lines:\n"
                           + "\n".join(self.console().splitlines()[-30:]))

    def console_mark(self) -> int:
        with self._console_lock:
            return len(self._console)
