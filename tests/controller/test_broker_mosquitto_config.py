"""`citygate broker config` for a real Mosquitto that runs as its own, unprivileged user (issue 8).

- the broker reads the files as that user, at start and again on SIGHUP;
- a gateway signing in as itself under another gateway's client id takes nothing over: the other
  stays connected and its last will ("offline") is not published (a control run on the same config
  without `use_username_as_clientid` shows the takeover the test would catch);
- `citygate rollout start` and `citygate serve` never share a client id;
- the files are never readable by others, and bad --owner / --out are refused saying what to fix.
"""

from __future__ import annotations

import json
import os
import pwd
import queue
import signal
import stat
import time

import pytest

from controller.api.routes.gateways import GatewayIn, register
from controller.brokers import free_port
from controller.service import ControllerService
from controller.settings import Settings
from protocols import topics as T
from tests.controller.broker_config_rig import (
    BROKER_USER,
    CTL_PW,
    CTL_USER,
    SECRET,
    A,
    B,
    broker_config,
    configured_mosquitto,
    reachable_dir,
    registered_db,
    user_exists,
)
from tests.controller.mqtt_probe import Client

OFFLINE = b'{"online": false}'


@pytest.fixture
def db(tmp_path, monkeypatch):
    yield from registered_db(tmp_path, monkeypatch)


