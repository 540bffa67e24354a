"""The broker killed and restarted while citizens call: the board routes calls at the edge meanwhile, and
every record arrives once (embedded amqtt stopped and started in the controller's process; Mosquitto
killed -9 and started again from its persistence file, with two controller processes sharing ingest)."""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import SETUPS, Calls, finish

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("kind", SETUPS)
def test_broker_killed_and_restarted_during_traffic(deployment, kind):
    setup = deployment(kind)
    started = time.monotonic()
    calls = Calls(setup.rig)
    calls.make(3)
    ringing = calls.place(1)  # a call under way when the broker goes
    setup.restart_broker()
    ringing[0].wait(30)
    calls.make(3)
    setup.restart_broker()  # twice: the second time with records waiting for their ack
    calls.make(3)
    finish("broker_restart", setup, started)
    links = setup.rig.console().count("link: connected to")
    assert links >= 3, f"the board connected {links} times: once, then after each restart"
