"""The emulated board's serial console on a pty, driven by the real clients (pyserial, mpremote, `citygate
console`), and its power through the Modbus relay (a pymodbus client): reached as a real board is."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from pymodbus.client import ModbusTcpClient

from controller.brokers import Mosquitto
from emulator.board import EmulatedRig
from hil_tests.peer import ControllerPeer

pytestmark = [pytest.mark.slow, pytest.mark.micropython]

KEY = "5a" * 32
PROFILE = "esp32-wrover-4gsm"  # 320K heap: the roomiest board
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def world():
    with Mosquitto() as mq, ControllerPeer(mq.url, client_id="console-tests") as peer:
        yield mq, peer


@pytest.fixture
def make_rig(world):
    rigs = []

    def make(gw: str, **kw) -> EmulatedRig:
        rig = EmulatedRig(gw, KEY, world[0].url, profile=PROFILE, **kw)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


def read_until(port: serial.Serial, token: bytes, timeout: float = 30) -> bytes:
    """Bytes from the port up to and including `token`, or TimeoutError with what came."""
    got, deadline = b"", time.monotonic() + timeout
    while token not in got:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {token!r} within {timeout}s; got {got[-600:]!r}")
        got += port.read(port.in_waiting or 1)
    return got


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
    return value


def open_console(rig: EmulatedRig) -> serial.Serial:
    return serial.Serial(rig.console_path, 115200, timeout=0.2, exclusive=True)


def test_pyserial_sees_the_boot_log_then_ctrl_c_gives_the_friendly_repl(make_rig):
    rig = make_rig("gw-con-1")
    with open_console(rig) as port:  # plugged in before power, as a USB-UART adapter is
        rig.power_on()
        assert b"fw ready" in read_until(port, b"fw ready", 60)
        port.write(b"\x03")
        out = read_until(port, b">>> ")
        assert b"KeyboardInterrupt" in out and b'Type "help()" for more information.\r\n>>> ' in out
        port.write(b"print(1+1)\r")
        assert read_until(port, b">>> ").endswith(b"print(1+1)\r\n2\r\n>>> ")
        port.write(b"\x05")  # paste mode
        read_until(port, b"=== ")
        port.write(b"for i in range(2):\r    print('pasted', i)\r\x04")
        assert b"pasted 0\r\npasted 1\r\n>>> " in read_until(port, b"pasted 1\r\n>>> ")
    assert rig.running and rig.died is None, "stopped by the console, the board sits at its REPL: no crash"
    assert "2" in rig.console().splitlines(), "the console log keeps what the REPL printed"


def test_lines_typed_ahead_in_one_write_all_run(make_rig):
    """The unix REPL switches terminal modes with TCSAFLUSH after each line; a board's UART keeps typed-ahead
    bytes, so the console hands the REPL one command at a time and none is flushed away."""
    rig = make_rig("gw-con-10")
    rig.power_on()
    rig.wait_console("fw ready", 60)
    with open_console(rig) as port:
        port.write(b"\x03")
        read_until(port, b">>> ")
        port.write(b"print('one')\rprint('two')\r\x01print('raw')\x04\x02print('three')\r")  # the REPL is idle
        out = read_until(port, b"three\r\n>>> ")
    assert b"one\r\n>>> " in out and b"two\r\n>>> " in out and b"OKraw\r\n\x04\x04>" in out


def test_nobody_attached_output_is_logged_not_queued_and_ports_reopen(make_rig):
    rig = make_rig("gw-con-2")
    rig.power_on()
    rig.wait_console("fw ready", 60)  # nobody has the port open: the boot goes on, logged
    for _ in range(3):  # attach and detach over and over
        with open_console(rig) as port:
            port.write(b"\x03")
            read_until(port, b">>> ")
    with open_console(rig) as port:
        port.write(b"import time\r")
        read_until(port, b">>> ")
        # a compound statement runs after an empty line
        port.write(b"for i in range(30): print('away', i); time.sleep(0.02)\r\r")
    rig.wait_console(r"^away 29$", 30)  # printed while nobody was attached
    with open_console(rig) as port:
        port.write(b"print('back')\r")
        out = read_until(port, b"back\r\n>>> ")
    assert b"away" not in out, "what the board printed while nobody listened must not be queued for the next one"


def test_mpremote_resume_exec_and_plain_exec_on_the_console(make_rig):
    rig = make_rig("gw-con-3")
    rig.power_on()
    rig.wait_console("fw ready", 60)
    mpremote = [str(BIN / "mpremote"), "connect", rig.console_path]
    run = subprocess.run([*mpremote, "resume", "exec", "import sys; print(sys.platform)"],
                         capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout) == (0, "linux\n"), run.stderr
    assert rig.boots == 1, "resume: the running board is interrupted, not reset"
    # without resume mpremote soft-resets in the raw REPL: the board comes back in the raw REPL, main.py skipped
    run = subprocess.run([*mpremote, "exec", "print(6*7)"], capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout) == (0, "42\n"), run.stderr
    assert rig.boots == 2 and "MPY: soft reboot" in rig.console()
    assert "gateway gw-con-3 up" not in rig.console().split("MPY: soft reboot")[-1], "main.py must not run"
    mark = rig.console_mark()
    with open_console(rig) as port:  # Ctrl-D in the friendly REPL: a soft reset that runs main.py again
        port.write(b"\r\x04")
        read_until(port, b"fw ready", 60)
    rig.wait_console("MPY: soft reboot", 10, after=mark)
    assert rig.boots == 3 and rig.running and rig.died is None


def test_the_firmware_reset_command_still_reboots_the_board(make_rig, world):
    """The REPL after main.py (-i) would swallow the firmware's reset exit: the rig acts on its HW reset line."""
    _, peer = world
    rig = make_rig("gw-con-4")
    rig.power_on()
    assert peer.wait_state("gw-con-4", lambda s: s.get("online") and s.get("boot") == 1, timeout=60)
    assert peer.command("gw-con-4", "reboot")["ok"]
    state = peer.wait_state("gw-con-4", lambda s: s.get("online") and s.get("boot") == 2, timeout=60)
    assert state["boot"] == 2 and rig.boots == 2 and rig.died is None
    assert "firmware asked for a reset" in rig.console()


