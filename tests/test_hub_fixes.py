"""Hub fixes of issue 13 (section 2) and issue 12 item 8, each a test that failed before:
scans that stalled on 1007, directories cached past their removal, racing uploads of the
same blob, paged index reads, and conflicting content under an existing event id."""

from __future__ import annotations

import hashlib
import random
import threading

import fdb
import pytest

from hub.connection import open_database
from hub.layout import ROOT
from ledger import Ledger, sha256_hex
from nervous_system.recorder import Recorder
from schemas import AgentDecision, SwarmEvent, new_event_id
from syncer.status import sync_status
from syncer.syncer import Syncer
from tests import fdb_double
from tests.fdb_double import Fault
from tests.hub_fixtures import FakeClock, make_hub, requires_double


@pytest.fixture
def lg(ledger_path):
    with Ledger(ledger_path) as ledger:
        yield ledger


def _messages(lg, tenant, n, project="web", size=100):
    rec = Recorder(lg, project_id=project, agent_id="a", tenant_id=tenant, clock=FakeClock())
    for i in range(n):
        rec.message(f"m{i} " + "x" * size)
    return lg.pending()


@requires_double
def test_a_scan_continues_after_transaction_too_old_instead_of_stalling(lg, hub, cluster_file, tenant):
    """Half of the log reads fail with 1007 (as when a page takes over 5 s on a slow
    link). Retrying the whole page from its start never finishes; continuing after the
    last key read does."""
    rows = _messages(lg, tenant, 400, size=2_000)
    for start in range(0, len(rows), 100):
        hub.write_events(rows[start:start + 100])
    log_prefix = fdb.directory.open(open_database(cluster_file), (ROOT, tenant, "web"))["log"].key()
    with fdb_double.faults(cluster_file, Fault.too_old(on="read", count=None, probability=0.5,
                                                        key_prefix=log_prefix), seed=5):
        ids = [r.event.event_id for r in hub.iter_log("web", batch=1000)]
        fired = fdb_double.fault_stats(cluster_file)[0].fired
    assert ids == [r.event_id for r in rows]
    assert fired > 10


def test_writes_after_the_directory_was_removed_are_not_lost(lg, cluster_file, tenant):
    """A hub that wrote to a project keeps working after another process removed the
    tenant's directory: its next writes land in the new directory and are readable,
    not under the orphaned prefix."""
    hub = make_hub(cluster_file, tenant)
    rows = _messages(lg, tenant, 6)
    hub.write_events(rows[:3])
    assert len(hub.read_log("web")) == 3
    fdb.directory.remove(open_database(cluster_file), (ROOT, tenant))
    out = hub.write_events(rows[3:])
    assert all(o.inserted for o in out)
    fresh = make_hub(cluster_file, tenant)
    assert [r.event.event_id for r in fresh.read_log("web")] == [r.event_id for r in rows[3:]]
    assert fresh.positions("web", [r.event_id for r in rows[3:]]) == {o.event_id: o.position for o in out}


def _pause_after_first_commit(gate: threading.Event, released: threading.Event):
    """Patch Transaction.commit so the calling thread (the slow uploader) stops after its
    first commit until ``gate`` is set, letting the other uploader run in between."""
    original = fdb.impl.Transaction.commit
    slow = threading.current_thread()
    state = {"commits": 0}

    def commit(self):
        future = original(self)
        if threading.current_thread() is slow:
            state["commits"] += 1
            if state["commits"] == 1:
                future.wait()
                released.set()
                gate.wait(60)
        return future

    return original, commit


