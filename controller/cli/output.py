"""One way for every CLI listing to print: a table that stays readable at 80 columns, CSV or JSON.

A table whose columns cannot fit the terminal (a report has fifteen) is printed as one small block
per row instead of being squeezed until ids break: ids are never cut or wrapped. `--csv` and
`--json` give every column whatever the terminal, for scripts.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

CSV_OPTION = Annotated[bool, typer.Option("--csv", help="CSV on stdout (every column) instead of a table")]
JSON_OPTION = Annotated[bool, typer.Option("--json", help="JSON on stdout (every column) instead of a table")]


@dataclass
class Col:
    key: str
    title: str | None = None  # default: the key with spaces
    ident: bool = False  # an id: never wrapped, never cut
    right: bool = False  # numbers
    show: Callable[[Any], str] | None = None  # how the table shows a value (CSV and JSON get it raw)

    @property
    def heading(self) -> str:
        return self.title or self.key.replace("_", " ")


def text(v: Any) -> str:
    return "-" if v is None or v == "" else str(v)


def emit(console: Console, rows: list[dict], cols: list[Col], title: str, as_csv: bool = False,
         as_json: bool = False) -> None:
    """Print `rows` (dicts keyed by the columns' keys) as a table, CSV or JSON."""
    if as_csv and as_json:
        raise typer.BadParameter("give --csv or --json, not both")
    if as_json:
        typer.echo(json.dumps([{c.key: r.get(c.key) for c in cols} for r in rows], indent=1, default=str))
        return
    if as_csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow([c.key for c in cols])
        for r in rows:
            w.writerow(["" if r.get(c.key) is None else r.get(c.key) for c in cols])
        return
    shown = [[(c.show or text)(r.get(c.key)) for c in cols] for r in rows]
    table = Table(title=title)
    needed = 1
    for i, c in enumerate(cols):
        values = [Text.from_markup(cells[i]).plain for cells in shown]
        longest_word = max([len(w) for w in c.heading.split()] + [len(w) for v in values for w in v.split()] + [1])
        if c.ident or c.right:  # ids and numbers are read whole: as wide as the widest, never less
            width = max([longest_word] + [len(v) for v in values])
        else:  # free text wraps at spaces, within reason
            width = min(max([len(v) for v in values] + [len(c.heading)]), max(longest_word, 12))
        needed += width + 3
        table.add_column(c.heading, justify="right" if c.right else "left", no_wrap=c.ident or c.right,
                         min_width=width if (c.ident or c.right) else None, overflow="fold")
    for cells in shown:
        table.add_row(*cells)
    if needed <= console.width:
        console.print(table)
        return
    console.print(f"[bold]{title}[/]")  # too wide for this terminal: a block per row, headed by its id
    head = next((i for i, c in enumerate(cols) if c.ident), 0)
    for cells in shown:
        console.print(f"[bold]{cells[head]}[/]", soft_wrap=True)
        for i, (c, cell) in enumerate(zip(cols, cells, strict=True)):
            if i != head:
                console.print(f"  {c.heading}: {cell}", soft_wrap=True)
