"""The local ledger: appends, idempotency, blobs, queries, bad input changes nothing."""

from __future__ import annotations

import sqlite3
import time

import pytest

from ledger import (
    DuplicateEventId,
    EventNotFound,
    EventTooLarge,
    Ledger,
    MissingContent,
    AmbiguousProject,
    ProjectNotFound,
    sha256_hex,
)
from ledger.errors import InvalidEvent
from schemas import AgentDecision, AgentMessage, StateChange, SwarmEvent, new_event_id


def decision(project="web", t=None, **kw):
    return SwarmEvent(event_id=new_event_id(), timestamp=t or time.time_ns(), tenant_id="acme",
                      project_id=project, agent_id=kw.pop("agent", "a1"),
                      decision=AgentDecision(rationale=kw.pop("why", "because")), **kw)


def change(path, data, op="create", prev="", project="web", t=None, mode="regular", **kw):
    envelope = {k: kw.pop(k) for k in ("caused_by", "related_commit_hash") if k in kw}
    return SwarmEvent(event_id=new_event_id(), timestamp=t or time.time_ns(), tenant_id="acme",
                      project_id=project, agent_id=kw.pop("agent", "a1"), **envelope,
                      state_change=StateChange(target_resource=path, operation=op, previous_state_hash=prev,
                                               new_state_hash=sha256_hex(data) if data is not None else "",
                                               file_mode=mode if data is not None else "unspecified", **kw))


def count_rows(path, table="events"):
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_append_is_idempotent_on_event_id(ledger_path):
    lg = Ledger(ledger_path)
    e = decision()
    first = lg.append(e)
    again = lg.append(e)
    assert first.inserted and not again.inserted and first.seq == again.seq
    assert lg.count() == 1
    altered = e.model_copy(update={"agent_id": "someone-else"})
    with pytest.raises(DuplicateEventId, match="idempotency"):
        lg.append(altered)
    assert lg.get(e.event_id).event == e


def test_content_is_stored_once_and_compressed(ledger_path):
    lg = Ledger(ledger_path)
    data = b"hello world\n" * 1000
    lg.append(change("a.txt", data), {sha256_hex(data): data})
    lg.append(change("b.txt", data), {sha256_hex(data): data})
    assert count_rows(ledger_path, "blobs") == 1
    with sqlite3.connect(ledger_path) as conn:
        encoding, stored_len, size = conn.execute("SELECT encoding, length(data), size FROM blobs").fetchone()
    assert encoding == "zstd" and stored_len < size == len(data)
    assert lg.get_blob(sha256_hex(data)) == data


def test_corrupt_blob_is_detected(ledger_path):
    lg = Ledger(ledger_path)
    digest = lg.put_blob(b"x" * 10, tenant_id="default")
    with sqlite3.connect(ledger_path) as conn:
        conn.execute("UPDATE blobs SET data = ? WHERE hash = ?", (b"y" * 10, digest))
    with pytest.raises(Exception, match="corrupt"):
        lg.get_blob(digest)


def test_a_bad_event_in_a_batch_writes_nothing(ledger_path):
    lg = Ledger(ledger_path)
    good = [decision(), change("ok.txt", b"ok")]
    missing = change("missing.txt", b"never supplied")
    with pytest.raises(MissingContent, match="missing.txt"):
        lg.append_many([*good, missing], {sha256_hex(b"ok"): b"ok"})
    assert count_rows(ledger_path) == 0
    assert count_rows(ledger_path, "blobs") == 0
    assert count_rows(ledger_path, "path_state") == 0
    with pytest.raises(InvalidEvent, match="hashes to"):
        lg.append(change("x", b"abc"), {sha256_hex(b"abc"): b"not abc"})
    assert count_rows(ledger_path) == 0


def test_oversize_event_is_refused(ledger_path, monkeypatch):
    import ledger.store as store

    monkeypatch.setattr(store, "MAX_EVENT_BYTES", 1000)
    lg = Ledger(ledger_path)
    big = SwarmEvent(event_id=new_event_id(), timestamp=time.time_ns(), tenant_id="acme", project_id="web",
                     message=AgentMessage(content="x" * 5000))
    with pytest.raises(EventTooLarge, match="exceeds the 1,000-byte limit"):
        lg.append(big)
    assert count_rows(ledger_path) == 0


def test_queries_and_projection(ledger_path):
    lg = Ledger(ledger_path)
    t0 = 1_700_000_000_000_000_000
    a, b = b"A\n", b"B\n"
    d = decision(t=t0, agent="arch")
    lg.append(d)
    lg.append(change("src/x.py", a, t=t0 + 1, caused_by=d.event_id, related_commit_hash="abc123"),
              {sha256_hex(a): a})
    lg.append(change("src/x.py", b, op="modify", prev=sha256_hex(a), t=t0 + 2), {sha256_hex(b): b})
    lg.append(change("src/y.py", b, op="rename", prev=sha256_hex(b), previous_resource="src/x.py", t=t0 + 3))
    lg.append(decision(project="other", t=t0 + 4))
    assert [e.kind for e in lg.events(project_id="web")] == ["decision"] + ["state_change"] * 3
    assert len(list(lg.events(path="src/x.py"))) == 3  # includes the rename's source
    assert len(list(lg.events(path="src/"))) == 3
    assert [e.event_id for e in lg.events(agent_id="arch")] == [d.event_id]
    assert len(list(lg.events(since_ns=t0 + 2, until_ns=t0 + 3))) == 2
    assert len(list(lg.events(commit="abc1"))) == 1
    assert [e.time_ns for e in lg.events(project_id="web", descending=True, limit=2)] == [t0 + 3, t0 + 2]
    tree = lg.current_tree("acme", "web")
    assert list(tree) == ["src/y.py"] and tree["src/y.py"].hash == sha256_hex(b)
    assert lg.commits("acme", "web", "abc")[0][0] == "abc123"
    assert lg.get(d.event_id[:-4]).event_id == d.event_id
    with pytest.raises(EventNotFound, match="ambiguous"):
        lg.get(d.event_id[:8])
    with pytest.raises(EventNotFound):
        lg.get(new_event_id())
    with pytest.raises(AmbiguousProject, match="other, web"):
        lg.resolve_project("acme", None)
    with pytest.raises(ProjectNotFound):
        lg.resolve_project("acme", "nope")
    assert lg.resolve_project("acme", "web") == "web"


def test_outbox_and_checkpoints(ledger_path):
    lg = Ledger(ledger_path)
    events = [decision() for _ in range(5)]
    lg.append_many(events)
    pending = lg.pending(limit=3)
    assert [p.event_id for p in pending] == [e.event_id for e in events[:3]]
    lg.mark_synced([(p.seq, bytes(10)) for p in pending])
    lg.mark_sync_error(pending[-1].seq + 1, "too large for the hub")
    status = lg.outbox_status()
    assert status["pending"] == 2 and status["refused"] == 1 and status["synced"] == 3
    assert [p.event_id for p in lg.pending()] == [events[4].event_id]
    assert len(lg.pending(include_refused=True)) == 2
    lg.set_checkpoint("ingest", "42")
    assert Ledger(ledger_path).get_checkpoint("ingest") == "42"
