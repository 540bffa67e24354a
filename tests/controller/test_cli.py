import json

from typer.testing import CliRunner

from controller.cli import SCENARIOS, app
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


def test_table_check_refuses_a_port_the_board_does_not_have(tmp_path):
    """505 on fxo1 of a board without FXO, or a centre dialled via a module it lacks: named, exit 2."""
    doc = table("gw-sloviansk-1")
    i = next(i for i, r in enumerate(doc["routes"]) if r["id"] == "info-505")
    doc["routes"][i]["port"] = "fxo1"
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    result = runner.invoke(app, ["table", "check", str(path), "--profile", "esp32-2gsm"], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert f"routes[{i}].port" in result.output and "not a port of a esp32-2gsm board" in result.output
    assert "targets.mariupol-102.via[0]" not in result.output, "gsm2 is a port of esp32-2gsm"
    result = runner.invoke(app, ["table", "check", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and f"routes[{i}].port" in result.output, "a reference gateway's own profile"


def test_the_reference_tables_fit_the_reference_board():
    """`table reference` output passes `table check` for its own board: preview, demo and tables agree."""
    from controller import reference
    from controller.cli import ports_outside_profile
    from protocols import routing

    for gw in reference.CITIES:
        assert ports_outside_profile(routing.load(table(gw)), reference.PROFILE) == [], gw
    ports = {port for _, gw, port, *_ in SCENARIOS}
    assert ports <= set(reference.PORTS), "preview's scenarios use the reference board's inbound ports"


def test_the_cli_never_makes_an_empty_database_silently(tmp_path, monkeypatch):
    """No CITYGATE_DATABASE_URL and no ./citygate.db: every database command says how to point it at one;
    only `db upgrade` creates a database, and says where."""
    from controller.settings import get_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CITYGATE_DATABASE_URL", raising=False)
    monkeypatch.delenv("CITYGATE_CONFIG", raising=False)
    get_settings.cache_clear()
    try:
        for args in (["gateway", "list"], ["user", "add", "alice", "--role", "admin"], ["report", "calls"]):
            result = runner.invoke(app, args, env={"COLUMNS": "200"})
            assert result.exit_code == 2, (args, result.output)
            out = " ".join(result.output.split())
            assert "no database at" in out and "CITYGATE_DATABASE_URL" in out and "citygate db upgrade" in out, out
            assert not (tmp_path / "citygate.db").exists(), args
        result = runner.invoke(app, ["db", "upgrade"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and (tmp_path / "citygate.db").exists(), result.output
        result = runner.invoke(app, ["user", "add", "alice", "--role", "admin"], env={"COLUMNS": "200"})
        assert result.exit_code == 0 and "token (shown once)" in result.output, result.output
    finally:
        get_settings.cache_clear()


def test_rollout_start_through_the_api_says_what_is_missing(tmp_path):
    from controller.brokers import free_port

    api = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = runner.invoke(app, ["rollout", "start", "--api", api], env={"COLUMNS": "200", "CITYGATE_TOKEN": ""})
    assert result.exit_code == 2 and "the API needs a token" in result.output, result.output
    result = runner.invoke(app, ["rollout", "start", "--api", api, "--token", "t"], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and f"cannot reach {api}" in " ".join(result.output.split()), result.output
