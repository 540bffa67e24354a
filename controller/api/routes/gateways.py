"""The fleet: register gateways (key and MQTT password shown once), read their state, rotate keys,
hand technicians the provisioning bundle (the device config written to the board's flash).

A gateway's MQTT password is derived from its key and the controller's secret key (HMAC), so the
bundle can be produced again for a re-flash while the database keeps only the password's SHA-256.
"""

import base64
import hashlib
import hmac
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from controller.api.deps import ApiError, FleetReader, SessionDep, Technician, not_found, require
from controller.api.routes.common import In, Page, compile_checked, partial
from controller.broker_access import CONTROLLER_USER
from controller.compiler import latest_table
from controller.models import City, Gateway, GatewayService, Service
from protocols import checks


def _rule(pred, reason):
    def check(v):
        if not pred(v):
            raise ValueError(reason)
        return v
    return AfterValidator(check)


GatewayId = Annotated[str, _rule(checks.is_gateway_id, "must match [a-z0-9-]{3,32}")]
Port = Annotated[str, _rule(checks.is_port_name, "must be a port name matching [a-z][a-z0-9]{0,15}")]
router = APIRouter(prefix="/gateways", tags=["gateways"])
NO_STORE = {"Cache-Control": "no-store"}


class GatewayConfig(In):
    city: str = Field(description="the city's name")
    profile: str = Field("esp32-2gsm", min_length=1, max_length=32)
    services: dict[Port, str] = Field(default_factory=dict, description='inbound port -> service number, '
                                                                        'e.g. {"gsm1": "102"}')
    out_ports: list[Port] = Field(default_factory=list, description="ports it dials centres on")
    ports: list[Port] | None = Field(None, description="every port of the board (default: the ones above)")


GatewayPatch = partial(GatewayConfig)


class GatewayIn(GatewayConfig):
    id: GatewayId


class GatewayOut(BaseModel):
    id: str
    city: str
    city_id: int
    profile: str
    online: bool
    last_seen: int | None
    compiled_version: int | None = Field(None, description="the latest table compiled from the configuration")
    desired_version: int | None = Field(None, description="the version last published to it (by a rollout)")
    applied_version: int | None
    in_sync: bool
    last_reject: str | None
    ports: list[dict[str, Any]]
    signal: dict[str, int | None]
    heap_free: int | None
    heap_min_free: int | None
    outbox: int | None
    fw: str | None
    uptime_s: int | None


class Secrets(BaseModel):
    gateway: GatewayOut
    key: str = Field(description="the gateway's 32-byte table key, hex; shown only now")
    user: str
    password: str = Field(description="its MQTT password; shown only now")


