"""What the controller sends gateways through its MQTT bridge: signed tables and commands (DESIGN §3).

A mixin of controller.bridge.Bridge, which owns the paho client, the pending commands and the
recent publish handles; kept apart from the ingest pipeline there.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt
from sqlalchemy import select

from controller import commands
from controller.models import Gateway, TableVersion
from protocols import messages, routing, topics


class BridgeActions:
    def publish_table(self, gw: Gateway, tv: TableVersion) -> mqtt.MQTTMessageInfo:
        return self.publish_sealed(gw.id, gw.key_hex, tv.body)

    def publish_sealed(self, gateway_id: str, key_hex: str, body: bytes | str) -> mqtt.MQTTMessageInfo:
        """Sign a table body and publish it, retained; the returned handle tells when the broker took it."""
        payload = routing.seal(body.encode() if isinstance(body, str) else body, key_hex)
        info = self.client.publish(topics.table(gateway_id), payload, qos=1, retain=True)
        self.published.append(info)
        del self.published[:-10000]  # keep the recent handles only
        return info

    def publish_desired(self, gateway_id: str) -> None:
        """Publish the version the gateway should run (the last one a rollout published)."""
        with self.db.session() as s:
            gw = s.get(Gateway, gateway_id)
            if gw is None or gw.desired_version is None:
                return
            tv = s.scalars(select(TableVersion).where(TableVersion.gateway_id == gateway_id,
                                                      TableVersion.version == gw.desired_version)).first()
            if tv is not None:
                self.publish_table(gw, tv)

    def publish_latest(self, gateway_id: str) -> None:
        """Make the latest compiled version the desired one and publish it (no staging)."""
        with self.db.session() as s:
            gw = s.get(Gateway, gateway_id)
            tv = s.scalars(select(TableVersion).where(TableVersion.gateway_id == gateway_id)
                           .order_by(TableVersion.version.desc()).limit(1)).first()
            if gw is not None and tv is not None:
                gw.desired_version = tv.version
                self.publish_table(gw, tv)

    def command(self, gateway_id: str, op: str, args: dict | None = None, timeout: float = 20) -> dict:
        """Send a command and wait for that gateway's answer.

        MessageError (a bad op or args) before anything is sent; commands.CommandsBusy when too many
        wait already; TimeoutError when no answer comes.
        """
        args = commands.check(op, args)
        cid = self.commands.open(gateway_id)
        try:
            payload = messages.encode("cmd", messages.cmd(cid, op, args))
            self.client.publish(topics.cmd(gateway_id), payload, qos=1)
        except BaseException:
            self.commands.cancel(gateway_id, cid)
            raise
        return self.commands.wait(gateway_id, cid, timeout, op)
