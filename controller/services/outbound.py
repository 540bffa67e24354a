"""Operators call citizens (DESIGN §5a `call`): the gateway rings the agent, then the citizen, and bridges them.

`place` picks the gateway (the one asked, else one of the citizen's city with a free out port), sends
the `call` command and keeps the request; the gateway's `outbound` record, when the call has ended,
settles it (`settle_records`, from the ingest): a call-back called back is marked done when the citizen
answered, else its attempts are counted. The record may arrive before the request is stored (the
command's answer and the record race through the broker): `place` settles from it then.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from controller.commands import CommandsBusy
from controller.models import City, DenyPrefix, Gateway, OutboundCall, Record, User
from controller.services.errors import Conflict, FieldError, NoAnswer, NotFound, Unavailable
from protocols import checks, messages

Send = Callable[[str, str, dict], dict]  # (gateway, op, args) -> the gateway's cmd/result (the bridge's command)
NUMBER_RULE = "must be a dialable number (E.164 with + and 2-15 digits, or a short number of 2-15 digits)"
RECONCILE_S = 3600  # how long before its request a record that beat it may have been received


def free_lines(gw: Gateway) -> list[str]:
    """The gateway's ports its last state shows ready and without a call: its out ports first (in their
    configured order: the citizen's leg takes the first), then the others."""
    ports = (gw.state or {}).get("ports") if isinstance(gw.state, dict) else None
    if not isinstance(ports, dict):
        return []
    free = {p for p, st in ports.items() if isinstance(st, dict) and st.get("ready", True) is not False
            and not st.get("calls")}
    outs = [p for p in gw.out_ports or [] if p in free]
    return outs + sorted(free - set(outs))


def out_port_for_a_call(gw: Gateway) -> str | None:
    """The out port for the citizen's leg when the gateway has one free and another free line for the
    agent's (a module carries one call: an operator's call takes two lines), else None."""
    free = free_lines(gw)
    return free[0] if len(free) >= 2 and free[0] in (gw.out_ports or []) else None


def citizen_city(s: Session, citizen: str) -> int | None:
    """The city of the gateway that last took a call from this number (its city's gateways call back)."""
    return s.scalar(select(Gateway.city_id).join(Record, Record.gateway_id == Gateway.id)
                    .where(Record.kind == "call", Record.caller == citizen)
                    .order_by(Record.at.desc(), Record.id.desc()).limit(1))


def choose(s: Session, where: str, citizen: str, gateway: str | None, city: str | None,
           prefer: str | None = None) -> tuple[Gateway, str | None]:
    """(gateway, out port) for the call: the gateway asked for (its free out port, if its state shows one),
    else an online gateway of the citizen's city (named, or where the citizen last called from) with a
    free out port and another free line for the agent, `prefer` first."""
    if gateway is not None:
        gw = s.get(Gateway, gateway) if isinstance(gateway, str) else None
        if gw is None:
            raise FieldError(f"{where}.gateway", f"names no gateway: {gateway!r}")
        return gw, out_port_for_a_call(gw)  # none known free: the gateway picks, or refuses
    if city is not None:
        city_id = s.scalar(select(City.id).where(City.name == city))
        if city_id is None:
            raise FieldError(f"{where}.city", f"names no city: {city!r}")
    else:
        city_id = citizen_city(s, citizen)
        if city_id is None:
            raise FieldError(f"{where}.gateway", "is needed: no call from this citizen tells their city "
                                                 "(or give `city`)")
    gws = sorted(s.scalars(select(Gateway).where(Gateway.city_id == city_id)), key=lambda g: (g.id != prefer, g.id))
    online = [g for g in gws if g.online]
    for gw in online:
        via = out_port_for_a_call(gw)
        if via is not None:
            return gw, via
    name = s.get(City, city_id).name
    if not online:
        raise Conflict(f"{where}.gateway", f"no gateway of {name} is online")
    raise Conflict(f"{where}.gateway", f"no gateway of {name} has a free out port and another free line now")


def _check_numbers(s: Session, where: str, numbers: dict[str, object]) -> None:
    deny = [p.prefix for p in s.scalars(select(DenyPrefix))]
    for key, number in numbers.items():
        if not checks.is_number(number):
            raise FieldError(f"{where}.{key}", NUMBER_RULE)
        hit = next((p for p in deny if number.startswith(p)), None)
        if hit is not None:
            raise FieldError(f"{where}.{key}", f"{number} is denied by the prefix {hit}: no gateway dials it")


