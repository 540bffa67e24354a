"""The `citygate` command line: every sub-command registered here, on the root app of `base`.

Each module adds its commands to `base.app` (or a sub-app of its own) when imported; the shared helpers
are in `common`, the table/CSV/JSON output in `output`. Nothing here is imported by the domain.
"""

from controller.cli import (  # noqa: F401  (imported to register their commands)
    admin,
    board,
    broker,
    bundle,
    core,
    firmware,
    gateways,
    hil,
    menus,
    queue,
    region,
    reports,
    rollouts,
    users,
)
from controller.cli.base import app, console  # noqa: F401
from controller.cli.core import SCENARIOS, ports_outside_profile  # noqa: F401
