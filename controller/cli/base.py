"""The `citygate` command's root: the Typer app every command module registers on, and the console they print to."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(help="citygate: edge call routing for city service numbers.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
console = Console()
