"""The broker's CA in a board's config (`broker_ca`) for mqtts://: taken from CITYGATE_BROKER_CA, checked as
the firmware takes it (firmware/gw/tls.py), carried by `citygate gateway bundle`, the API's bundle and the
signed bundle file, and refused by name when missing or unusable (certificates made by tests/tlscerts.py)."""

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from controller import bundles
from controller.api import create_app
from controller.auth import create_token, create_user
from controller.models import Gateway, SecretAudit
from controller.settings import Settings, get_settings
from tests import tlscerts
from tests.controller.cli_world import compiled_reference_db, run

GW = "gw-toretsk-1"
BROKER = "mqtts://127.0.0.1:8883"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return tlscerts.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def db(tmp_path, monkeypatch):
    yield from compiled_reference_db(tmp_path, monkeypatch)


def use_ca(monkeypatch, path):
    monkeypatch.setenv("CITYGATE_BROKER_CA", str(path))
    get_settings.cache_clear()


def test_signed_bundle_carries_the_ca_and_seals_it(db, tmp_path, certs, monkeypatch):
    # a CA file as distributions ship them: comments around the certificate, which the board gets without
    (tmp_path / "ca-with-notes.pem").write_text("# the broker's CA\n" + (certs / "ca.crt").read_text() + "# end\n")
    use_ca(monkeypatch, tmp_path / "ca-with-notes.pem")
    out = tmp_path / "b.bundle"
    result = run("bundle", "export", "--gateway", GW, "--out", str(out), "--broker", BROKER)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["config"]["broker_ca"] == (certs / "ca.crt").read_text()
    info = json.loads(run("bundle", "verify", str(out), "--json").stdout)
    assert len(info["broker_ca"]) == 1 and info["broker_ca"][0].startswith("CN=citygate test ca sha256:")
    doc["config"]["broker_ca"] = (certs / "other-ca.crt").read_text()  # swapped for another CA in transit
    out.write_text(json.dumps(doc))
    with pytest.raises(bundles.BundleError) as e:
        bundles.read(out)
    assert e.value.field == "sig"
    doc["config"]["broker_ca"] = "-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n"
    out.write_text(json.dumps(doc))
    with pytest.raises(bundles.BundleError) as e:
        bundles.read(out)
    assert e.value.field == "config.broker_ca" and "not base64" in e.value.reason
    del doc["config"]["broker_ca"]
    out.write_text(json.dumps(doc))
    with pytest.raises(bundles.BundleError) as e:
        bundles.read(out)
    assert e.value.field == "config.broker_ca" and "mqtts://" in e.value.reason


def test_an_mqtts_bundle_without_a_usable_ca_is_refused_before_anything_rotates(db, tmp_path, certs,
                                                                                monkeypatch):
    with db.session() as s:
        old_key = s.get(Gateway, GW).key_hex
    cases = {None: "set CITYGATE_BROKER_CA", tmp_path / "missing.pem": "cannot read",
             certs / "server.key": "no PEM certificate", certs / "expired-ca.crt": "expired on"}
    many = tmp_path / "many.pem"
    many.write_text((certs / "ca.crt").read_text() * 5)
    cases[many] = "more than"
    for path, reason in cases.items():
        if path is None:
            monkeypatch.delenv("CITYGATE_BROKER_CA", raising=False)
            get_settings.cache_clear()
        else:
            use_ca(monkeypatch, path)
        result = run("bundle", "export", "--gateway", GW, "--out", str(tmp_path / "b"), "--broker", BROKER)
        assert result.exit_code == 2 and "broker_ca" in result.output and reason in result.output, (path,
                                                                                                   result.output)
        printed = run("gateway", "bundle", GW, "--broker", BROKER)
        assert printed.exit_code == 2 and reason in printed.output, printed.output
    with db.session() as s:
        assert s.get(Gateway, GW).key_hex == old_key and not list(s.scalars(select(SecretAudit)))
    with pytest.raises(bundles.BundleError, match="mqtts:// broker needs"):
        bundles.make({"id": GW, "broker": BROKER, "user": GW, "profile": "esp32-2gsm", "key": "ab" * 32,
                      "password": "x"}, None, "k" * 40)


def test_device_config_from_the_cli_and_the_api_carries_the_ca(db, certs, monkeypatch):
    use_ca(monkeypatch, certs / "ca.crt")
    printed = run("gateway", "bundle", GW, "--broker", BROKER)
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout)["broker_ca"] == (certs / "ca.crt").read_text()
    plain = json.loads(run("gateway", "bundle", GW, "--broker", "mqtt://127.0.0.1:1883").stdout)
    assert "broker_ca" not in plain  # a plain broker: nothing to check
    settings = Settings(secret_key="test-secret-" + "x" * 32, broker=BROKER, broker_ca=str(certs / "ca.crt"))
    with db.session() as s:
        token = create_token(s, create_user(s, "tech-ca", "technician"), "tests")
    with TestClient(create_app(db, settings=settings)) as client:
        r = client.get(f"/api/v1/gateways/{GW}/bundle", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        assert r.json()["broker"] == BROKER and r.json()["broker_ca"] == (certs / "ca.crt").read_text()
