"""What the commands that go through the running controller's API share (`citygate rollout start --api`,
`citygate callback call`): a controller that cannot be reached, and an answer that refuses, both printed
as `field: reason` (exit 2) like every other CLI error. Only these commands talk HTTP, so the API's error
shape (`{"detail": [{"field", "reason"}]}`) is read here, not in controller.cli.common."""

from __future__ import annotations

import typer

from controller.cli.common import _fail


def unreachable(api: str, error: Exception, hint: str) -> typer.Exit:
    """The controller at `api` did not answer at all (refused, timed out, no such host)."""
    return _fail("--api", f"cannot reach {api} ({error})", hint)


def refused(response) -> typer.Exit:
    """A 4xx/5xx answer as its first `field: reason`; a body of another shape (a proxy's page, a crash) as
    the status and the start of the text."""
    try:
        d = response.json()["detail"][0]
        if not isinstance(d, dict):
            raise TypeError(d)
    except (ValueError, KeyError, IndexError, TypeError):
        d = {"field": "--api", "reason": f"answered {response.status_code}: {response.text[:200]}"}
    return _fail(d.get("field"), d.get("reason", ""))
