"""An emulated gateway board: the real firmware on the MicroPython unix port.

The board's modems are ptys served by the emulated GSM network, its flash is
a file-backed LittleFS image that counts writes and erases and can lose power
at any block operation, and its power is this object's to cut, or a Modbus
relay's (`relay=True`). Its serial console is a pty (`console_path`) with the
MicroPython REPL behind it, as a USB-UART board's (`emulator.console`).

`blank=True`: a board with MicroPython and its flash only, no citygate firmware and no config, as a new
ESP32: it boots to the REPL (emulator/board_boot.py) and waits for `citygate flash`; what is flashed
stays in the workdir's flash.img across resets and runs from there (its .mpy files load into the heap,
which is the profile's plus the size of the build's code, as for the ROMFS image).

`watchdog_ms=N`: the board's hardware watchdog, emulated (emulator/watchdog.py): a board that stops
feeding it for N ms is reset, and its next boot reports "watchdog_reset". `hang()` stops the firmware
where it is, as a hung loop would. `line_timings={"fxo1": {"ping_ms": 500}}` shortens a line driver's
timings; `HW port_reset <port>` from the firmware power-cycles that module.
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

from emulator import firmware, micropython
from emulator.console import BoardLine, SerialConsole
from emulator.network import GsmNetwork
from emulator.relay import ModbusRelay
from emulator.watchdog import Watchdog
from firmware.gw import profiles

FIRMWARE = micropython.REPO / "firmware"
REBOOT_EXIT = 3
BOOT = micropython.REPO / "emulator" / "board_boot.py"
NO_MAIN = "boot: no main.py on the flash"  # a blank board sits at its REPL: expected, not a crash
REPL_BANNER = 'Type "help()" for more information.'  # the unix port's REPL has started
RAW_REPL = "raw REPL; CTRL-B to exit"


class EmulatedRig:
    """`with EmulatedRig("gw-a-1", key, "mqtt://127.0.0.1:1883") as rig: rig.network.call(...)`."""

    def __init__(self, gateway: str, key: str | bytes, broker: str, profile: str = "esp32-2gsm",
                 workdir: str | Path | None = None, flash_blocks: int = 256, heap: str | None = None,
                 password: str | None = None, user: str | None = None, relay: bool = False,
                 romfs: str | Path | bool | None = None, blank: bool = False, broker_ca: str | None = None,
                 outbox_records: int | None = None, watchdog_ms: int | None = None,
                 line_timings: dict[str, dict[str, int]] | None = None):
        self.gateway = gateway
        self.key = key.hex() if isinstance(key, bytes) else key
        self.broker = broker
        self.profile = profile
        self.spec = profiles.get(profile)
        # romfs: the `citygate firmware build --profile emulated` image the board runs its code from, in place,
        # as a board with a ROMFS partition does (None: the current sources' build, emulator.firmware; False:
        # compile the sources on the board). The unix port holds the image in its heap, so the heap is the
        # profile's plus the image's bytes: what is left for data is what the profile emulates.
        self.blank = blank
        if romfs is None and not firmware.from_source() and not blank:
            romfs = firmware.image()
        self.romfs = Path(romfs).resolve() if romfs else None
        self.heap = heap or self.spec["heap"]
        code = firmware.image() if blank else self.romfs
        if code is not None and heap is None:
            self.heap = f"{_kib(self.spec['heap']) + -(-code.stat().st_size // 1024)}K"
        self._own_workdir = workdir is None
        # absolute: the firmware runs inside the workdir, and board.json's paths must hold there too
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"citygate-{gateway}-")).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.flash_blocks = flash_blocks
        self.user = user
        self.password = password
        self.broker_ca = broker_ca  # PEM of the CA an mqtts:// broker's certificate must chain to
        self.outbox_records = outbox_records  # the store's max_records (default 2000): a test overflows a small one
        self.watchdog = Watchdog(self.workdir, watchdog_ms) if watchdog_ms else None  # emulator/watchdog.py
        self.line_timings = line_timings or {}
        self.network = GsmNetwork()
        self.proc: subprocess.Popen | None = None
        self._console: list[str] = []
        self._console_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self.boots = 0
        self.died: int | None = None  # the exit code of a firmware that stopped by itself
        self.power_cuts = 0
        self._auto_reboot = True
        self._board = self._write_board()
        self._power_lock = threading.RLock()
        self._line: BoardLine | None = None
        self.serial = SerialConsole(self._console_input, self._console_pump)
        self.console_path = self.serial.path  # what a user, mpremote or pyserial opens
        # coil 0 is the board's power; the relay starts closed (on), the rig boots on power_on() / `with`
        self.relay = ModbusRelay(self._relay_switched, initial=True).start() if relay else None

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
            if name in self.line_timings:
                ports[name]["timings"] = dict(self.line_timings[name])
        provision = {"id": self.gateway, "key": self.key, "broker": self.broker, "profile": self.profile,
                     "user": self.user or self.gateway, "password": self.password}
        if self.broker_ca:
            provision["broker_ca"] = self.broker_ca
        board = {
            "profile": self.profile,
            "flash": {"image": str(self.workdir / "flash.img"), "blocks": self.flash_blocks, "block_size": 4096,
                      "ctl": str(self.workdir / "flash.ctl"), "stats": str(self.workdir / "flash.stats")},
            "ports": ports,
        }
        if self.watchdog is not None:
            board["wdt"] = self.watchdog.board_entry()
        if self.outbox_records:
            board["store"] = {"max_records": self.outbox_records}
        if self.blank:
            board["flash"]["mounted"] = "/flash"  # by board_boot.py; config and code come from what is flashed
        else:
            board["provision"] = provision
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
        if self.relay is not None:
            self.relay.stop()
        self.power_off()
        self.serial.close()
        self.network.close()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------ power

    @property
    def relay_url(self) -> str | None:
        """modbus-tcp://127.0.0.1:PORT of the power relay (coil 0), None without one."""
        return self.relay.url if self.relay is not None else None

    def _relay_switched(self, coil: int, on: bool) -> None:
        if coil == 0:
            self.power_on() if on else self.power_off()

    def power_on(self, repl_only: bool = False) -> None:
        """Boot: main.py runs the firmware (`-i`: the REPL follows when it ends or is interrupted, as on
        a board); `repl_only` is a soft reset in the raw REPL, where a board skips main.py."""
        with self._power_lock:
            if self.proc is not None and self.proc.poll() is None:
                return
            # from a ROMFS image nothing may come from the source tree: MicroPython's own path only
            path = ".frozen" if self.romfs is not None or self.blank else micropython.search_path(FIRMWARE)
            env = dict(os.environ, MICROPYPATH=path)
            if self.blank:  # the port's boot mounts the flash, then main.py from it unless repl_only
                cmd = [micropython.binary(), "-i", "-X", f"heapsize={self.heap}", str(BOOT), str(self._board),
                       str(FIRMWARE), *(["repl"] if repl_only else [])]
            elif repl_only:
                cmd = [micropython.binary(), "-X", f"heapsize={self.heap}"]
            else:
                cmd = micropython.command(FIRMWARE / "main.py", str(self._board),
                                          *([str(self.romfs)] if self.romfs is not None else []), heap=self.heap)
                cmd.insert(1, "-i")
            self.died = None
            if self.watchdog is not None:
                self.watchdog.arm()
            line = BoardLine()
            try:
                self.proc = subprocess.Popen(cmd, stdin=line.slave, stdout=line.slave, stderr=line.slave, env=env,
                                             cwd=self.workdir, start_new_session=True)
            except BaseException:
                os.close(line.slave)
                line.close()
                raise
            line.started(self.proc.pid)
            if repl_only:
                line.interrupted = True  # its REPL is expected, not a crash
                line.write(b"\x01")  # kept until the REPL reads: back to the raw REPL
            self._line = line
            self.boots += 1
            self._log(f"=== rig: power on (boot {self.boots}) ===")
            self._reader = threading.Thread(target=self._read_console, args=(self.proc, line), daemon=True)
            self._reader.start()
            if self.watchdog is not None:
                self.watchdog.start(self, self.proc)

    def hang(self) -> None:
        """The firmware stops dead where it is (SIGSTOP), as a hung loop: nothing feeds the watchdog."""
        with self._power_lock:
            if self.proc is not None and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGSTOP)
                self._log("=== rig: firmware hung (test) ===")

    def power_off(self) -> None:
        """Sudden loss of power: the process is killed, nothing is flushed, and the modems,
        which the board powers, drop their calls and restart."""
        with self._power_lock:
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

    def _console_input(self, data: bytes) -> None:
        line = self._line
        if line is not None:
            line.write(data)

    def _console_pump(self) -> bool:
        line = self._line
        return line.pump() if line is not None else False

    def _kill(self, proc: subprocess.Popen, modems_too: bool = True) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if modems_too:  # a power loss; a reset leaves the modems, which have their own supply rail, alone
            self._modems_lose_power()

    def _read_console(self, proc: subprocess.Popen, line: BoardLine) -> None:
        restart = None  # why the board starts again by itself
        for text in line.lines(self.serial.show):
            if text.startswith("POWER-CUT"):
                # the board is dead before anyone reads the line: a test that waits for it and
                # powers on again must find the old process gone, not still being killed
                self.power_cuts += 1
                self._kill(proc)
                self._log(text)
                break
            self._log(text)
            if text.startswith("HW port_reset "):  # the firmware pulses a module's reset line
                self.network.power_cycle(text.split()[2])
            elif text.startswith("HW bridge "):
                a, b = text.split()[2:4]
                self.network.bridge(a, b)  # the audio switch, as the network sees it
            elif text == "HW reset":  # the firmware's reset; under -i its sys.exit(3) would reach the REPL
                self._kill(proc, modems_too=False)
                restart = "firmware asked for a reset"
                break
            elif text == NO_MAIN:
                line.interrupted = True
            elif RAW_REPL in text:
                line.repl = "raw"
            elif text == REPL_BANNER:
                line.repl = "friendly"
                if not line.interrupted and self.proc is proc:
                    self.died = 1  # main.py ended by itself (a crash): the board sits at its REPL
        code = proc.wait()
        line.close()
        if code == 0:  # Ctrl-D at the REPL: the unix port exits, a board soft-resets
            restart = "soft reset"
            self.serial.show(b"MPY: soft reboot\n")
            self._log("MPY: soft reboot")
        elif code == REBOOT_EXIT:
            restart = "firmware asked for a reset"
        elif self.proc is proc and code != -signal.SIGKILL:
            self.died = code  # the firmware stopped by itself (a crash), not by the rig's power
        if self.watchdog is not None and self.watchdog.reset_this(proc):
            restart = "watchdog reset"
        with self._power_lock:
            if restart and self._auto_reboot and self.proc is proc:
                self._log(f"=== rig: {restart} ===")
                self.proc = None
                self.power_on(repl_only=restart == "soft reset" and line.repl == "raw")

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


def _kib(heap: str) -> int:
    """A -X heapsize value ("220K", "1M", "225280") in KiB."""
    units = {"K": 1, "M": 1024}
    return int(heap[:-1]) * units[heap[-1].upper()] if heap[-1].upper() in units else int(heap) // 1024
