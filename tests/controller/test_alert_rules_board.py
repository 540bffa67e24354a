"""Alert rules on an emulated board (the real firmware on MicroPython, a real Mosquitto, the controller
service as `citygate serve` runs it, its leader evaluating the rules every second): centres that never
answer make the route and the centre fail; a port losing the network, and the board powered off, open
their alerts, which resolve when the port and the board come back; the webhook hears each of them."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from controller import reference
from controller.alert_rules import subject_of
from controller.models import Alert, Centre
from tests.conditions import until
from tests.controller.board_world import GW, board, controller, gateway, roll_out, seed
from tests.controller.webhook_server import WebhookServer

pytestmark = pytest.mark.slow
NUMBER = {code: c["number"] for code, c in reference.CENTRES.items()}


def alerts(service, code: str, open_only: bool = True) -> list[tuple]:
    with service.db.session() as s:
        q = select(Alert).where(Alert.code == code)
        if open_only:
            q = q.where(Alert.resolved_at.is_(None))
        return [(a.id, a.gateway_id, subject_of(a), a.resolved_at) for a in s.scalars(q.order_by(Alert.id))]


def heard(hook, kind: str, code: str) -> list[dict]:
    return [e["alert"] for e in hook.events() if e["event"] == kind and e["alert"]["code"] == code]


@pytest.fixture
def world(tmp_path):
    with WebhookServer(fail_first=1) as hook, \
            controller(tmp_path, alert_every_s=1, alert_offline_min=0.05, alert_answer_min_calls=2,
                       alert_webhook_url=hook.url, alert_webhook_backoff_s=0.1) as service:
        with service.db.session() as s:
            key = seed(s, out_ports=["gsm2", "gsm4"])
            for centre in s.scalars(select(Centre)):
                centre.ring_timeout_s = 2  # unanswered calls end soon
        with board(service, key, tmp_path) as rig:
            rig.network.set_time(time.time())  # the board's clock agrees with the controller's
            for number in NUMBER.values():
                rig.network.destination(number, no_answer=True)  # nobody at any centre
            rig.power_on()
            roll_out(service)
            yield service, rig, hook


def test_unanswered_centres_a_lost_port_and_a_powered_off_board(world):
    service, rig, hook = world
    for i in range(2):
        rig.network.call("gsm1", f"+38067100000{i}").wait(90)
    failing = until(lambda: {sub for _, _, sub, _ in alerts(service, "procedure_failing")} >= {"route police-102"}
                    and alerts(service, "procedure_failing"), 60, "the failing route alerted")
    subjects = {sub for _, _, sub, _ in failing}
    assert any(sub.startswith("centre mariupol-") for sub in subjects), subjects
    until(lambda: heard(hook, "opened", "procedure_failing"), 30, "the webhook told of it")

    rig.network.set_registered("gsm3", 3)  # registration denied
    until(lambda: alerts(service, "port_unregistered"), 120, "the unregistered port alerted")
    assert [(gw, sub) for _, gw, sub, _ in alerts(service, "port_unregistered")] == [(GW, "gsm3")]
    rig.network.set_registered("gsm3", 1)
    until(lambda: not alerts(service, "port_unregistered"), 120, "the port alert resolved")

    assert not alerts(service, "gateway_offline"), "online and sending states: not offline"
    rig.power_off()
    until(lambda: not gateway(service).online, 60, "the last will stored")
    [(alert_id, gw, _, _)] = until(lambda: alerts(service, "gateway_offline"), 30, "the offline alert")
    assert gw == GW
    until(lambda: heard(hook, "opened", "gateway_offline"), 30, "the webhook told it opened")
    rig.power_on()
    until(lambda: gateway(service).online, 90, "the board back online")
    until(lambda: not alerts(service, "gateway_offline"), 30, "the offline alert resolved")
    assert [a[0] for a in alerts(service, "gateway_offline", open_only=False)] == [alert_id], "one alert, no twin"
    [resolved] = until(lambda: heard(hook, "resolved", "gateway_offline"), 30, "the webhook told it resolved")
    assert resolved["id"] == alert_id and resolved["gateway"] == GW
