"""The fleet's gateways: registration (key and MQTT password handed out once, audited), their configuration
(city, profile, ports, port -> service), key rotation and the device config a board is flashed with.

A gateway's MQTT password is derived from its key and the controller's secret key (HMAC), so the
database keeps only the password's SHA-256; every hand-out of secrets is a `secret_audit` row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from controller.compiler import latest_table
from controller.models import City, Gateway, GatewayService, SecretAudit, Service
from controller.services.errors import Conflict, FieldError, NotFound
from controller.services.gateway_state import live_ports, state_dict, state_int, state_text
from controller.services.tables import compile_checked
from controller.settings import DEFAULT_BROKER_USER
from protocols import checks

MAX_PORTS = 64


class Secrets(NamedTuple):
    """What a registration or a rotation hands out once: the gateway and its new key and MQTT password."""
    gateway: Gateway
    key: str
    password: str


def mqtt_password(secret: str, gw: Gateway) -> str:
    mac = hmac.new(secret.encode(), f"citygate mqtt password\0{gw.id}\0{gw.key_hex}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def describe(gw: Gateway) -> dict:
    """The gateway as the API and CLI show it: its configuration, versions and last reported state."""
    latest = latest_table(object_session(gw), gw.id)
    state = state_dict(gw.state)
    live = live_ports(state)
    inbound = {link.port: link.service.number for link in gw.services}
    known = [p for p in (*(gw.ports or []), *(gw.out_ports or [])) if type(p) is str]
    ports = [{**live.get(p, {}), "name": p, "service": inbound.get(p), "out": p in (gw.out_ports or [])}
             for p in sorted(set(known) | set(inbound) | set(live))]
    return dict(
        id=gw.id, city=gw.city.name, city_id=gw.city_id, profile=gw.profile, online=bool(gw.online),
        last_seen=gw.last_seen, compiled_version=latest.version if latest else None,
        desired_version=gw.desired_version, applied_version=gw.applied_version,
        in_sync=gw.desired_version is not None and gw.desired_version == gw.applied_version,
        last_reject=gw.last_reject, ports=ports, signal={p["name"]: p.get("csq") for p in ports if "csq" in p},
        heap_free=state_int(state.get("heap_free")), heap_min_free=state_int(state.get("heap_min_free")),
        outbox=state_int(state.get("outbox")), fw=state_text(state.get("fw")),
        uptime_s=state_int(state.get("uptime_s")))


def audit(s: Session, gateway_id: str, actor: str, action: str) -> None:
    """Write down that `actor` was handed `gateway_id`'s secrets (register | rotate-key | bundle)."""
    s.add(SecretAudit(actor=actor[:80], gateway_id=gateway_id, action=action))


def load(s: Session, gateway_id: str) -> Gateway:
    gw = s.get(Gateway, gateway_id)
    if gw is None:
        raise NotFound("gateway_id", f"no gateway {gateway_id!r}")
    return gw


def new_secrets(secret_key: str, gw: Gateway) -> str:
    """A new random table key for the gateway; returns its MQTT password (only its hash is stored)."""
    gw.key_hex = secrets.token_bytes(32).hex()
    return store_password(secret_key, gw)


def store_password(secret_key: str, gw: Gateway) -> str:
    """Store the hash of the gateway's MQTT password (derived from its key) and return the password.

    For gateways whose key was set without one (the reference seed, imports): the broker admits
    only a gateway whose password matches the stored hash.
    """
    password = mqtt_password(secret_key, gw)
    gw.password_sha256 = hashlib.sha256(password.encode()).hexdigest()
    return password


def password_matches(secret_key: str, gw: Gateway) -> bool:
    """Is the password derivable now (from this secret key) the one the gateway was given?"""
    derived = hashlib.sha256(mqtt_password(secret_key, gw).encode()).hexdigest()
    return bool(gw.password_sha256) and hmac.compare_digest(derived, gw.password_sha256)


def _link_services(s: Session, gw: Gateway, services: dict[str, str]) -> None:
    """Make the gateway's port -> service links these, updating rows in place (ports are unique)."""
    wanted = {}
    for port, number in sorted(services.items()):
        wanted[port] = s.scalars(select(Service).where(Service.number == number)).first()
        if wanted[port] is None:
            raise FieldError(f"gateways.services.{port}", f"names no service: {number!r}")
    current = {link.port: link for link in gw.services}
    for port, link in current.items():
        if port not in wanted:
            gw.services.remove(link)
    for port, svc in wanted.items():
        if port in current:
            current[port].service_id, current[port].service = svc.id, svc
        else:
            gw.services.append(GatewayService(port=port, service_id=svc.id, service=svc))


def _check_ports(values: dict) -> None:
    """Port names as protocols.checks has them, and no more than a board could have."""
    for key in ("services", "out_ports", "ports"):
        ports = list(values.get(key) or ())
        if len(ports) > MAX_PORTS:
            raise FieldError(f"gateways.{key}", f"at most {MAX_PORTS} ports")
        for port in ports:
            if type(port) is not str or not checks.is_port_name(port):
                raise FieldError(f"gateways.{key}", f"{port!r} must be a port name matching [a-z][a-z0-9]{{0,15}}")