def place(s: Session, send: Send, user: User, agent, citizen, gateway=None, city=None, *,
          where: str = "outbound-calls", callback: Record | None = None) -> dict:
    """Send the `call` command and keep the request; the gateway's answer says whether it took the call."""
    _check_numbers(s, where, {"agent": agent, "citizen": citizen})
    gw, via = choose(s, where, citizen, gateway, city, prefer=callback.gateway_id if callback else None)
    gw_id, callback_id, requested_by = gw.id, callback.id if callback else None, user.name[:64]
    args = {"agent": agent, "citizen": citizen, **({"via": via} if via else {})}
    s.commit()  # end the read transaction: the gateway's answer can take seconds
    try:
        reply = send(gw_id, "call", args)
    except messages.MessageError as e:  # commands.check refused the args before sending
        raise FieldError(f"{where}.{e.path.removeprefix('args.')}", e.reason) from None
    except CommandsBusy as e:
        raise Unavailable(f"{where}.gateway", str(e)) from None
    except TimeoutError as e:
        raise NoAnswer(f"{where}.gateway", str(e)) from None
    out = {"gateway": gw_id, "via": via, "agent": agent, "citizen": citizen, "callback_id": callback_id,
           "command": reply.get("id"), "ok": bool(reply.get("ok")), "result": reply.get("result"),
           "error": reply.get("error")}
    if not reply.get("ok"):
        raise Conflict(f"{where}.gateway", f"{gw_id} refused the call: {reply.get('error') or 'no reason'}")
    oc = OutboundCall(command_id=str(reply["id"])[:64], gateway_id=gw_id, agent=agent, citizen=citizen, via=via,
                      callback_id=callback_id, requested_by=requested_by, created_at=int(time.time()))
    s.add(oc)
    s.flush()
    for rec in s.scalars(select(Record).where(Record.kind == "outbound", Record.gateway_id == gw_id,
                                              Record.received_at >= oc.created_at - RECONCILE_S)):
        if isinstance(rec.data, dict) and rec.data.get("cmd") == oc.command_id:  # it came first
            settle(s, oc, rec.data)
    return {"id": oc.id, **out, "outcome": oc.outcome}


def call_back(s: Session, send: Send, user: User, callback_id: int, agent, gateway=None) -> dict:
    """"Call back now" from the call-back queue: the same gateway's city calls the caller back."""
    cb = s.scalars(select(Record).where(Record.id == callback_id, Record.kind == "call",
                                        Record.outcome == "callback")).first()
    if cb is None:
        raise NotFound("call_id", f"no call-back {callback_id}")
    if cb.callback_done_at is not None:
        raise Conflict("call_id", f"call-back {callback_id} is done already")
    if not checks.is_number(cb.caller):
        raise Conflict("call_id", "the caller's number is unknown (withheld): there is nobody to call back")
    city = s.scalar(select(City.name).join(Gateway, Gateway.city_id == City.id).where(Gateway.id == cb.gateway_id))
    if gateway is None and city is None:
        raise Conflict("call_id", f"the gateway {cb.gateway_id} that took the call is no longer registered")
    return place(s, send, user, agent, cb.caller, gateway, city, where="call", callback=cb)


def settle(s: Session, oc: OutboundCall, record: dict) -> None:
    """An outbound record ended this request: keep how; a call-back is done when the citizen answered."""
    if oc.outcome is not None:
        return
    outcome = record.get("outcome")
    oc.outcome = outcome[:24] if isinstance(outcome, str) else "failed"
    start, ring, talk = (record.get(k) for k in ("start", "ring_s", "talk_s"))
    oc.ended_at = (start + (ring or 0) + (talk or 0)) if type(start) is int else int(time.time())
    if oc.callback_id is not None:
        cb = s.get(Record, oc.callback_id)
        if cb is not None:
            if oc.outcome == "answered":
                cb.callback_done_at = cb.callback_done_at or oc.ended_at
            else:
                cb.callback_attempts = (cb.callback_attempts or 0) + 1


def settle_records(s: Session, records: list[tuple[str, dict]]) -> None:
    """From the ingest: outbound records (gateway, record) settle the requests they answer (only the
    gateway asked can settle one)."""
    by_cmd = {r.get("cmd"): (gw, r) for gw, r in records if isinstance(r.get("cmd"), str)}
    if not by_cmd:
        return
    for oc in s.scalars(select(OutboundCall).where(OutboundCall.command_id.in_(list(by_cmd)))):
        gw, rec = by_cmd[oc.command_id]
        if gw == oc.gateway_id:
            settle(s, oc, rec)


def list_requests(s: Session, limit: int = 100, offset: int = 0) -> tuple[list[OutboundCall], int]:
    """Operators' call requests, newest first, with how each ended (null while it has not)."""
    total = s.scalar(select(func.count()).select_from(OutboundCall))
    return list(s.scalars(select(OutboundCall).order_by(OutboundCall.id.desc()).limit(limit).offset(offset))), total
