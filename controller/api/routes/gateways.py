"""The fleet over HTTP: register gateways (key and MQTT password shown once), read their state, edit their
config. The domain is controller.services.gateways; secrets leave the controller only at registration and
at a key rotation (controller.api.routes.provisioning), each hand-out written to `secret_audit`.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy.orm import Session

from controller.api.deps import FleetReader, SessionDep, Technician, errors, require
from controller.api.routes.common import In, Page, partial
from controller.models import Gateway, User
from controller.services import gateways
from controller.services.gateways import (  # noqa: F401  (tests and tools import these from here)
    bundle_config,
    find_gateways,
    load,
    mqtt_password,
    password_matches,
    store_password,
)
from protocols import checks


def _rule(pred, reason):
    def check(v):
        if not pred(v):
            raise ValueError(reason)
        return v
    return AfterValidator(check)


GatewayId = Annotated[str, _rule(checks.is_gateway_id, "must match [a-z0-9-]{3,32}")]
Port = Annotated[str, _rule(checks.is_port_name, "must be a port name matching [a-z][a-z0-9]{0,15}")]
GatewayPath = Annotated[str, Path(max_length=64)]
router = APIRouter(prefix="/gateways", tags=["gateways"], responses=errors(404, 409))
NO_STORE = {"Cache-Control": "no-store"}
MAX_PORTS = 64


class GatewayConfig(In):
    city: str = Field(max_length=128, description="the city's name")
    profile: str = Field("esp32-2gsm", min_length=1, max_length=32)
    services: dict[Port, Annotated[str, Field(max_length=16)]] = Field(
        default_factory=dict, max_length=MAX_PORTS, description='inbound port -> service number, e.g. {"gsm1": "102"}')
    out_ports: list[Port] = Field(default_factory=list, max_length=MAX_PORTS, description="ports it dials centres on")
    ports: list[Port] | None = Field(None, max_length=MAX_PORTS,
                                     description="every port of the board (default: the ones above)")


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
    ports: list[dict[str, str | int | bool | None]] = Field(
        description="name, service, out, and what the gateway last said of the port (kind, ready, reg, csq...)")
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


def view(gw: Gateway) -> GatewayOut:
    return GatewayOut(**gateways.describe(gw))


def register(s: Session, body: GatewayIn, secret_key: str, *, actor: str = "unknown") -> Secrets:
    """services.gateways.register with a request body; the key and MQTT password are only in what this returns."""
    made = gateways.register(s, body.id, body.model_dump(exclude={"id"}), secret_key, actor=actor)
    return secrets_out(made)


def secrets_out(made: gateways.Secrets) -> Secrets:
    return Secrets(gateway=view(made.gateway), key=made.key, user=made.gateway.id, password=made.password)


@router.get("", response_model=Page[GatewayOut], dependencies=[FleetReader])
def list_gateways(s: SessionDep, city: Annotated[str | None, Query(max_length=128)] = None,
                  online: bool | None = None):
    """Every gateway with its last reported state; filter by city name or online."""
    rows = [view(gw) for gw in find_gateways(s, city, online)]
    return {"data": rows, "count": len(rows)}


@router.post("", response_model=Secrets, status_code=201)
def register_gateway(body: GatewayIn, request: Request, response: Response, s: SessionDep,
                     user: Annotated[User, Technician]):
    """Register a gateway: returns its table key and MQTT password once (audited; only hashes are kept)."""
    out = register(s, body, request.app.state.settings.secret_key, actor=user.name)
    response.headers.update(NO_STORE)
    return out


@router.get("/{gateway_id}", response_model=GatewayOut, dependencies=[FleetReader])
def get_gateway(gateway_id: GatewayPath, s: SessionDep):
    return view(load(s, gateway_id))


@router.patch("/{gateway_id}", response_model=GatewayOut, dependencies=[require("operator", "technician")])
def update_gateway(gateway_id: GatewayPath, body: GatewayPatch, s: SessionDep):
    """Change a gateway's city, profile, ports or port -> service map; its table is recompiled."""
    gw = load(s, gateway_id)
    gateways.configure(s, gw, body.model_dump(exclude_unset=True))
    return view(gw)


@router.delete("/{gateway_id}", status_code=204, dependencies=[require()])
def delete_gateway(gateway_id: GatewayPath, s: SessionDep):
    """Forget a gateway (admin only); its call records and its secret audit stay."""
    s.delete(load(s, gateway_id))
    return Response(status_code=204)