def configure(s: Session, gw: Gateway, values: dict) -> None:
    """Apply city / profile / ports / services (the keys present in `values`), checking what they name,
    and recompile the gateway's table."""
    _check_ports(values)
    with s.no_autoflush:  # a new gateway is not complete before the end
        if "city" in values:
            city = s.scalars(select(City).where(City.name == values["city"])).first()
            if city is None:
                raise FieldError("gateways.city", f"names no city: {values['city']!r}")
            gw.city_id, gw.city = city.id, city
        if values.get("profile") is not None:
            gw.profile = values["profile"]
        if values.get("out_ports") is not None:
            gw.out_ports = list(values["out_ports"])
        if values.get("services") is not None:
            _link_services(s, gw, values["services"])
        wanted = values.get("ports")
        gw.ports = sorted(set(wanted if wanted is not None else gw.ports or [])
                          | {link.port for link in gw.services} | set(gw.out_ports))
    s.add(gw)
    s.flush()

    def field(e) -> str | None:
        if e.path.startswith("targets.") and ".via" in e.path:
            return "gateways.out_ports"
        return "gateways.services" if e.path.startswith("routes") else None

    compile_checked(s, [gw], field, "gateways")


def find_gateways(s: Session, city: str | None = None, online: bool | None = None) -> list[Gateway]:
    """Gateways by id, filtered by city name and online state."""
    q = select(Gateway).order_by(Gateway.id)
    if city is not None:
        q = q.join(City).where(City.name == city)
    if online is not None:
        q = q.where(Gateway.online.is_(online))
    return list(s.scalars(q))


def register(s: Session, gateway_id: str, config: dict, secret_key: str, *, actor: str = "unknown") -> Secrets:
    """Register a gateway with `config` (as `configure` takes it) and compile its table; the key and MQTT
    password are only in what this returns, and `actor` (who gets them) is written to the secret audit."""
    if type(gateway_id) is not str or not checks.is_gateway_id(gateway_id):
        raise FieldError("gateways.id", "must match [a-z0-9-]{3,32}")
    if gateway_id == DEFAULT_BROKER_USER:  # its MQTT username would be the controller's account on the broker
        raise FieldError("gateways.id", f"{DEFAULT_BROKER_USER!r} is reserved: the controller's own MQTT account")
    if s.get(Gateway, gateway_id) is not None:
        raise Conflict("gateways.id", f"gateway {gateway_id!r} is already registered")
    gw = Gateway(id=gateway_id, ports=[], out_ports=[], state={}, online=False)
    password = new_secrets(secret_key, gw)
    configure(s, gw, config)
    audit(s, gw.id, actor, "register")
    return Secrets(gw, gw.key_hex, password)


def rotate(s: Session, gw: Gateway, secret_key: str, *, actor: str, action: str) -> Secrets:
    """A new table key and MQTT password for `gw`, audited; the board needs them flashed (its old ones
    stop working), and its next table is signed with the new key."""
    password = new_secrets(secret_key, gw)
    audit(s, gw.id, actor, action)
    return Secrets(gw, gw.key_hex, password)


def bundle_config(gw, settings, bridge=None, broker: str | None = None) -> dict:
    """The device config for the board's flash without its secrets (see `rotate` for those);
    `broker` as the board reaches it (default: from settings)."""
    if broker is None:
        if settings.broker.startswith("mqtt"):
            broker = settings.broker
        elif bridge is not None:
            broker = f"mqtt://{bridge.host}:{bridge.port}"
        else:  # an embedded broker's address is known only inside the controller that runs it
            raise FieldError("broker", "the broker is the embedded one of a running controller: give the "
                             "address boards reach it at (--broker mqtt://host:port, or CITYGATE_BROKER as "
                             "`citygate demo` prints it), or take the bundle from the API")
    elif not broker.startswith(("mqtt://", "mqtts://")):
        raise FieldError("broker", "must be an mqtt:// or mqtts:// URL")
    config = {"id": gw.id, "broker": broker, "user": gw.id, "profile": gw.profile}
    if broker.startswith("mqtts://"):  # the board checks the broker against this CA, and only this one
        config["broker_ca"] = broker_ca(settings)
    return config


def broker_ca(settings) -> str:
    """The CA certificates (PEM) of CITYGATE_BROKER_CA, as a board's config carries them for mqtts://."""
    from controller import bundles

    path = settings.broker_ca
    if not path:
        raise FieldError("broker_ca", "an mqtts:// broker needs its CA in the board's config: set "
                         "CITYGATE_BROKER_CA to the CA file (PEM) the broker's certificate chains to")
    try:
        with open(path, "rb") as f:
            pem = f.read(1 << 20).decode()
        return bundles.ca_pem(bundles.check_ca(pem, "broker_ca"))
    except (OSError, UnicodeError) as e:
        raise FieldError("broker_ca", f"CITYGATE_BROKER_CA {path}: cannot read it ({e})") from None
    except bundles.BundleError as e:
        raise FieldError("broker_ca", f"CITYGATE_BROKER_CA {path}: {e.reason}") from None
