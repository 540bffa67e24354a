"""Shared pieces of the routes: list pages, time parameters, compile checks, a small CRUD router factory.

No `from __future__ import annotations` here: the factory builds endpoints whose annotations are the
schema classes it is given, and FastAPI must see them as classes.
"""

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, create_model
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from controller.api.deps import ApiError, SessionDep, not_found
from controller.compiler import Compiled, CompileError, compile_gateway
from controller.models import Gateway

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    data: list[T]
    count: int


class In(BaseModel):
    """A request body: unknown fields are refused, so a typo is an error rather than a silent no-op."""
    model_config = ConfigDict(extra="forbid")


class OrmModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def partial(model: type[BaseModel]) -> type[BaseModel]:
    """The PATCH form of a create schema: every field may be left out (but not nulled unless nullable)."""
    fields = {}
    for name, info in model.model_fields.items():
        info = copy.copy(info)
        info.default, info.default_factory = None, None
        fields[name] = (info.annotation, info)
    return create_model(model.__name__.removesuffix("In") + "Patch", __base__=In, **fields)


def parse_time(value: int | str | None, field: str) -> int | None:
    """UTC seconds, or ISO-8601 (no offset = UTC) -> UTC seconds."""
    if value is None or isinstance(value, int):
        return value
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, field, "must be UTC seconds or an ISO-8601 time") from None
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp())


def compile_checked(s: Session, gateways, field: Callable[[CompileError], str | None],
                    resource: str) -> list[Compiled]:
    """Compile each gateway (a new version only when its table changed); a CompileError becomes a 422.

    `field(error)` names the API field the error's table path came from, or None (then the resource).
    """
    out = []
    s.flush()
    for gw in gateways:
        try:
            out.append(compile_gateway(s, gw))
        except CompileError as e:
            raise ApiError(422, field(e) or resource,
                           f"{e.reason} (in the table of {e.gateway}, at {e.path})") from None
    return out


def gateways_where(s: Session, *where) -> list[Gateway]:
    return list(s.scalars(select(Gateway).where(*where).order_by(Gateway.id)))


def validate_row(s: Session, name: str, model, values: dict, obj=None, *, unique: tuple[str, ...] = (),
                 refs: dict[str, Any] | None = None) -> None:
    """The foreign keys in `values` exist (422) and the `unique` fields name no other row (409)."""
    for key, ref in (refs or {}).items():
        if values.get(key) is not None and s.get(ref, values[key]) is None:
            raise ApiError(422, f"{name}.{key}", f"names no {ref.__tablename__} entry {values[key]}")
    if unique:
        merged = {k: values.get(k, getattr(obj, k, None)) for k in unique}
        conds = [getattr(model, k).is_(None) if v is None else getattr(model, k) == v for k, v in merged.items()]
        other = s.scalars(select(model).where(and_(*conds))).first()
        if other is not None and other is not obj:
            raise ApiError(409, f"{name}.{unique[-1]}", f"{name} entry {other.id} already has this value")


def create_row(s: Session, name: str, model, values: dict, *, unique: tuple[str, ...] = (),
               refs: dict[str, Any] | None = None, before: Callable | None = None, after: Callable | None = None):
    """What `crud_router`'s create does, without HTTP: check, add, flush, run the hooks; returns the row."""
    validate_row(s, name, model, values, unique=unique, refs=refs)
    obj = model(**values)
    if before:
        before(s, obj, "create", values)
    s.add(obj)
    s.flush()
    if after:
        after(s, obj, "create", {})
    return obj


def crud_router(name: str, model, create: type[BaseModel], update: type[BaseModel], out: type[BaseModel], *,
                read, write, unique: tuple[str, ...] = (), refs: dict[str, Any] | None = None,
                before: Callable | None = None, after: Callable | None = None, order=None) -> APIRouter:
    """List, create, read, update (PATCH), delete for one model.

    `refs`: {field: model} foreign keys checked to exist (422); `unique`: fields that together must be
    unique (409); `before(s, obj, op, changes)` may refuse (e.g. 409 when in use); `after(s, obj, op, old)`
    runs once the change is flushed (compile checks). `op` is create, update or delete.
    """
    router = APIRouter(prefix=f"/{name}", tags=[name])
    refs = refs or {}

    def load(s: Session, item_id: int):
        obj = s.get(model, item_id)
        if obj is None:
            raise not_found("id", f"{name} entry {item_id}")
        return obj

    def validate(s: Session, values: dict, obj=None) -> None:
        validate_row(s, name, model, values, obj, unique=unique, refs=refs)

    @router.get("", response_model=Page[out], dependencies=[read], name=f"{name}:list")
    def list_items(s: SessionDep):
        rows = list(s.scalars(select(model).order_by(order if order is not None else model.id)))
        return {"data": rows, "count": len(rows)}

    @router.post("", response_model=out, status_code=201, dependencies=[write], name=f"{name}:create")
    def create_item(body: create, s: SessionDep):
        return create_row(s, name, model, body.model_dump(), unique=unique, refs=refs, before=before, after=after)

    @router.get("/{item_id}", response_model=out, dependencies=[read], name=f"{name}:get")
    def get_item(item_id: int, s: SessionDep):
        return load(s, item_id)

    @router.patch("/{item_id}", response_model=out, dependencies=[write], name=f"{name}:update")
    def update_item(item_id: int, body: update, s: SessionDep):
        obj = load(s, item_id)
        changes = body.model_dump(exclude_unset=True)
        validate(s, changes, obj)
        if before:
            before(s, obj, "update", changes)
        old = {k: getattr(obj, k) for k in changes}
        for k, v in changes.items():
            setattr(obj, k, v)
        s.flush()
        if after:
            after(s, obj, "update", old)
        return obj

    @router.delete("/{item_id}", status_code=204, dependencies=[write], name=f"{name}:delete")
    def delete_item(item_id: int, s: SessionDep):
        obj = load(s, item_id)
        if before:
            before(s, obj, "delete", {})
        s.delete(obj)
        s.flush()
        if after:
            after(s, obj, "delete", {})
        return Response(status_code=204)

    return router


def in_use(name: str, field: str, what: list[str]) -> None:
    """409 when `what` (descriptions of the rows using it) is not empty."""
    if what:
        shown = ", ".join(what[:5]) + (f" and {len(what) - 5} more" if len(what) > 5 else "")
        raise ApiError(409, f"{name}.{field}", f"in use by {shown}")

