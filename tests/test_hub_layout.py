"""The hub's FoundationDB layout: directories, versionstamped log, idempotency keys,
indexes, chunked events and blobs, size limits."""

from __future__ import annotations

import os

import pytest

from ledger import Ledger, sha256_hex
from nervous_system.recorder import Recorder
from hub.connection import open_database
from hub.errors import HubBlobMissing, HubError
from hub.layout import ROOT
from hub.protocol import CHUNK_BYTES, VALUE_SIZE_LIMIT
from tests.hub_fixtures import FakeClock


@pytest.fixture
def lg(ledger_path):
    with Ledger(ledger_path) as ledger:
        yield ledger


def _record(lg, tenant, project="web", n=3):
    rec = Recorder(lg, project_id=project, agent_id="coder-1", tenant_id=tenant, clock=FakeClock())
    why = rec.decision("split the parser", confidence=0.7)
    rec.file_change("src/a.py", b"print('a')\n")
    rec.file_change("src/b.py", b"print('b')\n")
    for i in range(n):
        rec.message(f"note {i}")
    return why


def _all_under(cluster, directory):
    """Every committed (key, value) under a directory, read through the bindings."""
    db = open_database(cluster)
    start, stop = directory.range().start, directory.range().stop
    return [(kv.key, kv.value) for kv in db.get_range(start, stop)]


def test_events_land_in_tenant_project_directory_with_every_index(lg, hub, cluster_file, tenant):
    import fdb

    _record(lg, tenant)
    rows = lg.pending()
    for r in rows:
        sc = r.event.state_change
        if sc:
            hub.upload_blobs("web", [(sc.new_state_hash, lg.get_blob(sc.new_state_hash))])
    out = hub.write_events(rows, origin=lg.ledger_id, last_seq=rows[-1].seq)
    assert [o.inserted for o in out] == [True] * len(rows)
    # one commit: same 10-byte versionstamp, user versions 0..n-1 in order
    assert len({o.position[:10] for o in out}) == 1
    assert [int.from_bytes(o.position[10:], "big") for o in out] == list(range(len(rows)))

    db = open_database(cluster_file)
    assert fdb.directory.exists(db, (ROOT, tenant, "web"))
    d = fdb.directory.open(db, (ROOT, tenant, "web"))
    names = {d.unpack(k)[0] for k, _ in _all_under(cluster_file, d)}
    assert names == {"log", "ids", "time", "path", "blob", "laptops"}

    # ids index -> the same positions the write returned
    assert hub.positions("web", [r.event_id for r in rows]) == {o.event_id: o.position for o in out}
    # log in hub order holds the exact bytes
    recs = hub.read_log("web")
    assert [r.body for r in recs] == [r.body for r in rows]
    assert [r.position for r in recs] == [o.position for o in out]
    assert all(len(r.versionstamp) == 10 for r in recs)
    assert recs[0].event.decision.rationale == "split the parser"
    # time index: event times with positions
    assert hub.time_range("web") == sorted((r.time_ns, o.position) for r, o in zip(rows, out))
    # path index
    a_pos = [o.position for r, o in zip(rows, out) if r.event.state_change and
             r.event.state_change.target_resource == "src/a.py"]
    assert hub.path_history("web", "src/a.py") == a_pos
    # laptop progress
    laptops = hub.laptops("web")
    assert laptops[lg.ledger_id][0] == rows[-1].seq
    assert laptops[lg.ledger_id][2] == out[0].position[:10]
    assert hub.projects() == ["web"]


def test_write_is_idempotent_on_event_id(lg, hub, cluster_file, tenant):
    import fdb

    _record(lg, tenant)
    rows = [r for r in lg.pending() if r.kind != "state_change"]
    first = hub.write_events(rows)
    d = fdb.directory.open(open_database(cluster_file), (ROOT, tenant, "web"))
    before = _all_under(cluster_file, d)
    again = hub.write_events(rows)
    assert [o.inserted for o in again] == [False] * len(rows)
    assert [o.position for o in again] == [o.position for o in first]
    assert _all_under(cluster_file, d) == before
    # a mixed batch writes only the new one
    new = Recorder(lg, project_id="web", agent_id="x", tenant_id=tenant).message("late")
    mixed = rows + [lg.get(new)]
    out = hub.write_events(mixed)
    assert [o.inserted for o in out] == [False] * len(rows) + [True]
    assert len(hub.read_log("web")) == len(rows) + 1


