"""The store-and-forward syncer: batches, idempotency, versionstamp read-back, resume,
oversize events, status, and the `ledger sync` commands."""

from __future__ import annotations

import json
import os
import threading

import pytest
from click.testing import CliRunner

from ledger import Ledger, sha256_hex
from cli import cli
from nervous_system.recorder import Recorder
from hub.protocol import MAX_HUB_EVENT_BYTES
from syncer.status import sync_status
from syncer.syncer import Syncer
from tests import fdb_double
from tests.hub_fixtures import FakeClock, fill, requires_double


@pytest.fixture
def lg(ledger_path):
    with Ledger(ledger_path) as ledger:
        yield ledger


def _hub_ids(hub, project="web"):
    return [r.event.event_id for r in hub.iter_log(project)]


def test_one_pass_sends_everything_once_in_order_and_marks_positions(lg, hub, tenant):
    fill(lg, tenant, 60)
    report = Syncer(lg, hub, batch_events=7).sync_once()
    assert report.sent == 60 and report.already_on_hub == 0 and report.refused == 0
    assert report.batches == 9
    local = list(lg.events(order="seq"))
    assert _hub_ids(hub) == [e.event_id for e in local]
    positions = hub.positions("web", [e.event_id for e in local])
    assert all(e.hub_versionstamp == positions[e.event_id] for e in local)
    assert lg.outbox_status()["pending"] == 0
    # blobs complete for every file change
    for e in local:
        sc = e.event.state_change
        if sc:
            assert hub.read_blob("web", sc.new_state_hash) == lg.get_blob(sc.new_state_hash)
    # a second pass has nothing to do
    again = Syncer(lg, hub).sync_once()
    assert (again.sent, again.batches) == (0, 0)


def test_batches_are_bounded_by_bytes(lg, hub, tenant):
    rec = Recorder(lg, project_id="web", agent_id="a", tenant_id=tenant)
    for i in range(12):
        rec.message("y" * 30_000)
    report = Syncer(lg, hub, batch_bytes=100_000, batch_events=500).sync_once()
    assert report.sent == 12
    assert report.batches == 4  # 3 x ~30 KB per 100 KB transaction


@requires_double
def test_commit_unknown_result_that_committed_is_not_duplicated(lg, hub, cluster_file, tenant):
    fill(lg, tenant, 20)
    with fdb_double.faults(cluster_file, fdb_double.Fault.commit_unknown_result(applied=True, count=3)):
        report = Syncer(lg, hub, batch_events=5).sync_once()
    local = list(lg.events(order="seq"))
    assert _hub_ids(hub) == [e.event_id for e in local]  # exactly once each
    assert lg.outbox_status()["pending"] == 0
    assert report.sent + report.already_on_hub == 20


@requires_double
def test_rows_sent_but_not_marked_are_found_by_their_idempotency_key(lg, hub, tenant):
    """A crash between the hub commit and mark_synced: the next pass finds them."""
    fill(lg, tenant, 10)
    rows = lg.pending()
    written = hub.write_events(rows[:6])  # committed, but the "syncer" died before marking
    report = Syncer(lg, hub).sync_once()
    assert report.already_on_hub == 6 and report.sent == 4
    assert [lg.get(r.event_id).hub_versionstamp for r in rows[:6]] == [o.position for o in written]
    assert len(_hub_ids(hub)) == 10


def test_five_megabyte_file_change_goes_through(lg, hub, tenant):
    data = os.urandom(5 * 1024 * 1024)
    rec = Recorder(lg, project_id="web", agent_id="a", tenant_id=tenant)
    rec.file_change("assets/big.bin", data)
    report = Syncer(lg, hub).sync_once()
    assert report.sent == 1 and report.blobs == 1 and report.blob_bytes == len(data)
    assert hub.read_blob("web", sha256_hex(data)) == data
    assert lg.outbox_status()["pending"] == 0


def test_event_too_large_for_any_transaction_is_refused_and_visible(lg, hub, tenant):
    rec = Recorder(lg, project_id="web", agent_id="a", tenant_id=tenant, clock=FakeClock())
    rec.message("before")
    huge = rec.decision("r" * (MAX_HUB_EVENT_BYTES + 10))
    rec.message("after")
    report = Syncer(lg, hub).sync_once()
    assert report.sent == 2 and report.refused == 1
    stored = lg.get(huge)
    assert stored.hub_versionstamp is None
    assert "too large for the hub" in stored.sync_error and "9,000,000" in stored.sync_error
    assert huge not in _hub_ids(hub)
    st = sync_status(lg)
    assert st.pending == 1 and st.refused == 1 and not st.healthy
    assert st.refused_events[0]["event_id"] == huge
    # a later pass refuses it again without rewriting or failing
    assert Syncer(lg, hub).sync_once().refused == 1
    # and the CLI shows it
    res = CliRunner().invoke(cli, ["--db", str(lg.path), "sync", "status", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["refused"] == 1 and "too large" in data["refused_events"][0]["error"]
    text = CliRunner().invoke(cli, ["--db", str(lg.path), "sync", "status"]).output
    assert "Refused:         1 events" in text and "too large for the hub" in text


def test_stop_between_batches_then_resume(lg, hub, tenant):
    fill(lg, tenant, 30)
    stop = threading.Event()
    seen = []

    def progress(report):
        seen.append(report.sent)
        stop.set()

    first = Syncer(lg, hub, batch_events=10).sync_once(stop=stop, progress=progress)
    assert first.stopped and first.sent == 10
    assert lg.outbox_status()["pending"] == 20
    second = Syncer(lg, hub, batch_events=10).sync_once()
    assert second.sent == 20 and second.already_on_hub == 0
    assert _hub_ids(hub) == [e.event_id for e in lg.events(order="seq")]


def test_status_records_last_success_and_last_error(lg, hub, tenant):
    fill(lg, tenant, 5)
    st = sync_status(lg)
    assert st.pending == 5 and st.last_success_ns is None and st.oldest_pending_age_s >= 0
    Syncer(lg, hub).sync_once()
    st = sync_status(lg)
    assert st.pending == 0 and st.synced == 5 and st.last_success_ns and st.last_report["sent"] == 5
    assert st.healthy


def test_cli_sync_needs_a_hub(ledger_path):
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "sync"])
    assert res.exit_code == 1
    assert "no hub configured: set FDB_CLUSTER_FILE or pass --cluster-file" in res.output
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "sync", "--cluster-file", "/nonexistent/fdb.cluster"])
    assert res.exit_code == 1 and "does not exist" in res.output


def test_cli_sync_one_pass(lg, cluster_file, tenant, hub, monkeypatch):
    fill(lg, tenant, 12)
    res = CliRunner().invoke(cli, ["--db", str(lg.path), "--tenant", tenant, "sync",
                                   "--cluster-file", cluster_file, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["sent"] == 12
    monkeypatch.setenv("FDB_CLUSTER_FILE", cluster_file)
    res = CliRunner().invoke(cli, ["--db", str(lg.path), "--tenant", tenant, "sync"])
    assert res.exit_code == 0, res.output
    assert "Sent 0 events" in res.output
    assert len(_hub_ids(hub)) == 12