def test_a_crashing_main_py_leaves_the_board_at_its_repl_and_is_reported(make_rig):
    rig = make_rig("gw-con-5")
    rig._board.write_text("{}")  # board.json without a profile: main.py raises at once
    with open_console(rig) as port:
        rig.power_on()
        out = read_until(port, b">>> ", 30)
        assert b"KeyError" in out
        wait_for(lambda: rig.died is not None, 10, "the crash to be noticed")
        assert rig.died == 1 and rig.running, "like a board: the traceback, then the REPL"
        port.write(b"print('still here')\r")
        read_until(port, b"still here\r\n>>> ")


def test_power_through_the_modbus_relay(make_rig, world):
    _, peer = world
    rig = make_rig("gw-con-6", relay=True)
    assert rig.relay_url == f"modbus-tcp://127.0.0.1:{rig.relay.port}"
    rig.power_on()
    peer.wait_state("gw-con-6", lambda s: s.get("online") and s.get("boot") == 1, timeout=60)
    client = ModbusTcpClient("127.0.0.1", port=rig.relay.port, timeout=5)
    assert client.connect()
    try:
        with open_console(rig) as port:
            assert not client.write_coil(0, False, device_id=1).isError()
            wait_for(lambda: not rig.running, 20, "the relay to cut the power")
            assert rig.proc is None and rig.died is None, "a power cut, not a crash"
            port.reset_input_buffer()
            assert not client.write_coil(0, True, device_id=1).isError()
            read_until(port, b"fw ready", 60)  # the boot log comes again on the same port
        assert client.read_coils(0, count=1, device_id=1).bits[0] is True
        state = peer.wait_state("gw-con-6", lambda s: s.get("online") and s.get("boot") == 2, timeout=60)
        assert state["boot"] == 2 and rig.boots == 2
    finally:
        client.close()


