"""How each centre's lines are shared among the gateways that dial it (controller.capacity)."""

from fastapi import APIRouter
from pydantic import BaseModel, Field

from controller.api.deps import Reader, SessionDep
from controller.compiler import Region

router = APIRouter(prefix="/capacity", tags=["capacity"])


class ShareOut(BaseModel):
    centre: str
    capacity: int
    shares: dict[str, int] = Field(description="gateway id -> its max_calls for the centre; the sum ≤ capacity")
    peaks: dict[str, int] = Field(description="gateway id -> its most concurrent calls to the centre in 28 days")
    no_line: list[str] = Field(description="gateways that dial the centre but got none of its lines (max_calls 0)")
    warning: str | None


@router.get("", response_model=list[ShareOut], dependencies=[Reader])
def capacity_shares(s: SessionDep) -> list[ShareOut]:
    """Per centre with a capacity: each gateway's `max_calls` (never more than the centre's lines in all: one
    each, the rest by its peak of concurrent calls over 28 days; with fewer lines than gateways, the least used
    get none), those peaks, and a warning naming the gateways left without a line."""
    return [ShareOut(centre=code, capacity=sp.capacity, shares=sp.shares, peaks=sp.peaks, no_line=sp.no_line,
                     warning=sp.warning)
            for code, sp in sorted(Region(s).splits().items())]
