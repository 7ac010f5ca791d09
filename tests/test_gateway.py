"""The hub gateway through real processes: laptops sync, replay, log and ingest with a
URL and a token (no cluster file), the same exactly-once protocol over HTTP, tokens
(create, list, revoke at once, expiry), scopes, request size and rate limits, JSON errors."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest
from click.testing import CliRunner

from cli import cli
from hub.errors import HubAuthError
from hub.http_client import HttpHub
from ledger import Ledger, sha256_hex
from nervous_system.recorder import Recorder
from syncer.syncer import Syncer
from tests.gateway_fixtures import GatewayProcess
from tests.hub_fixtures import fill, make_hub


def test_a_laptop_syncs_and_reads_through_the_gateway(ledger_path, gateway, make_token, shared_cluster_file, tenant):
    big = os.urandom(3 * 1024 * 1024)
    with Ledger(ledger_path) as lg:
        fill(lg, tenant, 30)
        rec = Recorder(lg, project_id="web", agent_id="coder", tenant_id=tenant)
        rec.file_change("assets/big.bin", big)
        rec.decision("long " * 60_000)                    # a body stored as a blob on the hub
        writer = HttpHub(gateway.url, make_token(tenant, "write"), tenant)
        report = Syncer(lg, writer, batch_events=7).sync_once()
        assert report.sent == 32 and report.refused == 0 and report.blob_bytes > 0
        again = Syncer(lg, writer).sync_once()
        assert again.sent == 0
        local = list(lg.events(order="seq"))
    direct = make_hub(shared_cluster_file, tenant)
    assert [r.event.event_id for r in direct.iter_log("web")] == [e.event_id for e in local]
    reader = HttpHub(gateway.url, make_token(tenant, "read"), tenant)
    assert reader.projects() == ["web"]
    assert [r.body for r in reader.iter_log("web", batch=5)] == [e.body for e in local]
    assert reader.read_blob("web", sha256_hex(big)) == big
    assert list(reader.laptops("web").values())[0][0] == local[-1].seq
    # a retried write (lost response) returns the same positions, writes nothing new
    outcomes = writer.write_events(local[:5])
    assert [o.inserted for o in outcomes] == [False] * 5
    assert [o.position for o in outcomes] == [e.hub_versionstamp for e in local[:5]]


def test_cli_uses_hub_url_and_token(ledger_path, gateway, make_token, tenant, monkeypatch):
    with Ledger(ledger_path) as lg:
        fill(lg, tenant, 12)
    monkeypatch.setenv("LEDGER_HUB_URL", gateway.url)
    monkeypatch.setenv("LEDGER_HUB_TOKEN", make_token(tenant, "admin"))
    base = ["--db", str(ledger_path), "--tenant", tenant]
    res = CliRunner().invoke(cli, [*base, "sync", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["sent"] == 12
    res = CliRunner().invoke(cli, [*base, "log", "--source", "hub", "--json"])
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.output)) == 12
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "--tenant", "someone-else", "sync"])
    assert res.exit_code == 1 and "the hub token is for tenant" in res.output


def test_tokens_scopes_revocation_and_expiry(gateway, make_token, shared_cluster_file, tenant, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["hub", "token", "create", "--cluster-file", shared_cluster_file, "--tenant", tenant,
                              "--scope", "read", "--label", "ci"])
    assert res.exit_code == 0, res.output
    token = res.output.split()[-1]
    reader = HttpHub(gateway.url, token, tenant)
    assert reader.scope == "read"
    with pytest.raises(HubAuthError, match="cannot do this"):
        reader.missing_blobs("web", ["0" * 64])
    listing = runner.invoke(cli, ["hub", "token", "list", "--cluster-file", shared_cluster_file, "--json"])
    infos = json.loads(listing.output)
    assert [i["label"] for i in infos if i["tenant"] == tenant] == ["ci"]
    assert token not in listing.output and "sha" not in listing.output
    res = runner.invoke(cli, ["hub", "token", "revoke", "--cluster-file", shared_cluster_file, token])
    assert res.exit_code == 0 and "revoked" in res.output
    with pytest.raises(HubAuthError, match="revoked"):
        reader.projects()                                # at once, same connection
    expired = make_token(tenant, "read", expires_ns=1)
    with pytest.raises(HubAuthError, match="expired"):
        HttpHub(gateway.url, expired, tenant)


def test_json_errors_size_and_rate_limits(python, shared_cluster_file, make_token, tenant, tmp_path):
    g = GatewayProcess(python, shared_cluster_file, tmp_path / "gw.log", rate=5, burst=5).start()
    try:
        headers = {"Authorization": f"Bearer {make_token(tenant, 'write')}"}
        r = httpx.post(g.url + "/v1/events", headers=headers, content=b"x" * (17 * 1024 * 1024))
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
        r = httpx.post(g.url + "/v1/events", headers=headers, content=b"{not json")
        assert r.status_code == 400 and "not JSON" in r.json()["error"]["message"]
        statuses = [httpx.get(g.url + "/v1/whoami", headers=headers).status_code for _ in range(12)]
        assert 429 in statuses and statuses[0] == 200
        time.sleep(1.5)                                  # the bucket refills (5 per second)
        r = httpx.get(g.url + "/v1/nowhere", headers=headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = httpx.post(g.url + "/v1/events", headers=headers, json={"events": ["not base64!"], "last_seq": "x"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    finally:
        g.kill()
    assert {r["reason"] for r in g.refusals()} >= {"too large", "rate limit", "bad_request", "no route"}


def test_the_syncer_daemon_sends_through_the_gateway(ledger_path, gateway, make_token, shared_cluster_file, tenant,
                                                     python):
    """The background syncer with a URL and a token (passed in its environment, never on
    its command line): no cluster file, no FoundationDB double in the laptop's process."""
    from syncer import daemon

    with Ledger(ledger_path) as lg:
        fill(lg, tenant, 20)
    token = make_token(tenant, "write")
    pid = daemon.start(ledger_path, tenant, hub_url=gateway.url, hub_token=token, interval=0.05,
                       launcher=[python, "-m", "syncer.daemon"])
    try:
        assert token not in open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
        with Ledger(ledger_path) as lg:
            deadline = time.monotonic() + 60
            while lg.outbox_status()["pending"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert lg.outbox_status()["pending"] == 0
    finally:
        daemon.stop(ledger_path, wait_s=30)
    assert len(list(make_hub(shared_cluster_file, tenant).iter_log("web"))) == 20
