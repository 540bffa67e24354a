"""Who may use the controller's broker and for what: the credentials and ACL of DESIGN §3.

Two kinds of accounts: each registered gateway (username = client id = gateway id, its MQTT
password checked against the SHA-256 the database keeps) and the controller, which reads and
writes everything. The controller has one account per process that may be connected at the same
time (`citygate serve` as CITYGATE_BROKER_USER, `citygate rollout start` as that name + ".cli"),
all with the same password: Mosquitto replaces every client id with the username
(`use_username_as_clientid`, so no gateway can take another's id), and two processes signed in
under one name would throw each other off and share one persistent session. The "." keeps
these names out of the gateway ids' alphabet. The embedded broker asks `authenticate` once per CONNECT (one primary-key
lookup) and `acl` on every topic use (a pure function, no database). For an external Mosquitto,
`mosquitto_files` writes the same rules as a password_file and an acl_file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from controller.brokers.mosquitto import mosquitto_password_line
from controller.db import Database
from controller.settings import DEFAULT_BROKER_USER
from protocols import checks, topics

CONTROLLER_USER = DEFAULT_BROKER_USER
CONTROLLER_TOPICS = topics.ROOT + "/#"
CONTROLLER_ROLES = ("cli",)  # besides `citygate serve` itself
WATCH_ROLE = "watch"  # read-only: `mosquitto_sub` for people watching the traffic; publishes nothing


def watch_user(controller_user: str) -> str:
    return f"{controller_user}.{WATCH_ROLE}"


def watch_password(secret_key: str) -> str:
    """The watch account's password, derived from the controller's secret (the same on every start)."""
    mac = hmac.new(secret_key.encode(), b"citygate mqtt watch account", hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def role_user(controller_user: str, role: str) -> str:
    """The broker account a controller process other than `citygate serve` signs in with."""
    return f"{controller_user}.{role}"


def controller_accounts(controller_user: str, instances: tuple[str, ...] = ()) -> list[str]:
    """`citygate serve`'s account first, then one per other controller role, then one per named
    `citygate serve --instance NAME` process (`<user>.NAME`): several processes on one Mosquitto
    listener need a user name each, or they throw each other off (client id = username)."""
    return [controller_user] + [role_user(controller_user, r) for r in (*CONTROLLER_ROLES, *instances)]


class BrokerAccess:
    def __init__(self, db: Database, controller_user: str, controller_password: str,
                 watch_password: str | None = None):
        if not controller_password:
            raise ValueError("the controller's broker account needs a password")
        self.db = db
        self.controller_user = controller_user
        self._controller_accounts = frozenset(controller_accounts(controller_user))
        self._controller_password = controller_password.encode()
        self.watch_user = watch_user(controller_user) if watch_password else None
        self._watch_password = (watch_password or "").encode()

    def authenticate(self, client_id: str, username: str | None, password: str | None) -> bool:
        """The controller's account, the watch account, or a registered gateway connecting as itself."""
        given = password.encode() if isinstance(password, str) else bytes(password or b"")
        if username in self._controller_accounts:
            return hmac.compare_digest(given, self._controller_password)
        if username is not None and username == self.watch_user:
            return hmac.compare_digest(given, self._watch_password)
        if not username or client_id != username or not checks.is_gateway_id(username) or not given:
            return False
        stored = self._password_sha256(username)
        return bool(stored) and hmac.compare_digest(hashlib.sha256(given).hexdigest(), stored)

    def acl(self, username: str, topic: str, write: bool) -> bool:
        """§3: the controller everything; the watch account reads everything; a gateway its own topics."""
        if username is not None and username == self.watch_user:
            return not write and topic.startswith(topics.ROOT + "/")
        return username in self._controller_accounts or topics.allowed(username, topic, write)

    def _password_sha256(self, gateway_id: str) -> str | None:
        from sqlalchemy import select

        from controller.models import Gateway

        with self.db.session() as s:
            return s.scalar(select(Gateway.password_sha256).where(Gateway.id == gateway_id))


def mosquitto_files(controller_user: str, controller_password: str, gateways: dict[str, str],
                    watch: str | None = None, instances: tuple[str, ...] = ()) -> tuple[str, str]:
    """The texts of a Mosquitto password_file and acl_file: the controller's accounts (one more per
    name in `instances`), the read-only watch account (when its password `watch` is given), and every
    {gateway id: password}."""
    passwords, acl = [], []
    for user in controller_accounts(controller_user, instances):
        passwords.append(mosquitto_password_line(user, controller_password))
        acl += [f"user {user}", f"topic readwrite {CONTROLLER_TOPICS}", ""]
    if watch:
        passwords.append(mosquitto_password_line(watch_user(controller_user), watch))
        acl += [f"user {watch_user(controller_user)}", f"topic read {CONTROLLER_TOPICS}", ""]
    for gw, password in sorted(gateways.items()):
        passwords.append(mosquitto_password_line(gw, password))
        acl += [*topics.acl_lines(gw), ""]
    return "\n".join(passwords) + "\n", "\n".join(acl)