def _until(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(condition())


def _collect(client: Client, stop, timeout: float = 10.0, window: float = 0.5) -> list:
    """What `client` receives until `stop(seen)` holds (or the deadline), then for `window` s more."""
    seen, deadline = [], time.monotonic() + timeout
    while not stop(seen) and time.monotonic() < deadline:
        try:
            seen.append(client.got.get(timeout=0.1))
        except queue.Empty:
            pass
    end = time.monotonic() + window
    while time.monotonic() < end:
        try:
            seen.append(client.got.get(timeout=0.05))
        except queue.Empty:
            pass
    return seen


def _uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Uid:")).split()[1])


def test_mosquitto_as_its_own_user_reads_the_files_and_reads_them_again_on_hup(db):
    database, pw = db
    with configured_mosquitto() as m:
        assert _uid_of(m.proc.pid) == pwd.getpwnam(BROKER_USER).pw_uid, "it dropped root"
        a = Client(m.url, A, A, pw[A])
        assert a.connect(), m.log()
        a.close()
        with database.session() as s:  # a gateway registered later: written again, then SIGHUP
            body = GatewayIn(id="gw-c-1", city="Mariupol", services={"gsm1": "102"}, out_ports=["gsm2"])
            c = register(s, body, SECRET, actor="broker-test")
        assert not Client(m.url, "gw-c-1", "gw-c-1", c.password).connect(), "unknown to the broker so far"
        result = broker_config(m.citygate_out, "--port", str(m.port), "--bind", "127.0.0.1", "--owner", BROKER_USER)
        assert result.exit_code == 0, result.output
        m.proc.send_signal(signal.SIGHUP)

        def admitted() -> bool:
            probe = Client(m.url, "gw-c-1", "gw-c-1", c.password)
            if probe.connect():
                probe.close()
                return True
            return False

        assert _until(admitted, 15), m.log()
        assert m.running and "Error" not in m.log(), m.log()


def _takeover(url: str, pw: dict[str, str]):
    """gw-a-1 signs in with its own credentials but gw-b-1's client id while gw-b-1 is connected.

    Returns (gw-b-1's client, what the controller saw, whether the intruder got in)."""
    ctl = Client(url, CTL_USER, CTL_USER, CTL_PW)
    b = Client(url, B, B, pw[B], will=(T.state(B), OFFLINE), clean=False)
    assert ctl.connect() and b.connect()
    intruder = Client(url, B, A, pw[A], clean=True)  # a clean start ends the session it takes: the will goes out
    try:
        ctl.sub(T.ROOT + "/#")
        b.pub(T.state(B), b'{"online": true}', retain=True)
        ctl_saw_b = _collect(ctl, lambda seen: (T.state(B), b'{"online": true}') in seen, window=0)
        assert (T.state(B), b'{"online": true}') in ctl_saw_b
        got_in = intruder.connect()
        if got_in:
            intruder.c.publish(T.events(B), b"forged-by-a", qos=1)  # as gw-a-1: the ACL refuses it
            intruder.c.publish(T.events(A), b"a-own", qos=1)
        b.c.publish(T.events(B), b"b-marker", qos=1)  # the sync point: gw-b-1 is still there
        wanted = {(T.events(A), b"a-own")} if got_in else set()

        def settled(seen) -> bool:
            return wanted <= set(seen) and ((T.events(B), b"b-marker") in seen or (T.state(B), OFFLINE) in seen)

        return b, _collect(ctl, settled), got_in
    finally:
        for client in (intruder, ctl):
            client.close()


def test_a_gateway_cannot_take_over_another_gateways_client_id(db):
    database, pw = db
    with configured_mosquitto() as m:
        b, seen, got_in = _takeover(m.url, pw)
        try:
            assert got_in, "gw-a-1's own credentials are good; its client id is simply its username"
            assert (T.events(B), b"b-marker") in seen, f"gw-b-1 was cut off: {seen}\n{m.log()}"
            assert not b.cut, b.cut
            assert (T.state(B), OFFLINE) not in seen, "gw-b-1's last will was published"
            assert (T.events(A), b"a-own") in seen and (T.events(B), b"forged-by-a") not in seen, seen
            assert f"as {A} (" in m.log() and "already connected" not in m.log(), m.log()
        finally:
            b.close()


def test_control_without_username_as_clientid_the_takeover_happens(db):
    """The same scenario on the same files minus that one line: what the test above must never see."""
    database, pw = db
    with configured_mosquitto(strip="use_username_as_clientid") as m:
        b, seen, got_in = _takeover(m.url, pw)
        try:
            assert got_in and _until(lambda: bool(b.cut)), "gw-b-1 was thrown off"
            assert (T.state(B), OFFLINE) in seen and (T.events(B), b"b-marker") not in seen, seen
            assert (T.events(B), b"forged-by-a") not in seen, "the ACL still went by the username"
        finally:
            b.close()


def test_rollout_start_and_serve_each_keep_their_own_client_id(db):
    from typer.testing import CliRunner

    from controller.cli import app

    database, pw = db
    with configured_mosquitto() as m:
        service = ControllerService(Settings(database_url=database.url, broker=m.url, secret_key=SECRET,
                                             broker_password=CTL_PW, listen_port=free_port())).start()
        try:
            assert service.bridge.connected.is_set(), m.log()
            result = CliRunner().invoke(app, ["rollout", "start", "--gateway", A, "--broker", m.url],
                                        env={"COLUMNS": "250"})
            assert result.exit_code == 0, result.output + m.log()
            log = m.log()
            assert f"as {CTL_USER}.cli (" in log, log
            assert log.count(f"as {CTL_USER} (") == 1 and "already connected" not in log, log
            assert service.bridge.connected.is_set()
        finally:
            service.stop()


def _modes(path) -> tuple[int, str, str]:
    st = path.stat()
    return stat.S_IMODE(st.st_mode), pwd.getpwuid(st.st_uid).pw_name, _group(st.st_gid)


def _group(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


def test_default_owner_is_mosquittos_user_and_nothing_is_world_readable(db):
    with reachable_dir() as base:
        out = base / "etc" / "citygate"
        result = broker_config(out)
        if not user_exists("mosquitto"):
            assert result.exit_code == 2 and "--owner" in result.output and "no user 'mosquitto'" in result.output
            assert not out.exists()
            return
        assert result.exit_code == 0, result.output
        group = _group(pwd.getpwnam("mosquitto").pw_gid)
        for name in ("password_file", "acl_file", "citygate.conf"):
            assert _modes(out / name) == (0o640, "mosquitto", group), name
        assert _modes(out) == (0o750, "root", group), "the directory stays root's: the broker cannot swap files"
        assert sorted(p.name for p in out.iterdir()) == ["acl_file", "citygate.conf", "password_file"]


def test_owner_user_and_group(db):
    with reachable_dir() as base:
        result = broker_config(base / "out", "--owner", "nobody:root")
        assert result.exit_code == 0, result.output
        assert _modes(base / "out" / "password_file") == (0o640, "nobody", "root")


@pytest.mark.parametrize("owner, says", [("no-such-user-x", "no user 'no-such-user-x'"),
                                         ("nobody:no-such-group-x", "no group 'no-such-group-x'")])
def test_unknown_owner_is_refused(db, owner, says):
    with reachable_dir() as base:
        result = broker_config(base / "out", "--owner", owner)
        assert result.exit_code == 2 and says in result.output and "--owner" in result.output, result.output
        assert not (base / "out").exists()


def test_a_directory_the_broker_cannot_reach_is_refused(db, tmp_path):
    """pytest's tmp_path is under /tmp/pytest-of-root (mode 0700): Mosquitto as BROKER_USER cannot get in."""
    out = tmp_path / "out"
    result = broker_config(out, "--owner", BROKER_USER)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"Mosquitto running as {BROKER_USER} cannot get into" in text and "chmod o+x" in text, text
    assert not out.exists(), "refused before anything was made"


def test_out_that_is_a_file_is_refused(db, tmp_path):
    (tmp_path / "file").write_text("x")
    result = broker_config(tmp_path / "file", "--owner", "root")
    assert result.exit_code == 2 and "not a directory" in result.output, result.output


def test_a_symlink_in_out_is_replaced_not_followed(db):
    with reachable_dir() as base:
        out, victim = base / "out", base / "victim"
        out.mkdir()
        victim.write_text("keep me")
        (out / "password_file").symlink_to(victim)
        result = broker_config(out, "--owner", BROKER_USER)
        assert result.exit_code == 0, result.output
        assert victim.read_text() == "keep me" and not (out / "password_file").is_symlink()
        assert (out / "password_file").read_text().startswith(CTL_USER + ":$7$")


def test_giving_the_files_away_needs_root(db, tmp_path):
    """Run as `nobody` (a forked child dropping root): --owner mosquitto is refused before anything is written."""
    target = "mosquitto" if user_exists("mosquitto") else "root"
    out = tmp_path / "out"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to nobody, run the command, report, exit without pytest's cleanup
        code = 70
        try:
            os.close(read)
            nobody = pwd.getpwnam("nobody")
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            result = broker_config(out, "--owner", target)
            os.write(write, json.dumps([result.exit_code, result.output]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    chunks, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the child did not finish in 60 s")
    with os.fdopen(read, "rb") as f:
        chunks.append(f.read())
    assert os.waitstatus_to_exitcode(status) == 0, "the child failed"
    exit_code, output = json.loads(b"".join(chunks))
    text = " ".join(output.split())
    assert exit_code == 2 and "needs root (chown)" in text and "--owner nobody" in text, text
    assert not out.exists()
