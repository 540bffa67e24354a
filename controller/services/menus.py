"""Menus (IVR at the edge, DESIGN §5a): a service's menu for one city or for every city without its own.

A menu maps keys (0-9 * #) to options that dial centres like a route (targets, strategy, fallback);
the default option (the operator) takes callers who press nothing or a wrong key. A menu is checked
by the gateways' own validator (`protocols.routing.load` on a table holding just it), and every
gateway it reaches must still compile; errors name the field (`menus.options.2.targets[0]`).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from controller.compiler import CompileError, compile_gateway, menu_doc, menu_targets
from controller.models import Centre, City, Gateway, GatewayService, Menu, Service
from controller.services.errors import Conflict, FieldError, NotFound
from protocols import checks, routing

FIELDS = ("name", "service_id", "city_id", "prompt", "timeout_s", "tries", "default_option", "options")
DEFAULTS = {"city_id": None, "timeout_s": 8, "tries": 2}
MAX_OPTIONS = 12  # 0-9 * #


def as_dict(m: Menu) -> dict:
    return {"id": m.id, **{f: getattr(m, f) for f in FIELDS}}


def list_menus(s: Session) -> list[Menu]:
    return list(s.scalars(select(Menu).order_by(Menu.name)))


def get_menu(s: Session, menu_id: int) -> Menu:
    m = s.get(Menu, menu_id)
    if m is None:
        raise NotFound("id", f"no menu {menu_id}")
    return m


def menus_naming(s: Session, code: str) -> list[Menu]:
    """Menus whose options dial or forward to a centre (it cannot go while they do)."""
    return [m for m in list_menus(s) if code in menu_targets(m)]


def create_menu(s: Session, values: dict) -> Menu:
    values = {**DEFAULTS, **values}
    missing = [f for f in FIELDS if f not in values]
    if missing:
        raise FieldError(f"menus.{missing[0]}", "is required")
    m = Menu(**{f: values[f] for f in FIELDS})
    _check(s, m)
    s.add(m)
    s.flush()
    _recompile(s, m, {m.city_id}, {m.service_id})
    return m


def update_menu(s: Session, menu_id: int, changes: dict) -> Menu:
    m = get_menu(s, menu_id)
    unknown = [k for k in changes if k not in FIELDS]
    if unknown:
        raise FieldError(f"menus.{unknown[0]}", "is not a menu field")
    cities, services = {m.city_id}, {m.service_id}
    for k, v in changes.items():
        setattr(m, k, v)
    _check(s, m)
    s.flush()
    _recompile(s, m, cities | {m.city_id}, services | {m.service_id})
    return m


def delete_menu(s: Session, menu_id: int) -> None:
    m = get_menu(s, menu_id)
    cities, services = {m.city_id}, {m.service_id}
    s.delete(m)
    s.flush()
    _recompile(s, None, cities, services)


def _check(s: Session, m: Menu) -> None:
    """Every rule, naming the field: ids, references, uniqueness, then the gateways' validator."""
    if not (isinstance(m.name, str) and checks.is_ident(m.name)):
        raise FieldError("menus.name", "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,47}")
    for field, model in (("service_id", Service), ("city_id", City)):
        value = getattr(m, field)
        if value is None and field == "city_id":
            continue
        if type(value) is not int or not 1 <= value <= 2**31 - 1 or s.get(model, value) is None:
            raise FieldError(f"menus.{field}", f"names no {model.__tablename__} entry {value!r}")
    other = s.scalars(select(Menu).where(Menu.name == m.name, Menu.id != m.id) if m.id else
                      select(Menu).where(Menu.name == m.name)).first()
    if other is not None:
        raise Conflict("menus.name", f"menu {other.id} has this name already")
    same = [o for o in s.scalars(select(Menu).where(Menu.service_id == m.service_id))
            if o.id != m.id and o.city_id == m.city_id]
    if same:
        where = f"city {m.city_id}" if m.city_id is not None else "every city"
        raise Conflict("menus.city_id", f"menu {same[0].name} is this service's menu for {where} already")
    opts = m.options
    if not isinstance(opts, dict) or not 1 <= len(opts) <= MAX_OPTIONS:
        raise FieldError("menus.options", f"must be an object of 1 to {MAX_OPTIONS} options keyed 0-9 * #")
    centres: dict[str, Centre] = {}
    for key, o in sorted(opts.items()):
        if not isinstance(o, dict):
            raise FieldError(f"menus.options.{key}", "must be an object")
        label = o.get("label", "")
        if not isinstance(label, str) or len(label) > 128:
            raise FieldError(f"menus.options.{key}.label", "must be text of at most 128 characters")
        named = [(f"targets[{i}]", t) for i, t in enumerate(o.get("targets") or [])]
        fb = o.get("fallback")
        if isinstance(fb, dict) and fb.get("target") is not None:
            named.append(("fallback.target", fb["target"]))
        for where, code in named:
            c = s.scalars(select(Centre).where(Centre.code == code)).first() if isinstance(code, str) else None
            if c is None:
                raise FieldError(f"menus.options.{key}.{where}", f"names no call centre: {code!r}")
            centres[code] = c
    doc = {"schema": 1, "gateway": "menu-check", "version": 1, "tz": "UTC0", "deny": [], "closed": [],
           "targets": {code: {"number": c.number, "via": ["out"]} for code, c in centres.items()},
           "menus": {m.name: menu_doc(m)}, "routes": [{"id": "menu-check", "port": "*", "menu": m.name}]}
    try:
        routing.load(doc)
    except routing.TableError as e:
        prefix = f"menus.{m.name}."
        if e.path.startswith(prefix):
            rest = e.path[len(prefix):]
            raise FieldError("menus." + ("default_option" if rest == "default" else rest), e.reason) from None
        raise FieldError("menus", f"{e.path}: {e.reason}") from None


def _recompile(s: Session, m: Menu | None, cities: set, services: set) -> None:
    """Compile the gateways a menu reaches (a new table version only where it changed)."""
    q = select(Gateway).where(Gateway.services.any(GatewayService.service_id.in_(services))).order_by(Gateway.id)
    if None not in cities:
        q = q.where(Gateway.city_id.in_(cities))
    for gw in s.scalars(q):
        try:
            compile_gateway(s, gw)
        except CompileError as e:
            field = "menus.options" if e.path.startswith("menus") else "menus"
            raise FieldError(field, f"{e.reason} (in the table of {e.gateway}, at {e.path})") from None
