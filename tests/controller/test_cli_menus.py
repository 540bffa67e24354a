"""`citygate menu`: the menu service from the command line, on a seeded SQLite database; bad input names
the option or field and exits 2."""

import json

from typer.testing import CliRunner

from controller.cli import app
from controller.compiler import latest_table
from tests.controller.test_cli_admin import db  # noqa: F401  (the seeded database fixture)

runner = CliRunner()
ENV = {"COLUMNS": "200"}


def run(*args):
    return runner.invoke(app, list(args), env=ENV)


def test_menu_add_list_show_remove(db):  # noqa: F811
    r = run("menu", "add", "--name", "info-menu", "--service", "505", "--prompt", "info-menu-v1",
            "--option", "0=info-505:Operator", "--option", "2=mariupol-102,mariupol-reserve:Police",
            "--default", "0", "--city", "Mariupol")
    assert r.exit_code == 0, r.output
    with db.session() as s:
        doc = json.loads(latest_table(s, "gw-mariupol-1").body)
    assert doc["menus"]["info-menu"]["options"]["2"]["targets"] == ["mariupol-102", "mariupol-reserve"]
    r = run("menu", "list", "--json")
    assert r.exit_code == 0 and [m["name"] for m in json.loads(r.output)] == ["info-menu"]
    r = run("menu", "show", "info-menu")
    assert r.exit_code == 0 and "2=mariupol-102+mariupol-reserve (Police)" in r.output
    assert run("menu", "remove", "info-menu").exit_code == 0
    with db.session() as s:
        assert "menus" not in json.loads(latest_table(s, "gw-mariupol-1").body)


def test_menu_errors_name_what_to_fix(db):  # noqa: F811
    base = ["menu", "add", "--name", "m", "--service", "505", "--prompt", "p", "--default", "0"]
    for extra, field in ((["--option", "0"], "--option"), (["--option", "0=nowhere"], "menus.options.0.targets[0]"),
                         (["--option", "0=info-505", "--service", "999"], "--service"),
                         (["--option", "0=info-505", "--city", "Atlantis"], "--city"),
                         (["--option", "x=info-505"], "menus.options.x")):
        r = run(*base, *extra)
        assert r.exit_code == 2, (extra, r.output)
        assert field in r.output, (field, r.output)
    r = run("menu", "remove", "nothing")
    assert r.exit_code == 2 and "NAME" in r.output
