"""A paho MQTT client for broker tests: its CONNACK, SUBACKs, what it received, whether it was cut off."""

from __future__ import annotations

import queue
import time

import paho.mqtt.client as mqtt


class Client:
    """A paho client that reports its CONNACK, what it received and whether it was cut off."""

    def __init__(self, url: str, client_id: str, user: str | None, password: str | None,
                 will: tuple[str, bytes] | None = None, clean: bool = True):
        self.host, self.port = url.removeprefix("mqtt://").split(":")
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        if user is not None:
            self.c.username_pw_set(user, password)
        if will:
            self.c.will_set(will[0], will[1], qos=1, retain=False)
        self.c.reconnect_delay_set(30, 60)  # a refused client must not come back during a test
        self.connack, self.got, self.subacks, self.cut = queue.Queue(), queue.Queue(), queue.Queue(), []
        self.c.on_connect = lambda cl, ud, flags, reason, props: self.connack.put(reason)
        self.c.on_subscribe = lambda cl, ud, mid, reasons, props: self.subacks.put(reasons)
        self.c.on_message = lambda cl, ud, m: self.got.put((m.topic, bytes(m.payload)))
        self.c.on_disconnect = lambda *a: self.cut.append(a)

    def connect(self) -> bool:
        self.c.connect(self.host, int(self.port), keepalive=30)
        self.c.loop_start()
        ok = not self.connack.get(timeout=10).is_failure
        if not ok:
            self.close()
        return ok

    def sub(self, *filters: str) -> None:
        """Subscribe and wait for each SUBACK (granted or refused)."""
        for f in filters:
            self.c.subscribe(f, qos=1)
            self.subacks.get(timeout=10)

    def pub(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def until(self, wanted: set, timeout: float = 10) -> list:
        """Messages received until every (topic, payload) in `wanted` arrived, then 0.5 s more."""
        seen, deadline = [], time.monotonic() + timeout
        while not wanted <= set(seen) and time.monotonic() < deadline:
            try:
                seen.append(self.got.get(timeout=0.1))
            except queue.Empty:
                pass
        time.sleep(0.5)
        while not self.got.empty():
            seen.append(self.got.get())
        assert wanted <= set(seen), f"missing {wanted - set(seen)}; got {seen}"
        return seen

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()
