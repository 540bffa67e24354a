"""Menus (IVR at the edge, DESIGN §5a): a service's keys to centres, the default key the operator.

Thin: the rules live in controller.services.menus (errors name the field: `menus.options.2.targets[0]`)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from controller.api.deps import INT32_MAX, Operator, Reader, SessionDep, errors
from controller.api.routes.common import In, Page, RowId, partial
from controller.services import menus

router = APIRouter(prefix="/menus", tags=["menus"], responses=errors(404, 409))
Key = Annotated[str, Field(min_length=1, max_length=1, pattern=r"^[0-9*#]$")]


class ActionIn(In):
    action: Literal["reject", "callback", "forward"]
    target: str | None = Field(None, max_length=48)


class OptionIn(In):
    label: str = Field("", max_length=128, description="what the key means, e.g. social services")
    targets: list[Annotated[str, Field(max_length=48)]] = Field(min_length=1, max_length=16,
                                                                 description="centre codes, in dialling order")
    strategy: Literal["sequential", "round_robin"] = "sequential"
    fallback: ActionIn | None = None


class MenuIn(In):
    name: str = Field(max_length=48, description="the menu id in tables")
    service_id: int = Field(ge=1, le=INT32_MAX)
    city_id: int | None = Field(None, ge=1, le=INT32_MAX, description="null = every city without its own menu")
    prompt: str = Field(min_length=1, max_length=64, description="what the board plays: an audio file or a TTS text id")
    timeout_s: int = Field(8, ge=1, le=60, description="seconds to wait for a key after the prompt")
    tries: int = Field(2, ge=1, le=5, description="times the prompt is played before the default")
    default_option: Key = Field(description="the key a caller who presses nothing gets (the operator)")
    options: dict[Key, OptionIn] = Field(min_length=1, max_length=12)


class MenuOut(BaseModel):
    id: int
    name: str
    service_id: int
    city_id: int | None
    prompt: str
    timeout_s: int
    tries: int
    default_option: str
    options: dict[str, Any]


MenuPatch = partial(MenuIn)


def _values(body: In, unset: bool = True) -> dict:
    """The body as service values; options without their unset (null) members."""
    out = body.model_dump(exclude_unset=not unset)
    if "options" in out:
        out["options"] = body.model_dump(include={"options"}, exclude_none=True)["options"]
    return out


@router.get("", response_model=Page[MenuOut], dependencies=[Reader])
def list_menus(s: SessionDep):
    rows = [menus.as_dict(m) for m in menus.list_menus(s)]
    return {"data": rows, "count": len(rows)}


@router.post("", response_model=MenuOut, status_code=201, dependencies=[Operator])
def create_menu(body: MenuIn, s: SessionDep):
    """Add a menu; the gateways it reaches are compiled (a table that would not load is refused, 422)."""
    return menus.as_dict(menus.create_menu(s, _values(body)))


@router.get("/{item_id}", response_model=MenuOut, dependencies=[Reader])
def get_menu(item_id: RowId, s: SessionDep):
    return menus.as_dict(menus.get_menu(s, item_id))


@router.patch("/{item_id}", response_model=MenuOut, dependencies=[Operator])
def update_menu(item_id: RowId, body: MenuPatch, s: SessionDep):
    return menus.as_dict(menus.update_menu(s, item_id, _values(body, unset=False)))


@router.delete("/{item_id}", status_code=204, dependencies=[Operator])
def delete_menu(item_id: RowId, s: SessionDep):
    menus.delete_menu(s, item_id)
    return Response(status_code=204)
