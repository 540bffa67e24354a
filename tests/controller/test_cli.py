import json

from typer.testing import CliRunner

from controller.cli import app
from controller.reference import SWITCH_OVER, table

runner = CliRunner()


def test_preview_walks_the_reference_deployment():
    result = runner.invoke(app, ["preview"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.startswith("│ ")
             and line.split("│")[1].strip()}
    assert "dial toretsk-duty" in lines["102 from Toretsk, day before switch-over"]
    assert "dial mariupol-102 → mariupol-reserve" in lines["102 from Toretsk, switch-over day"]
    assert "callback" in lines["505 info line at 08:30"] and "after_hours" in lines["505 info line at 08:30"]
    assert "closed_day" in lines["505 on Independence Day"]
    assert "reject" in lines["old line into occupied Donetsk"] and "denied" in lines["old line into occupied Donetsk"]


def test_preview_of_one_call_at_a_local_time():
    result = runner.invoke(app, ["preview", "--gateway", "gw-toretsk-1", "--at", "2016-07-21T00:00"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "mariupol-102" in result.output and "2016-07-21 00:00" in result.output


def test_table_check_names_the_bad_field(tmp_path):
    doc = table("gw-toretsk-1")
    i = next(i for i, r in enumerate(doc["routes"]) if r.get("hours"))
    doc["routes"][i]["hours"][0]["end"] = "25:00"
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    result = runner.invoke(app, ["table", "check", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert f"routes[{i}].hours[0].end" in result.output and "not a time of day" in result.output


def test_table_seal_output_unseals(tmp_path):
    from protocols import routing

    path = tmp_path / "t.json"
    path.write_text(json.dumps(table("gw-toretsk-1", version=3)))
    key = "ab" * 32
    result = runner.invoke(app, ["table", "seal", str(path), "--key", key])
    assert result.exit_code == 0, result.output
    t = routing.unseal(result.output.strip().encode(), key, "gw-toretsk-1")
    police = next(r for r in t.routes if r.id == "police-102")
    assert t.version == 3 and police.start == SWITCH_OVER
