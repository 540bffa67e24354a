"""The HIL pytest plugin (entry point `citygate_hil`): one scenario suite for any rig, chosen by `--rig FILE`.

Fixtures (module scope: each test module gets its board freshly opened and powered on):
  rig         the opened rig (hil_tests.rig.base.Rig): power, console, network, flash, broker, features
  board       the gateway on it (id, key, profile, ports), powered on and online with every port ready
  controller  a ControllerPeer (hil_tests.peer) on the rig's broker, the board's retained topics cleared
  rig_prepare override it to set the rig up before the board is powered (clock, destinations)
Marker: `@pytest.mark.needs("power_cut_injection", ...)` skips with "rig X lacks feature Y".
"""

from __future__ import annotations

import re

import pytest

from hil_tests.rig import config as rigfile
from hil_tests.rig import make_rig

RIG_KEY = pytest.StashKey[rigfile.RigConfig]()


def pytest_addoption(parser):
    group = parser.getgroup("citygate-hil", "citygate hardware-in-the-loop rigs")
    group.addoption("--rig", metavar="FILE", default=None,
                    help=f"rig file (TOML) the HIL scenarios run on; default {rigfile.DEFAULT}")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs(*features): the rig must have these features, else the test "
                                        "is skipped naming the missing one")
    if config.getoption("--rig"):  # a rig named on the command line is checked before anything runs
        load_rig_config(config)


def load_rig_config(pytestconfig) -> rigfile.RigConfig:
    """The rig file, read once per session (a bad file fails the run with its bad key named)."""
    cfg = pytestconfig.stash.get(RIG_KEY, None)
    if cfg is None:
        try:
            cfg = rigfile.load(pytestconfig.getoption("--rig") or rigfile.DEFAULT)
        except rigfile.RigConfigError as e:
            raise pytest.UsageError(str(e)) from None
        pytestconfig.stash[RIG_KEY] = cfg
    return cfg


@pytest.hookimpl(tryfirst=True)  # before any fixture of the test is set up (a board need not boot)
def pytest_runtest_setup(item):
    marks = list(item.iter_markers("needs"))
    if not marks:
        return
    cfg = load_rig_config(item.config)
    for mark in marks:
        for feature in mark.args:
            if feature not in cfg.features:
                pytest.skip(f"rig {cfg.name} lacks feature {feature}")


@pytest.fixture(scope="session", name="rig_config")
def rig_config_fixture(pytestconfig) -> rigfile.RigConfig:
    return load_rig_config(pytestconfig)


@pytest.fixture(scope="module")
def rig_prepare():
    """What to do to an opened rig before its board is powered; conftests override it."""
    return lambda rig: None


@pytest.fixture(scope="module")
def rig(rig_config, rig_prepare, tmp_path_factory, request):
    log_dir = tmp_path_factory.mktemp("rig-" + re.sub(r"\W+", "-", request.module.__name__.split(".")[-1]))
    with make_rig(rig_config, log_dir) as opened:
        rig_prepare(opened)
        try:
            yield opened
        finally:
            print(f"--- console of {opened.board.id} (last lines; full log {opened.console.log_path}) ---")
            print("\n".join(opened.console.lines()[-60:]))


@pytest.fixture(scope="module")
def controller(rig, rig_config):
    from hil_tests.peer import ControllerPeer

    with ControllerPeer(rig.broker.url, client_id=rig_config.controller_id, username=rig_config.broker_user,
                        password=rig_config.broker_password) as peer:
        peer.clear_retained(rig.board.id)  # a table or ack left by an earlier run must not reach the board
        yield peer


@pytest.fixture(scope="module")
def board(rig, controller, rig_config):
    """The gateway, freshly booted (a power cycle: a bench's relay may have been left on) and online with
    every port ready."""
    rig.power.cycle()
    try:
        controller.wait_state(rig.board.id, lambda s: s.get("online") and all(p["ready"] for p in s["ports"].values()),
                              timeout=rig_config.board.boot_timeout_s)
    except TimeoutError as e:
        rig.console.flush_log()
        tail = "\n".join(rig.console.lines()[-30:])
        raise TimeoutError(f"{e}; console log {rig.console.log_path}, last lines:\n{tail}") from None
    yield rig.board
    rig.power.off()
