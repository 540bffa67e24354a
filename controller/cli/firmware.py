"""`citygate firmware build`: the .mpy tree, ROMFS image and manifest a technician flashes (firmware_build)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table as RichTable

from controller.cli.base import app, console

firmware_app = typer.Typer(help="Gateway firmware: build what is flashed on a board.", no_args_is_help=True)
app.add_typer(firmware_app, name="firmware")


@firmware_app.command("build")
def firmware_build(
    out: Annotated[Path, typer.Option(help="Directory to build into: fs/ (the board's files), manifest.json, "
                                      "firmware.romfs")] = Path("build/firmware"),
    profile: Annotated[str, typer.Option(help="Board profile (firmware/gw/profiles.py), or `emulated` for the "
                                         "unix port; picks the files and the architecture")] = "esp32-2gsm",
    arch: Annotated[str | None, typer.Option(help="mpy-cross -march instead of the profile's (xtensawin for "
                                             "ESP32); only native code depends on it")] = None,
    romfs: Annotated[bool, typer.Option(help="Also build a ROMFS image of lib/ (for boards with a ROMFS "
                                        "partition: code runs from flash, not from the heap)")] = True,
    source: Annotated[Path | None, typer.Option(help="Source tree holding firmware/ and protocols/ "
                                                "(default: this installation's)")] = None,
) -> None:
    """Compile firmware/ and protocols/ to .mpy with mpy-cross, build the ROMFS image, write the manifest."""
    from controller import firmware_build as fb

    err = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("[dim]{task.fields[file]}"), console=err, transient=True) as bar:
        task = bar.add_task("compiling", total=None, file="")

        def step(file: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, file=file)

        try:
            manifest = fb.build(out, profile=profile, arch=arch, romfs=romfs, source=source or fb.REPO,
                                progress=step)
        except fb.UsageError as e:
            err.print(f"[red]error[/]: [bold]{e.where}[/]: {e.reason}", highlight=False)
            raise typer.Exit(2) from None
        except fb.BuildError as e:
            where = f"[bold]{e.where}[/]: " if e.where else ""
            err.print(f"[red]build failed[/]: {where}{e.reason}", highlight=False)
            raise typer.Exit(1) from None
    _summary(out, manifest)


def _summary(out: Path, manifest: dict) -> None:
    files = manifest["files"]
    compiled = [f for f in files if f["path"].endswith(".mpy")]
    mpy = manifest["mpy"]
    console.print(f"firmware [bold]{manifest['firmware_version']}[/], build [bold]{manifest['build_id']}[/]: "
                  f"{manifest['profile']} ({manifest['target']}), mpy {mpy['version']}.{mpy['sub_version']} "
                  f"{' '.join(mpy['flags'])}", highlight=False)
    t = RichTable()
    t.add_column("what")
    t.add_column("files", justify="right")
    t.add_column("bytes", justify="right")
    t.add_row(".py sources compiled", str(len(compiled)), f"{sum(f['source_size'] for f in compiled):,}")
    t.add_row(".mpy files", str(len(compiled)), f"{sum(f['size'] for f in compiled):,}")
    t.add_row("main.py (kept as source)", "1", f"{sum(f['size'] for f in files if f['path'] == 'main.py'):,}")
    rom = manifest["romfs"]
    if rom:
        t.add_row(f"ROMFS image {rom['file']} ({rom['mount']}/lib)", str(len(rom["files"])),
                  f"{rom['size']:,}")
    console.print(t)
    src = manifest.get("source")
    if src:
        changed = " [yellow]with uncommitted changes in firmware/ or protocols/[/]" if src["dirty"] else ""
        console.print(f"from commit {src['commit'][:12]}{changed}", highlight=False)
    console.print(f"board files in [bold]{out / manifest['root']}[/], manifest [bold]{out / 'manifest.json'}[/]",
                  highlight=False)
