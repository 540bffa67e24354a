"""Closed dates packed four bytes a date (protocols.calendars): the table's `closed` list and the routes'
calendars close exactly the dates the table names, the same on MicroPython as on CPython, and a table of
the most dates a 32 KiB body holds stays small on a board (kept as tuples of strings, the calendars shape
took more than 300 KB of free heap on the unix port)."""

import json
import os
import re
import sys

import pytest

from emulator import micropython
from hil_tests.v11_tables import HOLIDAY, calendars_table, closed_table
from protocols import calendars, routing
from protocols.routeset import CLOSED

sys.path.insert(0, os.path.dirname(__file__))
from mpy_closed_dates import main as run_here  # noqa: E402

SCRIPT = "tests/protocols/mpy_closed_dates.py"
SHAPES = {"closed": closed_table, "calendars": calendars_table}


def _named_dates(doc, i):
    """The dates that close route i, read from the document as DESIGN §4/§5a say."""
    route = doc["routes"][i]
    if "closed" not in route:
        return set(doc.get("closed") or ())
    return {d for name in route["closed"] for d in doc["calendars"][name]}


def _probe_dates(doc):
    """Every date the table names, and neighbours it does not (a day before and after each of some)."""
    named = set(doc.get("closed") or ()) | {d for c in doc.get("calendars", {}).values() for d in c}
    near = set()
    for d in sorted(named)[::37]:
        y, m, day = int(d[:4]), int(d[5:7]), int(d[8:])
        near |= {f"{y:04d}-{m:02d}-{day - 1:02d}" if day > 1 else f"{y - 1:04d}-12-31", f"{y:04d}-{m:02d}-29"}
    return sorted(named | near | {"2016-08-24", "9999-12-31", "0001-01-01"})


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_packed_dates_close_exactly_the_named_dates(shape):
    body = SHAPES[shape]("gw-dates-1")
    doc, table = json.loads(body), routing.load(body)
    dates = _probe_dates(doc)
    for i in range(len(doc["routes"])):
        own = table.routes.rest_at(i)[CLOSED]
        packed = table.closed if own is None else own
        want = _named_dates(doc, i)
        assert {d for d in dates if d in packed} == want, i
        assert set(packed) == want and len(packed) == len(want), i
    assert routing.load(body).routes == table.routes  # routes still compare by content


def test_a_date_matches_only_at_a_whole_date():
    # 2030-01-02 is 07 ee 01 02; 01-02 then 2030 (07 ee) inside the pieces spell it across two dates
    dates = calendars.Dates(calendars.pack(["2029-12-01", "2030-01-01", "2030-02-07", "2030-01-02"][:3]))
    assert "2030-01-02" not in dates and "2030-01-01" in dates
    assert "" not in dates and "2030-1-1" not in dates and None not in dates
    assert list(dates) == ["2029-12-01", "2030-01-01", "2030-02-07"]


def test_a_closed_list_bigger_than_a_piece_spans_pieces():
    many = [f"{2000 + i // 336:04d}-{i // 28 % 12 + 1:02d}-{i % 28 + 1:02d}" for i in range(1000)]
    dates = calendars.Dates(calendars.pack(many))
    assert len(dates.pieces) == 4 and max(len(p) for p in dates.pieces) <= calendars.PIECE
    assert all(d in dates for d in many) and list(dates) == many


def test_a_bad_closed_date_is_named_by_its_place():
    doc = json.loads(closed_table("gw-dates-1"))
    doc["closed"][1234] = "2026-02-30"
    with pytest.raises(routing.TableError) as e:
        routing.load(json.dumps(doc, separators=(",", ":")))
    assert (e.value.path, e.value.reason) == ("closed[1234]", "must be a date YYYY-MM-DD")
    doc["closed"] = "2026-01-01"
    with pytest.raises(routing.TableError) as e:
        routing.load(json.dumps(doc, separators=(",", ":")))
    assert (e.value.path, e.value.reason) == ("closed", "must be a list")


@pytest.mark.micropython
@pytest.mark.parametrize("shape,most_kept", [("closed", 24_000), ("calendars", 36_000)])
def test_the_most_dates_decide_alike_on_both_interpreters_and_stay_small(shape, most_kept, tmp_path, capsys):
    body = SHAPES[shape]("gw-dates-1")
    assert len(body) > 32_000
    (tmp_path / "body.json").write_bytes(body)
    (tmp_path / "dates.txt").write_text("\n".join(_probe_dates(json.loads(body))))
    result = micropython.run(SCRIPT, str(tmp_path / "body.json"), str(tmp_path / "dates.txt"))
    assert result.returncode == 0, result.stdout + result.stderr
    run_here(str(tmp_path / "body.json"), str(tmp_path / "dates.txt"))
    here = capsys.readouterr().out
    strip = lambda out: [line for line in out.splitlines() if not line.startswith("kept=")]  # noqa: E731
    assert strip(result.stdout) == strip(here)
    holiday = next(json.loads(line) for line in strip(here) if HOLIDAY in line)
    assert holiday["decision"] == ["forward", "closed_day", "r0", ["b"]]
    kept = int(re.search(r"kept=(-?\d+)", result.stdout).group(1))
    print(shape, "kept on the unix port:", kept)
    assert 0 < kept < most_kept, kept
