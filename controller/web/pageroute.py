"""Pages' route class: a `PageError` raised anywhere in a page, or a service's `DomainError`, becomes the
error page with its status (here, apart from controller.web.session, which the renderer needs)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Response
from fastapi.routing import APIRoute

from controller.services.errors import DomainError
from controller.web.render import error_page
from controller.web.session import FIELD_MAX, PageError


class PageRoute(APIRoute):
    """Pages' route class: a PageError, or a service's DomainError, becomes the error page with its status."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
                    if "\x00" in str(value) or len(str(value)) > FIELD_MAX:
                        raise PageError(422, name, f"at most {FIELD_MAX} characters, no NUL")
                return await handler(request)
            except PageError as e:
                return error_page(request, e.status, e.field, e.reason)
            except DomainError as e:
                return error_page(request, e.status, e.field, e.reason)

        return run
