"""`citygate bundle export | verify | pubkey`: one signed file per gateway for flashing offline."""

import json

import pytest
from sqlalchemy import select

from controller.models import Gateway, SecretAudit
from protocols import routing
from tests.controller.cli_world import compiled_reference_db, run

BROKER = "mqtt://10.0.0.5:1883"


@pytest.fixture
def db(tmp_path, monkeypatch):
    yield from compiled_reference_db(tmp_path, monkeypatch)


def export(tmp_path, gw="gw-toretsk-1"):
    path = tmp_path / f"{gw}.bundle"
    result = run("bundle", "export", "--gateway", gw, "--out", str(path), "--broker", BROKER)
    assert result.exit_code == 0, result.output
    return path


def test_export_rotates_audits_and_writes_a_signed_file_with_the_table(db, tmp_path):
    with db.session() as s:
        old_key = s.get(Gateway, "gw-toretsk-1").key_hex
    path = export(tmp_path)
    assert path.stat().st_mode & 0o777 == 0o600
    doc = json.loads(path.read_text())
    with db.session() as s:
        gw = s.get(Gateway, "gw-toretsk-1")
        assert gw.key_hex == doc["config"]["key"] != old_key, "the secrets in the file are a fresh rotation"
        assert [(a.gateway_id, a.action) for a in s.scalars(select(SecretAudit))] == [("gw-toretsk-1", "bundle")]
    table = routing.unseal(doc["table"].encode(), doc["config"]["key"], "gw-toretsk-1")
    assert table.version == doc["table_version"] == 1 and doc["config"]["broker"] == BROKER
    pub = run("bundle", "pubkey").stdout.strip()
    result = run("bundle", "verify", str(path), "--pubkey", pub, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["gateway"] == "gw-toretsk-1" and info["signed_by_trusted_key"] is True
    shown = run("bundle", "verify", str(path), "--pubkey", pub).output
    assert doc["config"]["key"] not in shown and doc["config"]["password"] not in shown, "secrets never printed"


@pytest.mark.parametrize("damage", ["broker", "truncate", "other-controller", "table"])
def test_verify_refuses_a_damaged_or_foreign_bundle(db, tmp_path, damage):
    path = export(tmp_path)
    pub = run("bundle", "pubkey").stdout.strip()
    doc = json.loads(path.read_text())
    if damage == "broker":
        doc["config"]["broker"] = "mqtt://evil.example:1883"
        path.write_text(json.dumps(doc))
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "other-controller":
        from controller import bundles

        doc = bundles.make(doc["config"], None, "another controller's secret " + "x" * 20)
        path.write_text(json.dumps(doc))
    else:
        doc["table"] = doc["table"].replace("mariupol-102", "donetsk-102")
        path.write_text(json.dumps(doc))
    result = run("bundle", "verify", str(path), "--pubkey", pub)
    assert result.exit_code == 2, result.output
    expect = {"broker": "altered", "truncate": "corrupted", "other-controller": "altered, or made by another",
              "table": "altered"}[damage]
    assert expect in " ".join(result.output.split()), result.output


def test_export_needs_a_broker_address_before_it_rotates_anything(db, tmp_path):
    with db.session() as s:
        old_key = s.get(Gateway, "gw-toretsk-1").key_hex
    result = run("bundle", "export", "--gateway", "gw-toretsk-1", "--out", str(tmp_path / "b"))
    assert result.exit_code == 2 and "embedded" in result.output
    with db.session() as s:
        assert s.get(Gateway, "gw-toretsk-1").key_hex == old_key and not list(s.scalars(select(SecretAudit)))
