"""Shared pieces of the routes: list pages, time parameters, compile checks, a small CRUD router factory.

No `from __future__ import annotations` here: the factory builds endpoints whose annotations are the
schema classes it is given, and FastAPI must see them as classes.
"""

import copy
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, create_model, field_validator
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from controller.api.deps import INT32_MAX, INT64_MAX, ApiError, SessionDep, errors, not_found
from controller.models import Gateway
from controller.services.tables import compile_checked  # noqa: F401  (the routes that edit the region use it)
from controller.services.times import TIME_MAX, TIME_MIN, parse_time, utc_text  # noqa: F401  (routes use them)

T = TypeVar("T")

RowId = Annotated[int, Path(ge=1, le=INT32_MAX, description="the row's id")]  # INTEGER primary keys
Offset = Annotated[int, Query(ge=0, le=INT64_MAX)]
TEXT_PARAM = 128  # characters of a filter parameter (names, ids, outcomes)
TimeParam = Annotated[int | str | None, Query(max_length=40)]


def unstorable(value) -> str | None:
    """Why a request value cannot be stored (text with NUL or a lone surrogate, anywhere inside), or None."""
    stack, seen = [value], 0
    while stack and seen < 100_000:
        v = stack.pop()
        seen += 1
        if isinstance(v, str):
            if "\x00" in v:
                return "must not contain NUL characters"
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return "must be valid Unicode text (no lone surrogates)"
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return None


class Page(BaseModel, Generic[T]):
    data: list[T]
    count: int


class In(BaseModel):
    """A request body: unknown fields are refused, so a typo is an error rather than a silent no-op;
    text the database cannot hold (NUL, lone surrogates) is refused naming the field."""
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, v):
        reason = unstorable(v)
        if reason:
            raise ValueError(reason)
        return v


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
    router = APIRouter(prefix=f"/{name}", tags=[name], responses=errors(404, 409))
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
    def get_item(item_id: RowId, s: SessionDep):
        return load(s, item_id)

    @router.patch("/{item_id}", response_model=out, dependencies=[write], name=f"{name}:update")
    def update_item(item_id: RowId, body: update, s: SessionDep):
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
    def delete_item(item_id: RowId, s: SessionDep):
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

