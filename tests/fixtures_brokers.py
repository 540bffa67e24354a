"""Pytest fixtures with real MQTT brokers on free loopback ports (no mocks).

- `mosquitto`: a private Mosquitto process (function scope).
- `amqtt_broker`: the embedded amqtt broker in its own thread and loop (function scope).
- `broker`: each test runs once per broker, ids "mosquitto" and "amqtt".

All share `.host`, `.port`, `.url`, `.stop()`, `.start()` (see hil_tests/brokers.py).
"""

from __future__ import annotations

import pytest

from controller.brokers import AmqttBroker, Mosquitto


@pytest.fixture
def mosquitto():
    with Mosquitto() as b:
        yield b


@pytest.fixture
def amqtt_broker():
    with AmqttBroker() as b:
        yield b


@pytest.fixture(params=["mosquitto", "amqtt"])
def broker(request):
    cls = Mosquitto if request.param == "mosquitto" else AmqttBroker
    with cls() as b:
        yield b
