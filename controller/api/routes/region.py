"""Region CRUD: services, cities, call centres, forbidden prefixes, holidays.

Thin: the rules live in controller.services.region (the console's Region page and the CLI run the same).
Every write that changes what a gateway's table says recompiles the gateways it affects, in the same
transaction: a change that would make an invalid table is refused with 422 and rolled back.
"""

from fastapi import APIRouter, Response
from pydantic import BaseModel

from controller.api.deps import Operator, Reader, SessionDep, errors
from controller.api.routes.common import OrmModel, Page, RowId, partial
from controller.services import region
from controller.services.region import CentreIn, CityIn, DenyIn, HolidayIn, Ident, ServiceIn  # noqa: F401 (Ident: call_routes)


class ServiceOut(OrmModel):
    id: int
    number: str
    name: str
    closed_on_holidays: bool


class CityOut(OrmModel):
    id: int
    name: str
    zone: str


class CentreOut(OrmModel):
    id: int
    code: str
    name: str
    number: str
    capacity: int | None
    ring_timeout_s: int


class DenyOut(OrmModel):
    id: int
    prefix: str
    note: str


class HolidayOut(OrmModel):
    id: int
    city_id: int | None
    date: str


def region_router(name: str, create: type[BaseModel], out: type[BaseModel]) -> APIRouter:
    """List, create, read, update (PATCH), delete one kind of region row through controller.services.region."""
    router = APIRouter(prefix=f"/{name}", tags=[name], responses=errors(404, 409))
    update = partial(create)

    @router.get("", response_model=Page[out], dependencies=[Reader], name=f"{name}:list")
    def list_items(s: SessionDep):
        found = region.rows(s, name)
        return {"data": found, "count": len(found)}

    @router.post("", response_model=out, status_code=201, dependencies=[Operator], name=f"{name}:create")
    def create_item(body: create, s: SessionDep):
        return region.create(s, name, body.model_dump(), checked=True)

    @router.get("/{item_id}", response_model=out, dependencies=[Reader], name=f"{name}:get")
    def get_item(item_id: RowId, s: SessionDep):
        return region.get(s, name, item_id)

    @router.patch("/{item_id}", response_model=out, dependencies=[Operator], name=f"{name}:update")
    def update_item(item_id: RowId, body: update, s: SessionDep):
        return region.update(s, name, item_id, body.model_dump(exclude_unset=True), checked=True)

    @router.delete("/{item_id}", status_code=204, dependencies=[Operator], name=f"{name}:delete")
    def delete_item(item_id: RowId, s: SessionDep):
        region.delete(s, name, item_id)
        return Response(status_code=204)

    return router


routers = [region_router("services", ServiceIn, ServiceOut), region_router("cities", CityIn, CityOut),
           region_router("centres", CentreIn, CentreOut), region_router("deny-prefixes", DenyIn, DenyOut),
           region_router("holidays", HolidayIn, HolidayOut)]
