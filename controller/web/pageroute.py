"""Pages' route class: a `PageError` raised anywhere in a page, or a service's `DomainError`, becomes the
error page with its status, and `SignInFirst` the redirect to /login (here, apart from
controller.web.session, which the renderer needs)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Response
from fastapi.routing import APIRoute

from controller.services.errors import DomainError
from controller.web.render import error_page
from controller.web.session import FIELD_MAX, PAGE_DB, PageError, SignInFirst, to_login


def _roll_back(request: Request) -> None:
    """Roll back the page's database session (controller.web.deps.PageDb), if it opened one: it is
    committed only after the page returns, which a failed page has not."""
    s = getattr(request.state, PAGE_DB, None)
    if s is not None:
        s.rollback()


class PageRoute(APIRoute):
    """Pages' route class: a PageError, or a service's DomainError, becomes the error page with its status;
    SignInFirst (controller.web.deps, a browser with no session) the redirect to /login."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
                    if "\x00" in str(value) or len(str(value)) > FIELD_MAX:
                        raise PageError(422, name, f"at most {FIELD_MAX} characters, no NUL")
                return await handler(request)
            except SignInFirst:
                _roll_back(request)
                return to_login(request)
            except (PageError, DomainError) as e:
                _roll_back(request)  # nothing of a failed page is kept, and its connection is free again
                return error_page(request, e.status, e.field, e.reason)

        return run
