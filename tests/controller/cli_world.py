"""The CLI tests' world: a SQLite database with the reference deployment seeded and compiled, the
settings pointed at it (embedded broker, no CA, no bundle signing key from the environment), and `run`."""

from __future__ import annotations

from typer.testing import CliRunner

from controller import reference
from controller.cli import app
from controller.compiler import compile_all
from controller.db import Database
from controller.settings import get_settings

runner = CliRunner()


def compiled_reference_db(tmp_path, monkeypatch):
    """Yield the Database (use as `yield from` in a fixture); the settings cache is cleared around it."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    monkeypatch.setenv("CITYGATE_DATABASE_URL", url)
    monkeypatch.setenv("CITYGATE_BROKER", "embedded")
    monkeypatch.delenv("CITYGATE_BROKER_CA", raising=False)
    monkeypatch.delenv("CITYGATE_BUNDLE_PUBKEY", raising=False)
    get_settings.cache_clear()
    database = Database(url)
    database.upgrade()
    with database.session() as s:
        reference.seed(s)
        compile_all(s)
    yield database
    get_settings.cache_clear()


def run(*args):
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})
