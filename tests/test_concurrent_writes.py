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