def test_read_log_pages_never_split_a_commit(lg, hub, tenant):
    rec = Recorder(lg, project_id="web", agent_id="a", tenant_id=tenant, clock=FakeClock())
    for i in range(7):
        rec.message(f"m{i}")
    rows = lg.pending()
    hub.write_events(rows[:3])   # commit 1: 3 events
    hub.write_events(rows[3:5])  # commit 2: 2 events
    hub.write_events(rows[5:])   # commit 3: 2 events
    page = hub.read_log("web", None, 2)
    assert len(page) == 3  # ran past the limit to finish commit 1
    page2 = hub.read_log("web", page[-1].versionstamp, 1)
    assert [r.event.event_id for r in page2] == [r.event_id for r in rows[3:5]]
    # 12-byte position: resume after one event inside a commit
    mid = hub.read_log("web", page[0].position, 1)
    assert mid[0].event.event_id == rows[1].event_id
    # until (inclusive)
    assert len(hub.read_log("web", None, 100, until=page2[-1].versionstamp)) == 5
    assert [r.event.event_id for r in hub.iter_log("web", batch=1)] == [r.event_id for r in rows]
    with pytest.raises(HubError, match="10 or 12 bytes"):
        hub.read_log("web", b"\x00" * 5)
    assert hub.read_log("nothing-here") == []


def test_large_event_body_is_stored_as_a_blob_under_the_value_limit(lg, hub, cluster_file, tenant):
    """A body over one value goes to the blob store (its own small transactions); the log
    entry names it; every value stays under FoundationDB's 100,000-byte limit."""
    import fdb

    rec = Recorder(lg, project_id="web", agent_id="a", tenant_id=tenant)
    rec.message("x" * 250_000)
    rows = lg.pending()
    assert len(rows[0].body) > 2 * CHUNK_BYTES
    hub.write_events(rows)
    d = fdb.directory.open(open_database(cluster_file), (ROOT, tenant, "web"))
    kvs = _all_under(cluster_file, d)
    log_kvs = [(k, v) for k, v in kvs if d.unpack(k)[0] == "log"]
    assert len(log_kvs) == 1 and len(log_kvs[0][1]) < 200
    assert hub.missing_blobs("web", [sha256_hex(rows[0].body)]) == []
    assert all(len(v) <= VALUE_SIZE_LIMIT for _, v in kvs)
    assert hub.read_log("web")[0].body == rows[0].body
    assert hub.get("web", hub.read_log("web")[0].position).body == rows[0].body


def test_blobs_chunked_written_once_and_verified(hub, cluster_file, tenant):
    import fdb

    data = os.urandom(5 * 1024 * 1024)  # incompressible 5 MB
    digest = sha256_hex(data)
    assert hub.missing_blobs("web", [digest]) == [digest]
    n, stored = hub.upload_blobs("web", [(digest, data)], txn_bytes=500_000)
    assert (n, stored) == (1, len(data))
    header = hub.blob_header("web", digest)
    assert header.chunks == -(-len(data) // CHUNK_BYTES) and header.encoding == "raw"
    assert hub.read_blob("web", digest) == data
    assert hub.missing_blobs("web", [digest]) == []
    assert hub.upload_blobs("web", [(digest, data)]) == (0, 0)  # written once per hash

    d = fdb.directory.open(open_database(cluster_file), (ROOT, tenant, "web"))
    kvs = _all_under(cluster_file, d)
    assert all(len(v) <= VALUE_SIZE_LIMIT for _, v in kvs)
    # small compressible blobs share a transaction and are zlib-encoded
    small = [(sha256_hex(b), b) for b in (b"a" * 1000, b"b" * 2000, b"hello")]
    assert hub.upload_blobs("web", small)[0] == 3
    assert hub.blob_header("web", small[0][0]).encoding == "zlib"
    assert [hub.read_blob("web", s) for s, _ in small] == [b for _, b in small]
    with pytest.raises(HubBlobMissing, match="not on the hub"):
        hub.read_blob("web", "0" * 64)
    with pytest.raises(HubError, match="hashes to"):
        hub.upload_blobs("web", [("1" * 64, b"not that")])


def test_names_are_validated(cluster_file):
    from hub.hub import Hub

    db = open_database(cluster_file)
    for bad in ("", "a/b", "x\x00", "y" * 129):
        with pytest.raises(HubError, match="tenant"):
            Hub(db, bad)
    with pytest.raises(HubError, match="project"):
        Hub(db, "ok").read_log("../other")
