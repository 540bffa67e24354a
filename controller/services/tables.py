"""Recompiling the gateways an edit touches, with a compile error reported against the field that caused it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from controller.compiler import Compiled, CompileError, compile_gateway
from controller.services.errors import FieldError


def compile_checked(s: Session, gateways, field: Callable[[CompileError], str | None],
                    resource: str) -> list[Compiled]:
    """Compile each gateway (a new version only when its table changed); a CompileError is a FieldError.

    `field(error)` names the field the error's table path came from, or None (then the resource).
    """
    out = []
    s.flush()
    for gw in gateways:
        try:
            out.append(compile_gateway(s, gw))
        except CompileError as e:
            raise FieldError(field(e) or resource, f"{e.reason} (in the table of {e.gateway}, at {e.path})") from None
    return out
