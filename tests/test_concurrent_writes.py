"""Many threads in several processes record into one ledger at once: no
``database is locked``, every event present exactly once (full and group durability).

The duration is a parameter (env LEDGER_CONCURRENCY_SECONDS, default 10 s for full
durability); this is a correctness test, not a timed one.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter

import pytest

from ledger import Ledger

SECONDS = float(os.environ.get("LEDGER_CONCURRENCY_SECONDS", "10"))

WORKER = r"""
import json, sys, threading, time
from ledger import Ledger
from nervous_system import Recorder

path, durability, proc, threads, seconds, out = sys.argv[1:7]
lg = Ledger(path, durability=durability)
ids, errors = [], []
lock = threading.Lock()

def work(t):
    rec = Recorder(lg, project_id="load", agent_id=f"p{proc}-t{t}")
    mine, i = [], 0
    deadline = time.monotonic() + float(seconds)
    try:
        while time.monotonic() < deadline:
            if i % 10 == 9:
                mine.append(rec.file_change(f"p{proc}/t{t}.txt", f"{i}".encode()))
            else:
                mine.append(rec.decision(f"p{proc}-t{t}-{i}"))
            i += 1
    except Exception as exc:
        errors.append(repr(exc))
    with lock:
        ids.extend(mine)

ts = [threading.Thread(target=work, args=(t,)) for t in range(int(threads))]
for t in ts: t.start()
for t in ts: t.join()
lg.close()
json.dump({"ids": ids, "errors": errors}, open(out, "w"))
"""


@pytest.mark.parametrize("durability, seconds", [("full", SECONDS), ("group", min(SECONDS, 4.0))])
def test_threads_times_processes(ledger_path, tmp_path, python, durability, seconds):
    Ledger(ledger_path).close()  # created once; the workers open it concurrently
    outs = [tmp_path / f"out{p}.json" for p in range(2)]
    procs = [
        subprocess.Popen([python, "-c", WORKER, str(ledger_path), durability, str(p), "8",
                          str(seconds), str(outs[p])], stderr=subprocess.PIPE, text=True)
        for p in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=seconds + 120)
        assert p.returncode == 0, err
    returned = []
    for out in outs:
        data = json.loads(out.read_text())
        assert data["errors"] == []
        returned.extend(data["ids"])
    assert len(returned) > 100  # both processes really wrote
    lg = Ledger(ledger_path)
    stored = Counter(e.event_id for e in lg.events(project_id="load"))
    assert len(returned) == len(set(returned))
    assert set(stored) == set(returned)
    assert max(stored.values()) == 1
    # the file changes of each thread chain correctly (previous hash = last content)
    for p in range(2):
        for t in range(8):
            history = [e.event.state_change for e in lg.events(path=f"p{p}/t{t}.txt", order="seq")]
            for before, after in zip(history, history[1:]):
                assert after.previous_state_hash == before.new_state_hash


# ----------------------------------------------------------------- group commit unit tests
import time  # noqa: E402

from ledger.errors import DuplicateEventId  # noqa: E402
from nervous_system import Recorder  # noqa: E402
import sqlite3  # noqa: E402


class Reader:
    """A plain read-only SQLite connection (sees committed data only)."""

    def __init__(self, path):
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM events").fetchone()[0]


def test_group_commit_flush_is_the_durability_point(ledger_path):
    lg = Ledger(ledger_path, durability="group", group_window_s=3600)
    rec = Recorder(lg, project_id="g", agent_id="a")
    first = rec.file_change("a.txt", b"one\n")
    second = rec.file_change("a.txt", b"two\n")  # reads its own uncommitted state
    other = Reader(ledger_path)  # another connection: sees committed data only
    assert other.count() == 0
    lg.flush()
    assert other.count() == 2
    other = Ledger(ledger_path)
    change = other.get(second).event.state_change
    assert change.operation.value == "modify"
    assert change.previous_state_hash == other.get(first).event.state_change.new_state_hash
    lg.close()


def test_group_commit_window_and_size_bound(ledger_path):
    lg = Ledger(ledger_path, durability="group", group_window_s=0.05, group_max_events=1000)
    rec = Recorder(lg, project_id="g", agent_id="a")
    rec.decision("waits for the window")
    other = Reader(ledger_path)
    deadline = time.monotonic() + 10
    while other.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert other.count() == 1  # committed by the background committer, no flush
    lg.close()
    lg = Ledger(ledger_path, durability="group", group_window_s=3600, group_max_events=3)
    rec = Recorder(lg, project_id="g", agent_id="a")
    for i in range(3):
        rec.decision(str(i))
    assert other.count() == 4  # the third write filled the group: committed at once
    lg.close()


def test_group_commit_failed_write_rolls_back_alone(ledger_path):
    lg = Ledger(ledger_path, durability="group", group_window_s=3600)
    rec = Recorder(lg, project_id="g", agent_id="a")
    kept = rec.decision("kept")
    from schemas import parse_event
    clash = parse_event({"event_id": kept, "timestamp": 1, "tenant_id": "default",
                         "project_id": "g", "decision": {"rationale": "different"}})
    with pytest.raises(DuplicateEventId):
        lg.append(clash)
    also = rec.decision("also kept")
    lg.close()  # close flushes
    lg = Ledger(ledger_path)
    assert {e.event_id for e in lg.events()} == {kept, also}


# ------------------------------------------ group commit: buffered rows (Ledger.submit)
import logging  # noqa: E402

from ledger.errors import EventTooLarge, StoreError  # noqa: E402
from nervous_system import InvalidRecord, RecordFailed  # noqa: E402
from schemas import AgentDecision, SwarmEvent, new_event_id  # noqa: E402


def _decision_event(event_id=None, rationale="r", project="g"):
    return SwarmEvent(event_id=event_id or new_event_id(), timestamp=1, tenant_id="default",
                      project_id=project, decision=AgentDecision(rationale=rationale))


def test_submit_reports_duplicates_to_the_caller_before_the_commit(ledger_path):
    lg = Ledger(ledger_path, durability="group", group_window_s=3600)
    first = _decision_event(rationale="one")
    assert lg.submit(first) is True
    assert lg.submit(first) is False  # same id, same bytes: idempotent while buffered
    with pytest.raises(DuplicateEventId):  # same id, different bytes: raised here, now
        lg.submit(_decision_event(first.event_id, rationale="two"))
    via_append = _decision_event(rationale="three")
    assert lg.append(via_append).inserted  # a savepoint write, not yet committed
    with pytest.raises(DuplicateEventId):
        lg.submit(_decision_event(via_append.event_id, rationale="four"))
    assert lg.submit(via_append) is False
    lg.flush()
    with pytest.raises(DuplicateEventId):  # committed: found in the ledger
        lg.submit(_decision_event(first.event_id, rationale="five"))
    assert lg.submit(first) is False
    lg.flush()
    lg.close()
    stored = {e.event_id: e.event.decision.rationale for e in Ledger(ledger_path).events()}
    assert stored == {first.event_id: "one", via_append.event_id: "three"}


def test_submit_refuses_too_large_events_in_the_caller(ledger_path, monkeypatch):
    import ledger.store

    monkeypatch.setattr(ledger.store, "MAX_EVENT_BYTES", 1000)
    lg = Ledger(ledger_path, durability="group", group_window_s=3600)
    with pytest.raises(EventTooLarge):
        lg.submit(_decision_event(rationale="x" * 2000))
    lg.close()
    assert Ledger(ledger_path).count() == 0


def test_buffered_and_transactional_writes_keep_the_call_order(ledger_path):
    lg = Ledger(ledger_path, durability="group", group_window_s=3600)
    rec = Recorder(lg, project_id="g", agent_id="a")
    calls = [rec.decision("d1"), rec.file_change("a.txt", b"1"), rec.message("m"),
             rec.decision("d2"), rec.file_change("a.txt", b"2"), rec.signal("ok")]
    lg.flush()
    assert [e.event_id for e in Ledger(ledger_path).events(project_id="g", order="seq")] == calls
    assert Ledger(ledger_path).get(calls[4]).event.caused_by == calls[3]
    lg.close()


def test_a_failed_group_commit_is_raised_by_flush_and_loses_only_that_group(ledger_path, caplog):
    lg = Ledger(ledger_path, durability="group", group_window_s=3600)
    rec = Recorder(lg, project_id="g", agent_id="a")
    kept = rec.decision("kept")
    rec.flush()
    conn = lg._group.connection  # a real SQLITE_FULL: the file may not grow any more
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    for _ in range(20):
        rec.decision("x" * 5000)  # checked and buffered: the failure comes at commit
    with caplog.at_level(logging.ERROR, logger="ledger.groupcommit"):
        with pytest.raises(RecordFailed, match="20 write.*lost.*disk is full"):
            rec.flush()
    assert "lost" in caplog.text  # also logged
    conn.execute("PRAGMA max_page_count = 1073741823")
    rec.flush()  # reported once
    after = rec.decision("after")
    lg.close()
    assert {e.event_id for e in Ledger(ledger_path).events()} == {kept, after}


def test_a_failed_group_commit_is_raised_by_the_next_write(ledger_path):
    lg = Ledger(ledger_path, durability="group", group_window_s=3600, group_max_events=5)
    lg.flush()  # commits the new ledger's own id
    conn = lg._group.connection
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    for _ in range(4):
        lg.submit(_decision_event(rationale="x" * 5000))
    with pytest.raises(StoreError, match="lost"):
        lg.submit(_decision_event(rationale="fills the group"))  # its group failed
    conn.execute("PRAGMA max_page_count = 1073741823")
    later = _decision_event()
    assert lg.submit(later) is True
    lg.close()
    assert [e.event_id for e in Ledger(ledger_path).events()] == [later.event_id]


def test_an_id_stored_by_another_process_meanwhile_is_reported_at_commit(ledger_path):
    lg = Ledger(ledger_path, durability="group", group_window_s=3600)
    lg.flush()  # commits the new ledger's own id (and frees the write lock)
    ours, other = _decision_event(rationale="ours"), _decision_event(rationale="fine")
    assert lg.submit(ours) and lg.submit(other)
    theirs = _decision_event(ours.event_id, rationale="theirs")
    elsewhere = Ledger(ledger_path)  # another writer, before our group commits
    elsewhere.append(theirs)
    with pytest.raises(StoreError, match=f"1 event.*not recorded.*{ours.event_id}"):
        lg.flush()
    lg.close()
    stored = {e.event_id: e.event.decision.rationale for e in Ledger(ledger_path).events()}
    assert stored == {ours.event_id: "theirs", other.event_id: "fine"}


def test_many_threads_submit_into_one_group_ledger(ledger_path):
    import threading

    lg = Ledger(ledger_path, durability="group", group_window_s=0.002, group_max_events=50)
    ids, errors = [], []

    def work(t):
        rec = Recorder(lg, project_id="g", agent_id=f"t{t}")
        mine = []
        try:
            for i in range(300):
                mine.append(rec.file_change(f"t{t}.txt", str(i).encode()) if i % 10 == 9
                            else rec.decision(f"{t}-{i}"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))
        ids.extend(mine)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lg.flush()
    assert errors == []
    stored = Counter(e.event_id for e in Ledger(ledger_path).events())
    assert set(stored) == set(ids) and len(ids) == 8 * 300 and max(stored.values()) == 1
    assert lg._group.groups_committed > 8 * 300 // 50 - 1  # the size bound held
    lg.close()


# ------------------------------------------------ Recorder: the fast envelope path
def test_recorder_events_equal_fully_validated_ones(ledger_path):
    from schemas import parse_event

    lg = Ledger(ledger_path, durability="group", group_window_s=3600)
    rec = Recorder(lg, project_id="g", agent_id="a", agent_role="coder", user_id="u", session_id="s")
    why = rec.decision("why", rejected_alternatives=["no"], confidence=0.5, commit="abcd1234")
    ids = [why, rec.message("hi", recipients=["b"]), rec.signal("ok", cpu_load_percent=1.5)]
    rec.agent_id = "renamed"  # identity changes are picked up
    ids.append(rec.decision("again"))
    lg.flush()
    other = Ledger(ledger_path)
    for event_id in ids:
        stored = other.get(event_id)
        event = stored.event
        assert parse_event(event.to_dict()) == event
        assert parse_event(event.to_dict()).to_bytes() == stored.body
    assert other.get(ids[-1]).event.agent_id == "renamed"
    assert other.get(why).event.related_commit_hash == "abcd1234"
    lg.close()


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(commit="not-hex"), "related_commit_hash must be lowercase hex"),
    (dict(commit="abcd\n"), None),  # accepted exactly as the validator accepts it
])
def test_recorder_checks_per_event_fields_like_the_model(ledger_path, kwargs, fragment):
    lg = Ledger(ledger_path, durability="group", group_window_s=3600)
    rec = Recorder(lg, project_id="g", agent_id="a")
    try:
        SwarmEvent(event_id=new_event_id(), timestamp=1, tenant_id="default", project_id="g",
                   related_commit_hash=kwargs["commit"], decision=AgentDecision())
        model_error = None
    except ValueError as exc:
        model_error = exc
    if fragment is None:
        assert model_error is None
        rec.decision("x", **kwargs)
    else:
        assert fragment in str(model_error)
        with pytest.raises(InvalidRecord, match=fragment):
            rec.decision("x", **kwargs)
    lg.close()


def test_recorder_bad_identity_and_clock_still_go_through_full_validation(ledger_path):
    lg = Ledger(ledger_path, durability="group", group_window_s=3600)
    rec = Recorder(lg, project_id="bad/project", agent_id="a")
    with pytest.raises(InvalidRecord, match="project_id must be 1-128 characters"):
        rec.decision("x")
    with pytest.raises(InvalidRecord, match="caused_by must be the event_id"):
        Recorder(lg, project_id="g", agent_id="a").file_change("f.txt", b"1", caused_by="nope")
    text_clock = Recorder(lg, project_id="g", agent_id="a", clock=lambda: "2026-01-02T03:04:05.000000006Z")
    event_id = text_clock.decision("parsed")
    lg.flush()
    assert Ledger(ledger_path).get(event_id).event.timestamp == 1_767_323_045_000_000_006
    assert Ledger(ledger_path).count() == 1
    lg.close()


def test_event_row_holds_the_indexed_fields_of_every_payload_kind():
    from ledger.rows import event_columns
    from schemas import event_from_bytes
    from tests.test_schemas import FAST_PATH_EXTRAS, PAYLOADS, base

    for payload in PAYLOADS + FAST_PATH_EXTRAS:
        for extra in ({}, dict(related_commit_hash="abcd", caused_by=new_event_id(), trace_id="ab" * 16,
                               span_id="cd" * 8, agent_role="coder", session_id="s", agent_id="a")):
            event = base(**extra, **payload)
            body = event.to_bytes()
            cols = event_columns(event, body, 7)
            assert event_from_bytes(cols["body"]) == event and cols["body_bytes"] == len(body)
            assert (cols["event_id"], cols["time_ns"], cols["recorded_ns"], cols["kind"]) == (
                event.event_id, event.timestamp, 7, event.kind)
            assert (cols["tenant_id"], cols["project_id"], cols["session_id"], cols["agent_id"],
                    cols["agent_role"]) == (event.tenant_id, event.project_id, event.session_id,
                                            event.agent_id, event.agent_role.value)
            assert (cols["trace_id"], cols["span_id"], cols["caused_by"], cols["commit_hash"]) == (
                event.trace_id, event.span_id, event.caused_by, event.related_commit_hash or None)
            sc = event.state_change
            if sc is None:
                assert cols["target_path"] is None and cols["operation"] is None and cols["new_hash"] is None
            else:
                assert (cols["target_type"], cols["target_path"], cols["previous_path"], cols["operation"],
                        cols["prev_hash"], cols["new_hash"], cols["file_mode"], cols["prev_mode"]) == (
                    sc.target_type.value, sc.target_resource, sc.previous_resource or None,
                    sc.operation.value, sc.previous_state_hash, sc.new_state_hash,
                    sc.file_mode.value, sc.previous_file_mode.value)


def test_a_failed_group_after_writer_side_inserts_is_reported_and_lost_whole(ledger_path):
    lg = Ledger(ledger_path, durability="group", group_window_s=3600)
    rec = Recorder(lg, project_id="g", agent_id="a")
    kept = rec.decision("kept")
    rec.flush()
    conn = lg._group.connection
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    returned, error = [], None
    for _ in range(300):  # more than DRAIN_ROWS: the writer inserts rows before the commit
        try:
            returned.append(rec.decision("x" * 5000))
        except RecordFailed as exc:
            error = exc
            break
    if error is None:
        with pytest.raises(RecordFailed, match="lost"):
            rec.flush()
    else:
        assert "lost" in str(error)
    conn.execute("PRAGMA max_page_count = 1073741823")
    after = rec.decision("after")
    lg.close()
    assert returned  # some calls returned before the failure was known
    assert {e.event_id for e in Ledger(ledger_path).events()} == {kept, after}