def mqtt_password(secret: str, gw: Gateway) -> str:
    mac = hmac.new(secret.encode(), f"citygate mqtt password\0{gw.id}\0{gw.key_hex}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def view(gw: Gateway) -> GatewayOut:
    latest = latest_table(object_session(gw), gw.id)
    compiled = latest.version if latest else None
    state = gw.state or {}
    live = state.get("ports") or {}
    inbound = {link.port: link.service.number for link in gw.services}
    ports = [{"name": p, "service": inbound.get(p), "out": p in gw.out_ports, **live.get(p, {})}
             for p in sorted(set(gw.ports) | set(inbound) | set(gw.out_ports) | set(live))]
    return GatewayOut(
        id=gw.id, city=gw.city.name, city_id=gw.city_id, profile=gw.profile, online=gw.online,
        last_seen=gw.last_seen, compiled_version=compiled, desired_version=gw.desired_version,
        applied_version=gw.applied_version,
        in_sync=gw.desired_version is not None and gw.desired_version == gw.applied_version,
        last_reject=gw.last_reject, ports=ports, signal={p["name"]: p.get("csq") for p in ports if "csq" in p},
        heap_free=state.get("heap_free"), heap_min_free=state.get("heap_min_free"), outbox=state.get("outbox"),
        fw=state.get("fw"), uptime_s=state.get("uptime_s"))


def load(s: Session, gateway_id: str) -> Gateway:
    gw = s.get(Gateway, gateway_id)
    if gw is None:
        raise not_found("gateway_id", f"gateway {gateway_id!r}")
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
            raise ApiError(422, f"gateways.services.{port}", f"names no service: {number!r}")
    current = {link.port: link for link in gw.services}
    for port, link in current.items():
        if port not in wanted:
            gw.services.remove(link)
    for port, svc in wanted.items():
        if port in current:
            current[port].service_id, current[port].service = svc.id, svc
        else:
            gw.services.append(GatewayService(port=port, service_id=svc.id, service=svc))


def _configure(s: Session, gw: Gateway, values: dict) -> None:
    """Apply city / profile / ports / services from a request body, checking what they name."""
    with s.no_autoflush:  # a new gateway is not complete before the end
        if "city" in values:
            city = s.scalars(select(City).where(City.name == values["city"])).first()
            if city is None:
                raise ApiError(422, "gateways.city", f"names no city: {values['city']!r}")
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


def register(s: Session, body: GatewayIn, secret_key: str) -> Secrets:
    """Register a gateway (compiling its table); the key and MQTT password are only in what this returns."""
    if body.id == CONTROLLER_USER:  # its MQTT username would be the controller's account on the broker
        raise ApiError(422, "gateways.id", f"{CONTROLLER_USER!r} is reserved: the controller's own MQTT account")
    if s.get(Gateway, body.id) is not None:
        raise ApiError(409, "gateways.id", f"gateway {body.id!r} is already registered")
    gw = Gateway(id=body.id, ports=[], out_ports=[], state={}, online=False)
    password = new_secrets(secret_key, gw)
    _configure(s, gw, body.model_dump())
    return Secrets(gateway=view(gw), key=gw.key_hex, user=gw.id, password=password)


def bundle_config(gw: Gateway, settings, bridge=None, broker: str | None = None) -> dict:
    """The device config for the board's flash; `broker` as the board reaches it (default: from settings)."""
    if broker is None:
        if settings.broker.startswith("mqtt"):
            broker = settings.broker
        elif bridge is not None:
            broker = f"mqtt://{bridge.host}:{bridge.port}"
        else:
            broker = f"mqtt://{settings.listen_host}:{settings.broker_port or 1883}"
    elif not broker.startswith(("mqtt://", "mqtts://")):
        raise ApiError(422, "broker", "must be an mqtt:// or mqtts:// URL")
    return {"id": gw.id, "key": gw.key_hex, "broker": broker, "user": gw.id,
            "password": mqtt_password(settings.secret_key, gw), "profile": gw.profile}


@router.get("", response_model=Page[GatewayOut], dependencies=[FleetReader])
def list_gateways(s: SessionDep, city: str | None = None, online: bool | None = None):
    """Every gateway with its last reported state; filter by city name or online."""
    rows = [view(gw) for gw in find_gateways(s, city, online)]
    return {"data": rows, "count": len(rows)}


@router.post("", response_model=Secrets, status_code=201, dependencies=[Technician])
def register_gateway(body: GatewayIn, request: Request, response: Response, s: SessionDep):
    """Register a gateway: returns its table key and MQTT password once (only hashes are shown later)."""
    out = register(s, body, request.app.state.settings.secret_key)
    response.headers.update(NO_STORE)
    return out


@router.get("/{gateway_id}", response_model=GatewayOut, dependencies=[FleetReader])
def get_gateway(gateway_id: str, s: SessionDep):
    return view(load(s, gateway_id))


@router.patch("/{gateway_id}", response_model=GatewayOut, dependencies=[require("operator", "technician")])
def update_gateway(gateway_id: str, body: GatewayPatch, s: SessionDep):
    """Change a gateway's city, profile, ports or port -> service map; its table is recompiled."""
    gw = load(s, gateway_id)
    _configure(s, gw, body.model_dump(exclude_unset=True))
    return view(gw)


@router.delete("/{gateway_id}", status_code=204, dependencies=[require()])
def delete_gateway(gateway_id: str, s: SessionDep):
    """Forget a gateway (admin only); its call records stay."""
    s.delete(load(s, gateway_id))
    return Response(status_code=204)


@router.post("/{gateway_id}/rotate-key", response_model=Secrets, dependencies=[Technician])
def rotate_key(gateway_id: str, request: Request, response: Response, s: SessionDep):
    """A new table key and MQTT password, shown once; the board must be re-flashed with the new bundle."""
    gw = load(s, gateway_id)
    password = new_secrets(request.app.state.settings.secret_key, gw)
    response.headers.update(NO_STORE)
    return Secrets(gateway=view(gw), key=gw.key_hex, user=gw.id, password=password)


@router.get("/{gateway_id}/bundle", dependencies=[Technician])
def bundle(gateway_id: str, request: Request, response: Response, s: SessionDep,
           broker: Annotated[str | None, Query(description="mqtt://host:port as the board reaches it")] = None):
    """The device config for the board's flash (/config.json): id, key, broker, user, password, profile."""
    gw = load(s, gateway_id)
    config = bundle_config(gw, request.app.state.settings, request.app.state.bridge, broker)
    response.headers.update(NO_STORE)
    return config
