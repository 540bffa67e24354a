"""The alert webhook's delivery on a loopback HTTP server: retried with backoff up to its bound, given up at
once when the receiver refuses the event (4xx), never more than the bound, in the order the events came."""

from __future__ import annotations

import time

from controller.alert_webhooks import WebhookSender
from tests.controller.webhook_server import WebhookServer


def event(n: int) -> dict:
    return {"event": "opened", "alert": {"id": n, "gateway": "gw-a", "code": "gateway_offline", "detail": "x",
                                         "created_at": 1, "resolved_at": None}}


def settle(sender: WebhookSender, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not sender.idle():
        assert time.monotonic() < deadline, "the sender never finished"
        time.sleep(0.02)


def test_retried_until_the_receiver_takes_it_in_order():
    with WebhookServer(fail_first=3) as hook:
        sender = WebhookSender(hook.url, tries=5, backoff_s=0.02)
        try:
            for n in (1, 2):
                sender.send(event(n))
            settle(sender)
        finally:
            sender.stop()
    assert [e["alert"]["id"] for e in hook.events()] == [1, 2]
    assert hook.attempts == 5 and sender.delivered == 2 and sender.failed == 0


def test_given_up_after_the_bounded_tries():
    with WebhookServer(fail_first=100) as hook:
        sender = WebhookSender(hook.url, tries=3, backoff_s=0.02)
        try:
            sender.send(event(1))
            settle(sender)
        finally:
            sender.stop()
    assert hook.attempts == 3 and sender.failed == 1 and not hook.events()


def test_a_refusing_receiver_is_asked_once_and_a_dead_one_is_bounded_too():
    with WebhookServer(fail_first=100, fail_status=400) as hook:
        sender = WebhookSender(hook.url, tries=5, backoff_s=0.02)
        try:
            sender.send(event(1))
            settle(sender)
        finally:
            sender.stop()
    assert hook.attempts == 1 and sender.failed == 1
    dead = WebhookSender(hook.url, tries=2, backoff_s=0.02, timeout_s=2)  # the server is closed now: refused
    try:
        dead.send(event(2))
        settle(dead)
    finally:
        dead.stop()
    assert dead.failed == 1 and dead.delivered == 0
