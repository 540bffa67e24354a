"""docs/deploy.md, followed on this machine so it cannot drift from what works.

tests/deploy_doc_layout.py reads the document's blocks and starts a layout as they say: the settings
file, the commands marked `deploy-test` (run as they stand with the real `citygate`), Mosquitto's lines
and the systemd unit, started the way systemd would start it (Environment=, then EnvironmentFile=s; %i
and ${VAR} in ExecStart=; its own process group; KillSignal=). Then each layout is checked: the
production settings refuse a missing secret key; the HTTP instances answer /healthz and serve every
metric the document says to watch; gateways signing in over TLS with their generated accounts have
every record stored exactly once, shared by the ingest instances; the document's query finds one
leader, and after kill -9 of its process group (batches in flight) another instance takes the lock
over and the rest of the traffic is still stored exactly once.
"""

from __future__ import annotations

import pytest

from tests.conditions import until
from tests.deploy_doc_layout import GATEWAYS, Layout, deployed

pytestmark = pytest.mark.slow
RECORDS = 240  # per gateway; half before the leader is killed, half after


def test_the_document_names_only_real_settings_and_both_layouts():
    for name in ("all", "split"):
        layout = Layout(name)
        assert layout.settings["CITYGATE_ENVIRONMENT"] == "production"
        assert not layout.unknown_settings(), f"settings the controller does not have: {layout.unknown_settings()}"
        assert [c[:3] for c in layout.runs] == [["citygate", "db", "upgrade"], ["citygate", "broker", "config"]]
        config = next(c for c in layout.runs if c[1] == "broker")
        accounts = {b for a, b in zip(config, config[1:], strict=False) if a == "--instance"}
        assert accounts == set(layout.instances) and len(accounts) >= 2, "an account per instance"
        assert len(layout.watched) >= 8
    assert {n: b.strip() for n, b in Layout("split").instances.items()} == {
        "api-1": "ROLE=api", "ingest-1": "ROLE=ingest", "ingest-2": "ROLE=ingest"}


@pytest.mark.parametrize("name", ["all", "split"])
def test_the_deploy_document_runs(tmp_path, name):
    layout = Layout(name)
    roles = {n: b.split("ROLE=", 1)[1].split()[0] for n, b in layout.instances.items()}
    with deployed(tmp_path, layout) as d:
        http = [p for n, p in d.procs.items() if roles[n] != "ingest"]
        ingest = [p for n, p in d.procs.items() if roles[n] != "api"]
        until(lambda: all(p.healthy() for p in http), 90, "the HTTP instances answering /healthz", every=0.3)
        until(lambda: all(p.up() for p in d.procs.values()), 60, "every instance up")
        for p in http:  # what section 7 says to watch is there
            assert p.healthy()["ingest"]["broker_connected"] is True
            assert layout.watched <= p.metric_names(), layout.watched - p.metric_names()
        gws = d.gateways()
        try:
            half, total = RECORDS // 2, len(GATEWAYS) * RECORDS
            until(lambda: all([g.pump(half) for g in gws]), 60, "the first half acked", every=0.02)
            assert d.stored() == {"records": total // 2, "keys": total // 2, "offered": total // 2}
            if name == "all":  # both took a share (an ingest-only instance serves no metrics to ask)
                assert all(p.metric("ingest_records_total") > 0 for p in ingest), "the ingest was not shared"

            old = d.procs[until(d.leader, 30, "a leader")]
            for g in gws:
                g.pump(RECORDS)  # batches in flight, some of them maybe to the leader's share
            old.kill()  # kill -9 of its whole group: its machine is gone
            new = until(lambda: d.leader() not in (None, old.name) and d.leader(), 20, "another one leading")
            until(lambda: all([g.pump(RECORDS) for g in gws]), 60, "the rest acked", every=0.02)
            assert d.stored() == {"records": total, "keys": total, "offered": total}
            assert "is now the leader" in d.procs[new].log.read_text()
            assert all(p.healthy() for p in http if p is not old)
        finally:
            for g in gws:
                g.close()


@pytest.fixture
def fleet_db(tmp_path, monkeypatch):
    from tests.controller.broker_config_rig import registered_db

    yield from registered_db(tmp_path, monkeypatch)


@pytest.mark.parametrize("args, field", [
    (["--instance", "cli"], "--instance"), (["--instance", "a b"], "--instance"),
    (["--instance", "x" * 33], "--instance"),
    (["--tls-cert", "{cert}"], "--tls-key"), (["--tls-key", "{cert}"], "--tls-cert"),
    (["--tls-cert", "{cert}", "--tls-key", "{missing}"], "--tls-key"),
])
def test_broker_config_refuses_bad_instances_and_half_tls_before_writing(fleet_db, tmp_path, args, field):
    from tests.controller.broker_config_rig import broker_config

    cert = tmp_path / "broker.crt"
    cert.write_text("not read here")
    out = tmp_path / "out"
    result = broker_config(out, *[a.format(cert=cert, missing=tmp_path / "nope.key") for a in args])
    assert result.exit_code == 2 and field in result.output, result.output
    assert not out.exists()