def _citygate_console(args: list[str]):
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(BIN / "citygate"), "console", *args], stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True)
    os.close(slave)
    return proc, master


def _read_pty_until(fd: int, token: bytes, timeout: float = 30) -> bytes:
    import select

    got, deadline = b"", time.monotonic() + timeout
    while token not in got:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {token!r} within {timeout}s; got {got[-600:]!r}")
        if select.select([fd], [], [], min(left, 0.5))[0]:
            got += os.read(fd, 4096)
    return got


def test_citygate_console_passes_keys_through_logs_and_leaves_on_ctrl_bracket(make_rig, tmp_path):
    rig = make_rig("gw-con-7")
    rig.power_on()
    rig.wait_console("fw ready", 60)
    log = tmp_path / "console.log"
    proc, term = _citygate_console(["--port", rig.console_path, "--log", str(log)])
    try:
        _read_pty_until(term, b"Ctrl-] leaves")  # the terminal is raw from here
        os.write(term, b"\x03")  # raw keys: Ctrl-C reaches the board and interrupts the firmware
        _read_pty_until(term, b">>> ")
        os.write(term, b"print(6*7)\r")
        _read_pty_until(term, b"42\r\n>>> ")
        os.write(term, b"\x1d")  # Ctrl-]
        assert b"--- left" in _read_pty_until(term, b"--- left")
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(term)
    logged = log.read_bytes()
    assert b"print(6*7)\r\n42\r\n>>> " in logged and b"KeyboardInterrupt" in logged
    assert not rig.serial.attached(), "the console let go of the port"


def test_citygate_console_says_why_a_port_cannot_be_used(make_rig, tmp_path):
    run = subprocess.run([str(BIN / "citygate"), "console", "--port", str(tmp_path / "ttyUSB9")],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 2 and "no such port" in run.stdout + run.stderr
    rig = make_rig("gw-con-8")
    with open_console(rig):  # mpremote or another console has it
        run = subprocess.run([str(BIN / "citygate"), "console", "--port", rig.console_path],
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 2 and "port busy" in run.stdout + run.stderr


def test_board_emulate_prints_its_console_and_relay_and_the_relay_powers_it(world, tmp_path):
    import signal

    mq, peer = world
    proc = subprocess.Popen([str(BIN / "citygate"), "board", "emulate", "--gateway", "gw-con-9", "--key", KEY,
                             "--broker", mq.url, "--profile", PROFILE, "--relay", "--workdir", str(tmp_path / "b")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ, COLUMNS="200"),
                            start_new_session=True)
    try:
        head = []
        while not any(line.startswith(b"power relay:") for line in head):
            line = proc.stdout.readline()
            assert line, b"".join(head)
            head.append(line)
        path = next(line.split()[1].decode() for line in head if line.startswith(b"console: /dev/pts/"))
        relay = next(line.decode().split()[2] for line in head if line.startswith(b"power relay:"))
        assert head[-1].decode().strip() == f"power relay: {relay} coil 0"
        host, port = relay.removeprefix("modbus-tcp://").split(":")
        peer.wait_state("gw-con-9", lambda s: s.get("online") and s.get("boot") == 1, timeout=60)
        client = ModbusTcpClient(host, port=int(port), timeout=5)
        assert client.connect()
        try:
            with serial.Serial(path, 115200, timeout=0.2) as con:
                assert not client.write_coil(0, False, device_id=1).isError()
                assert not client.write_coil(0, True, device_id=1).isError()
                read_until(con, b"fw ready", 60)
                peer.wait_state("gw-con-9", lambda s: s.get("online") and s.get("boot") == 2, timeout=60)
                con.write(b"\x03")
                read_until(con, b">>> ")
        finally:
            client.close()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
