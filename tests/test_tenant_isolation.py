"""Tenant isolation: a syncer/hub configured for tenant A neither reads nor writes B's
subspace, and B's events in A's local ledger are refused, never written to B."""

from __future__ import annotations

import pytest

from ledger import Ledger, sha256_hex
from nervous_system.recorder import Recorder
from hub.connection import open_database
from hub.errors import HubBlobMissing, TenantMismatch
from hub.layout import ROOT
from syncer.syncer import Syncer
from tests.hub_fixtures import FakeClock, make_hub


def _record(lg, tenant_id, project="web", content=b"secret of "):
    rec = Recorder(lg, project_id=project, agent_id="a", tenant_id=tenant_id, clock=FakeClock())
    rec.decision(f"plan of {tenant_id}")
    rec.file_change("src/secret.txt", content + tenant_id.encode())
    return rec


def test_a_sees_none_of_bs_data(tmp_path, cluster_file, tenant, other_tenant):
    a, b = tenant, other_tenant
    with Ledger(tmp_path / "b.db") as lb:
        _record(lb, b)
        hub_b = make_hub(cluster_file, b)
        assert Syncer(lb, hub_b).sync_once().sent == 2
        b_blob = sha256_hex(b"secret of " + b.encode())
    hub_a = make_hub(cluster_file, a)
    assert hub_a.projects() == []
    assert hub_a.read_log("web") == []
    assert list(hub_a.iter_log("web")) == []
    assert hub_a.missing_blobs("web", [b_blob]) == [b_blob]
    with pytest.raises(HubBlobMissing):
        hub_a.read_blob("web", b_blob)
    assert hub_a.time_range("web") == [] and hub_a.path_history("web", "src/secret.txt") == []
    # same project name under A gets its own directory and prefix
    with Ledger(tmp_path / "a.db") as la:
        _record(la, a)
        Syncer(la, hub_a).sync_once()
    assert [r.event.tenant_id for r in hub_a.read_log("web")] == [a, a]
    assert [r.event.tenant_id for r in hub_b.read_log("web")] == [b, b]
    import fdb

    db = open_database(cluster_file)
    da = fdb.directory.open(db, (ROOT, a, "web"))
    dbb = fdb.directory.open(db, (ROOT, b, "web"))
    assert da.key() != dbb.key()
    assert not da.key().startswith(dbb.key()) and not dbb.key().startswith(da.key())


def test_other_tenants_events_in_a_local_ledger_are_refused_not_written(tmp_path, cluster_file, tenant,
                                                                       other_tenant):
    import fdb

    a, b = tenant, other_tenant
    with Ledger(tmp_path / "mixed.db") as lg:
        _record(lg, a)
        _record(lg, b)
        _record(lg, a, project="api")
        report = Syncer(lg, make_hub(cluster_file, a)).sync_once()
        assert report.sent == 4 and report.refused == 2
        for e in lg.events(tenant_id=b):
            assert e.hub_versionstamp is None
            assert f"belongs to tenant {b!r}" in e.sync_error and f"configured for tenant {a!r}" in e.sync_error
        db = open_database(cluster_file)
        assert not fdb.directory.exists(db, (ROOT, b))
        assert fdb.directory.list(db, (ROOT, a)) == ["api", "web"]
        # the tenant's own syncer later sends them (the refusal is per syncer, not forever)
        report_b = Syncer(lg, make_hub(cluster_file, b)).sync_once()
        assert report_b.sent == 2 and report_b.refused == 0  # A's events are already synced
        assert all(e.hub_versionstamp for e in lg.events(tenant_id=b))
        assert all(e.hub_versionstamp and e.sync_error is None for e in lg.events(tenant_id=a))


def test_hub_refuses_writes_for_another_tenant(tmp_path, cluster_file, tenant, other_tenant):
    with Ledger(tmp_path / "l.db") as lg:
        _record(lg, other_tenant)
        hub_a = make_hub(cluster_file, tenant)
        with pytest.raises(TenantMismatch, match="belongs to tenant"):
            hub_a.write_events(lg.pending())
    assert make_hub(cluster_file, other_tenant).projects() == []


def test_no_hub_method_takes_a_tenant_argument():
    """Every tenant-scoped path is built from Hub.tenant_id: no public method accepts a tenant."""
    import inspect

    from hub.hub import Hub

    for name, fn in inspect.getmembers(Hub, inspect.isfunction):
        if name.startswith("_"):
            continue
        params = set(inspect.signature(fn).parameters)
        assert not params & {"tenant", "tenant_id"}, name