def test_two_uploads_of_the_same_blob_with_different_compression_stay_intact(cluster_file, tenant, monkeypatch):
    """Two laptops upload the same 20 MB blob at once, one compressed (zlib level 9) and
    one raw: their chunk writes interleave (each over many transactions). The blob must
    read back intact, and be reported present only once complete."""
    rng = random.Random(3)
    words = [bytes(rng.choice(b"abcdefghij") for _ in range(rng.randrange(3, 9))) for _ in range(500)]
    data = b" ".join(rng.choice(words) for _ in range(4_000_000))[: 20 * 1024 * 1024]
    digest = sha256_hex(data)
    zipped = make_hub(cluster_file, tenant)
    zipped.blob_level = 9
    raw = make_hub(cluster_file, tenant)
    raw.blob_level = 0
    gate, released = threading.Event(), threading.Event()
    errors = []

    def slow_upload():
        original, commit = _pause_after_first_commit(gate, released)
        monkeypatch.setattr(fdb.impl.Transaction, "commit", commit)
        try:
            zipped.upload_blobs("web", [(digest, data)], txn_bytes=300_000)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=slow_upload)
    t.start()
    assert released.wait(60)
    assert zipped.missing_blobs("web", [digest]) == [digest]   # half-written: not present
    assert raw.upload_blobs("web", [(digest, data)], txn_bytes=300_000) == (1, len(data))
    gate.set()
    t.join(120)
    assert not errors, errors
    assert raw.read_blob("web", digest) == data
    assert make_hub(cluster_file, tenant).read_blob("web", digest) == data
    assert raw.blob_header("web", digest).encoding == "raw"


def test_path_history_and_time_index_page(lg, hub, tenant):
    rec = Recorder(lg, project_id="web", agent_id="a", tenant_id=tenant, clock=FakeClock())
    for i in range(25):
        rec.file_change("src/a.py", f"v{i}\n".encode())
    rows = lg.pending()
    Syncer(lg, hub, batch_events=4).sync_once()
    all_positions = hub.path_history("web", "src/a.py")
    assert len(all_positions) == 25
    pages, after = [], None
    while True:
        page = hub.path_history("web", "src/a.py", after=after, limit=10)
        if not page:
            break
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [10, 10, 5] and sum(pages, []) == all_positions
    newest = hub.time_range("web", limit=3, reverse=True)
    assert [t for t, _ in newest] == sorted((r.time_ns for r in rows), reverse=True)[:3]


def _event(tenant, event_id, rationale):
    return SwarmEvent(event_id=event_id, timestamp=1_763_700_000_000_000_000, tenant_id=tenant,
                      project_id="web", agent_id="importer", decision=AgentDecision(rationale=rationale))


def test_different_content_under_an_existing_id_is_refused_loudly_and_never_synced(tmp_path, hub, tenant):
    """Issue 12 item 8: two laptops hold the same event id with different bytes. The
    second is refused with a conflict, kept visible in `sync status`, never marked synced;
    the hub keeps the first; the other events of its batch still go."""
    shared_id = new_event_id()
    with Ledger(tmp_path / "a.db") as a, Ledger(tmp_path / "b.db") as b:
        a.append(_event(tenant, shared_id, "imported with autocrlf=false"))
        assert Syncer(a, hub).sync_once().sent == 1
        b.append(_event(tenant, new_event_id(), "before"))
        b.append(_event(tenant, shared_id, "imported with autocrlf=true"))
        b.append(_event(tenant, new_event_id(), "after"))
        b.append(_event(tenant, new_event_id(), "other"))
        report = Syncer(b, hub).sync_once()
        assert report.refused == 1 and report.sent == 3
        stored = b.get(shared_id)
        assert stored.hub_versionstamp is None and "conflict" in stored.sync_error
        st = sync_status(b)
        assert st.refused == 1 and st.refused_events[0]["event_id"] == shared_id and not st.healthy
        assert Syncer(b, hub).sync_once().refused == 1          # still refused, still not synced
        assert b.get(shared_id).hub_versionstamp is None
        # the same bytes again are no conflict (a retry), and the hub kept the first version
        assert Syncer(a, hub).sync_once().refused == 0
    on_hub = {r.event.event_id: r.event for r in hub.iter_log("web")}
    assert on_hub[shared_id].decision.rationale == "imported with autocrlf=false"
    assert len(on_hub) == 4


def test_event_bodies_in_the_blob_store_are_content_addressed(lg, hub, tenant):
    rows = _messages(lg, tenant, 2, size=150_000)
    hub.write_events(rows)
    assert hub.missing_blobs("web", [hashlib.sha256(r.body).hexdigest() for r in rows]) == []
    assert [r.body for r in hub.iter_log("web", batch=1)] == [r.body for r in rows]
