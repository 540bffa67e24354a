"""`citygate hil run`: the HIL scenario suite on a rig (hil_tests.run, in a child process: the controller
imports no test code), with JUnit XML and a short HTML summary beside it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.base import app

hil_app = typer.Typer(help="Hardware-in-the-loop: run the scenario suite on a real bench or an emulated rig")
app.add_typer(hil_app, name="hil")


@hil_app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def hil_run(
    ctx: typer.Context,
    rig: Annotated[Path, typer.Option(help="The rig file (TOML): hil_tests/rigs/emulated.toml, bench-example.toml",
                                      exists=True, dir_okay=False)],
    junit: Annotated[Path | None, typer.Option(help="Write the JUnit XML here; the HTML summary goes beside it "
                                                    "(.html)")] = None,
    suite: Annotated[Path | None, typer.Option(help="The scenarios (default: tests/hil of this checkout)")] = None,
) -> None:
    """Run the HIL suite on RIG; more arguments after `--` go to pytest (e.g. `-- -k calls -x`)."""
    cmd = [sys.executable, "-m", "hil_tests.run", "--rig", str(rig)]
    if junit:
        cmd += ["--junit", str(junit)]
    if suite:
        cmd += ["--suite", str(suite)]
    if ctx.args:
        cmd += ["--", *ctx.args]
    raise typer.Exit(subprocess.call(cmd))
