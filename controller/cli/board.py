"""`citygate console`, `citygate flash`, `citygate check`: a board through its serial console (a real board's
USB-UART or an emulated board's pty)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from controller.cli.base import app, console


@app.command("console")
def serial_console(
    port: Annotated[str, typer.Option(help="The board's serial port: /dev/ttyUSB0, the /dev/pts/N `board emulate` "
                                      "printed, rfc2217://host:port or socket://host:port")],
    log: Annotated[Path | None, typer.Option(help="Append everything the board sends to this file")] = None,
    baud: Annotated[int, typer.Option(help="Baud rate")] = 115200,
) -> None:
    """The board's console in this terminal (Ctrl-C goes to the board; Ctrl-] leaves)."""
    from controller.serialterm import PortError, run_console

    try:
        lost = run_console(port, baud, str(log) if log else None)
    except PortError as e:
        console.print(f"[red]{e}[/]", highlight=False)
        raise typer.Exit(2) from None
    except OSError as e:  # the log file
        console.print(f"[red]--log {log}: {e.strerror or e}[/]", highlight=False)
        raise typer.Exit(2) from None
    if lost:
        raise typer.Exit(1)


def _board_error(e) -> typer.Exit:
    Console(stderr=True).print(f"[red]error[/]: {escape(str(e))}", highlight=False)
    return typer.Exit(e.exit_code)


def _fetch_bundle(gateway: str, api: str | None, token: str | None, broker: str | None, out: Path) -> Path:
    """The gateway's signed bundle from the controller's API (a technician's token); rotates its secrets."""
    import httpx

    from controller.board_serial import BoardError

    if not api or not token:
        raise BoardError("bundle", "--gateway needs the controller's address and a technician's token: "
                         "--api / CITYGATE_API and --token / CITYGATE_TOKEN")
    try:
        r = httpx.post(f"{api.rstrip('/')}/api/v1/gateways/{gateway}/bundle-file", params={"broker": broker}
                       if broker else None, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    except httpx.HTTPError as e:
        raise BoardError("bundle", f"cannot reach {api}: {e}") from None
    if r.status_code != 200:
        raise BoardError("bundle", f"the controller refused the bundle of {gateway} ({r.status_code}): "
                         f"{r.text[:300]}")
    from controller import bundles

    bundles.write(out, r.json())
    return out


@app.command("flash")
def flash_board(
    port: Annotated[str, typer.Option(help="The board's serial port (/dev/ttyUSB0, an emulated board's /dev/pts/N)")],
    bundle: Annotated[Path | None, typer.Option(help="The gateway's bundle (`citygate bundle export`)",
                                                dir_okay=False)] = None,
    gateway: Annotated[str | None, typer.Option(help="Fetch this gateway's bundle from the controller instead "
                                                "(--api, --token; rotates its key and password, audited)")] = None,
    build: Annotated[Path, typer.Option(help="The `citygate firmware build` output")] = Path("build/firmware"),
    romfs: Annotated[bool, typer.Option("--romfs", help="lib/ as the build's ROMFS image on the board's ROMFS "
                                        "partition (mpremote romfs deploy)")] = False,
    reassign: Annotated[bool, typer.Option("--reassign", help="Flash a board configured for another gateway "
                                           "(its outbox is cleared)")] = False,
    pubkey: Annotated[str | None, typer.Option(help="The controller's bundle public key to check the bundle "
                                               "against", envvar="CITYGATE_BUNDLE_PUBKEY")] = None,
    api: Annotated[str | None, typer.Option(help="The controller, for --gateway", envvar="CITYGATE_API")] = None,
    token: Annotated[str | None, typer.Option(help="A technician's API token, for --gateway",
                                              envvar="CITYGATE_TOKEN")] = None,
    broker: Annotated[str | None, typer.Option(help="With --gateway: mqtt://host:port as the board reaches the "
                                               "broker")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="What was done, as JSON on stdout")] = False,
) -> None:
    """Put the firmware build and the gateway's bundle (config and signed table) on a board: only changed
    files, each verified; then reset it and wait for the firmware's boot banner.

    Exit codes: 1 failed while flashing, 2 bad bundle or build, 3 no such port or port busy, 4 not a
    MicroPython board, 5 board does not fit (bytecode version, platform, profile, other gateway, no ROMFS),
    6 board flash full."""
    import tempfile

    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from controller import flash as fl
    from controller.board_serial import Board, BoardError

    err = Console(stderr=True)
    try:
        if (bundle is None) == (gateway is None):
            raise BoardError("bundle", "give one of --bundle FILE or --gateway ID")
        with tempfile.TemporaryDirectory() as tmp:
            path = bundle or _fetch_bundle(gateway, api, token, broker, Path(tmp) / "bundle.json")
            doc = fl.load_bundle(path, pubkey)
        if gateway and doc["gateway"] != gateway:
            raise BoardError("mismatch", f"bundle for another gateway: asked for {gateway}, got {doc['gateway']}")
        manifest, files = fl.load_build(build)
        if romfs and not manifest.get("romfs"):
            raise BoardError("bundle", f"--build {build} has no ROMFS image (built with --no-romfs)")
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                      TextColumn("[dim]{task.fields[file]}"), console=err, transient=True) as bar:
            task = bar.add_task(f"flashing {doc['gateway']} on {port}", total=None, file="")

            def step(file: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, file=file)

            with Board(port) as board:
                result = fl.flash(board, build, manifest, files, doc, romfs=romfs, reassign=reassign, step=step,
                                  note=lambda text: err.print(f"[yellow]{escape(text)}[/]", highlight=False))
    except BoardError as e:
        raise _board_error(e) from None
    if as_json:
        typer.echo(json.dumps(result, indent=1))
        return
    copied = result["copied"]
    console.print(f"[green]flashed[/] {result['gateway']} ({result['profile']}): firmware "
                  f"{result['firmware_version']} build {result['build_id']}, table v{result['table_version']}; "
                  f"{len(copied)} of {result['files']} files copied"
                  + (f" ({', '.join(copied[:6])}{', ...' if len(copied) > 6 else ''})" if copied else ", "
                     "the board had every other one already") + f", all {result['verified']} verified",
                  highlight=False)
    console.print(f"boot: {result['banner']}", markup=False, highlight=False)


@app.command("check")
def check_board(
    port: Annotated[str, typer.Option(help="The board's serial port")],
    wait: Annotated[float, typer.Option(help="When a check fails, restart the firmware and test again once it "
                                        "has connected to the broker and set its clock, for up to this many "
                                        "seconds (after a flash or power-on)")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="The results as JSON on stdout")] = False,
) -> None:
    """The running gateway's self-test over the serial console: firmware and build, profile, each modem, SIM
    and signal, clock, table, flash and heap free, broker. The firmware is stopped for a moment and restarted.
    Exit 1 when any check fails; the codes of `citygate flash` for port and board errors."""
    from rich.table import Table

    from controller.board_check import check
    from controller.board_serial import Board, BoardError

    try:
        with Board(port) as board:
            result = check(board, wait)
    except BoardError as e:
        raise _board_error(e) from None
    if as_json:
        typer.echo(json.dumps(result, indent=1))
    else:
        t = Table(title=f"citygate check {port}")
        for col in ("check", "result", "detail"):
            t.add_column(col)
        for name, ok, detail in result["checks"]:
            t.add_row(name, "[green]pass[/]" if ok else "[red]FAIL[/]", escape(str(detail)))
        console.print(t)
        console.print("[green]all checks pass[/]" if result["ok"] else "[red]some checks failed[/]")
    if not result["ok"]:
        raise typer.Exit(1)
