"""Secrets for the board's flash, handed out once: a key rotation returns the new table key and MQTT
password, and writes who got them to the secret audit. The bundle without `rotate=true` is the device
config with no secret in it, so reading it again gives nobody a working key.

Technicians flash boards, so they may rotate (as they may register): every rotation is one-time by
construction (the old key and password stop working) and leaves an audit row; admins read the audit.
"""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import func, select

from controller.api.deps import SessionDep, Technician, errors, require
from controller.api.routes.common import Offset, OrmModel, Page
from controller.api.routes.gateways import NO_STORE, GatewayPath, Secrets, secrets_out
from controller.models import SecretAudit, User
from controller.services import gateways
from controller.services.gateways import bundle_config, load

router = APIRouter(tags=["gateways"], responses=errors(404))


class Bundle(BaseModel):
    id: str
    broker: str
    user: str
    profile: str
    broker_ca: str | None = None  # PEM, for an mqtts:// broker: the CA the board checks it against
    key: str | None = None
    password: str | None = None


class AuditOut(OrmModel):
    id: int
    at: int
    actor: str
    gateway_id: str
    action: str


@router.post("/gateways/{gateway_id}/rotate-key", response_model=Secrets)
def rotate_key(gateway_id: GatewayPath, request: Request, response: Response, s: SessionDep,
               user: Annotated[User, Technician]):
    """A new table key and MQTT password, shown once (audited); the board must be re-flashed with them."""
    out = secrets_out(gateways.rotate(s, load(s, gateway_id), request.app.state.settings.secret_key, actor=user.name,
                                      action="rotate-key"))
    response.headers.update(NO_STORE)
    return out


@router.get("/gateways/{gateway_id}/bundle", response_model=Bundle, response_model_exclude_none=True)
def bundle(gateway_id: GatewayPath, request: Request, response: Response, s: SessionDep,
           user: Annotated[User, Technician],
           broker: Annotated[str | None, Query(max_length=256,
                                               description="mqtt://host:port as the board reaches it")] = None,
           rotate_secrets: Annotated[bool, Query(alias="rotate", description=(
               "true: rotate the key and MQTT password and include them (once; audited; the board's old "
               "ones stop working); false: the config without secrets"))] = False):
    """The device config for the board's flash (/config.json): id, broker, user, profile; with
    `rotate=true` also a new key and password."""
    gw = load(s, gateway_id)
    settings = request.app.state.settings
    config = bundle_config(gw, settings, request.app.state.bridge, broker)
    if rotate_secrets:
        made = gateways.rotate(s, gw, settings.secret_key, actor=user.name, action="bundle")
        config |= {"key": made.key, "password": made.password}
    response.headers.update(NO_STORE)
    return config


@router.post("/gateways/{gateway_id}/bundle-file")
def bundle_file(gateway_id: GatewayPath, request: Request, response: Response, s: SessionDep,
                user: Annotated[User, Technician],
                broker: Annotated[str | None, Query(max_length=256,
                                                    description="mqtt://host:port as the board reaches it")] = None
                ) -> dict:
    """The gateway's bundle as one file signed by this controller, for `citygate flash --gateway`: config, a new
    key and password (rotated once; audited; the board's old ones stop working) and its current table."""
    from controller.flash_bundle import signed_bundle

    doc = signed_bundle(s, gateway_id, request.app.state.settings, actor=user.name, broker=broker,
                        bridge=request.app.state.bridge)
    response.headers.update(NO_STORE)
    return doc


@router.get("/audit", response_model=Page[AuditOut], dependencies=[require()], tags=["audit"])
def list_audit(s: SessionDep, gateway: Annotated[str | None, Query(max_length=64)] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Offset = 0):
    """Every hand-out of a gateway's secrets, newest first (admins only)."""
    q = select(SecretAudit)
    if gateway is not None:
        q = q.where(SecretAudit.gateway_id == gateway)
    rows = s.scalars(q.order_by(SecretAudit.at.desc(), SecretAudit.id.desc()).limit(limit).offset(offset)).all()
    return {"data": rows, "count": s.scalar(select(func.count()).select_from(q.subquery()))}
