"""Who may use the controller's broker and for what: the credentials and ACL of DESIGN §3.

Two kinds of accounts: each registered gateway (username = client id = gateway id, its MQTT
password checked against the SHA-256 the database keeps) and the controller itself, which reads
and writes everything. The embedded broker asks `authenticate` once per CONNECT (one primary-key
lookup) and `acl` on every topic use (a pure function, no database). For an external Mosquitto,
`mosquitto_files` writes the same rules as a password_file and an acl_file.
"""

from __future__ import annotations

import hashlib
import hmac

from controller.brokers import mosquitto_password_line
from controller.db import Database
from protocols import checks, topics

CONTROLLER_USER = "citygate-controller"
CONTROLLER_TOPICS = topics.ROOT + "/#"


class BrokerAccess:
    def __init__(self, db: Database, controller_user: str, controller_password: str):
        if not controller_password:
            raise ValueError("the controller's broker account needs a password")
        self.db = db
        self.controller_user = controller_user
        self._controller_password = controller_password.encode()

    def authenticate(self, client_id: str, username: str | None, password: str | None) -> bool:
        """The controller's account, or a registered gateway connecting as itself with its password."""
        given = password.encode() if isinstance(password, str) else bytes(password or b"")
        if username == self.controller_user:
            return hmac.compare_digest(given, self._controller_password)
        if not username or client_id != username or not checks.is_gateway_id(username) or not given:
            return False
        stored = self._password_sha256(username)
        return bool(stored) and hmac.compare_digest(hashlib.sha256(given).hexdigest(), stored)

    def acl(self, username: str, topic: str, write: bool) -> bool:
        """§3: the controller everything; a gateway its own topics, each in its direction."""
        return username == self.controller_user or topics.allowed(username, topic, write)

    def _password_sha256(self, gateway_id: str) -> str | None:
        from sqlalchemy import select

        from controller.models import Gateway

        with self.db.session() as s:
            return s.scalar(select(Gateway.password_sha256).where(Gateway.id == gateway_id))


def mosquitto_files(controller_user: str, controller_password: str, gateways: dict[str, str]) -> tuple[str, str]:
    """The texts of a Mosquitto password_file and acl_file: the controller, and every {gateway id: password}."""
    passwords = [mosquitto_password_line(controller_user, controller_password)]
    acl = [f"user {controller_user}", f"topic readwrite {CONTROLLER_TOPICS}"]
    for gw, password in sorted(gateways.items()):
        passwords.append(mosquitto_password_line(gw, password))
        acl += ["", *topics.acl_lines(gw)]
    return "\n".join(passwords) + "\n", "\n".join(acl) + "\n"
