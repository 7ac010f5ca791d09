"""The agent SDK: payloads, hashes/modes/diffs, caused_by links, typed errors, durable on return."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap

import pytest

from ledger import Ledger, sha256_hex
from nervous_system import InvalidRecord, RecordFailed, Recorder


@pytest.fixture
def rec(ledger_path):
    r = Recorder(ledger_path, project_id="web", agent_id="coder-1", agent_role="coder", tenant_id="acme")
    yield r
    r.close()


def events(rec):
    return [s.event for s in rec.ledger.events(order="seq")]


def test_file_change_lifecycle(rec):
    why = rec.decision("add a greeting", confidence=0.9, rejected_alternatives=["print"], input_trigger="#1")
    rec.file_change("src/hello.py", b"print('hi')\n")
    rec.file_change("src/hello.py", b"print('hello')\n", mode="executable")
    rec.file_change("src/greet.py", None, previous_path="src/hello.py")
    rec.file_change("link", b"src/greet.py", mode="symlink")
    rec.file_change("src/greet.py", None)
    evs = events(rec)
    changes = [e.state_change for e in evs if e.state_change]
    assert [c.operation.value for c in changes] == ["create", "modify", "rename", "create", "delete"]
    create, modify, rename, link, delete = changes
    assert create.new_state_hash == sha256_hex(b"print('hi')\n") and create.previous_state_hash == ""
    assert create.file_mode.value == "regular" and create.size_bytes == 12
    assert create.lines_added == 1 and create.diff_patch.startswith("--- /dev/null\n+++ b/src/hello.py")
    assert modify.previous_state_hash == create.new_state_hash
    assert modify.file_mode.value == "executable" and modify.previous_file_mode.value == "regular"
    assert (modify.lines_added, modify.lines_removed) == (1, 1)
    assert rename.previous_resource == "src/hello.py" and rename.new_state_hash == modify.new_state_hash
    assert rename.file_mode.value == "executable"  # the mode moves with the content
    assert link.file_mode.value == "symlink" and link.diff_patch == ""
    assert delete.new_state_hash == "" and delete.previous_state_hash == modify.new_state_hash
    assert all(e.caused_by == why for e in evs if e.state_change)
    assert all(e.agent_role.value == "coder" and e.tenant_id == "acme" for e in evs)
    assert rec.ledger.current_tree("acme", "web").keys() == {"link"}
    assert rec.ledger.get_blob(create.new_state_hash) == b"print('hi')\n"


def test_binary_and_empty_files(rec):
    rec.file_change("img.png", b"\x89PNG\x00\x01\x02")
    rec.file_change("empty", b"")
    img, empty = [e.state_change for e in events(rec)]
    assert img.diff_patch == "" and img.size_bytes == 7
    assert empty.new_state_hash == sha256_hex(b"") and empty.size_bytes == 0
    assert rec.ledger.get_blob(empty.new_state_hash) == b""


def test_messages_and_signals(rec):
    rec.message("please review", recipients=["reviewer-1"])
    rec.signal("degraded", cpu_load_percent=93.5, memory_usage_mb=2048, detail="swap in use")
    msg, sig = events(rec)
    assert msg.message.sender == "coder-1" and msg.message.recipients == ["reviewer-1"]
    assert sig.signal.cpu_load_percent == 93.5 and sig.signal.status == "degraded"


def test_typed_errors_and_nothing_written(rec, ledger_path):
    with pytest.raises(InvalidRecord, match=r"'\.\.'"):
        rec.file_change("../escape.txt", b"x")
    with pytest.raises(InvalidRecord, match="no content"):
        rec.file_change("never-created.txt", None)
    with pytest.raises(InvalidRecord, match="confidence"):
        rec.decision("sure", confidence=1.5)
    with pytest.raises(InvalidRecord, match="mode"):
        rec.file_change("a", b"", mode="fifo")
    with pytest.raises(InvalidRecord, match="UTF-8"):
        rec.file_change(os.fsdecode(b"bad\xff.txt"), b"x")
    assert Ledger(ledger_path).count() == 0


def test_storage_failure_is_record_failed(ledger_path):
    import sqlite3

    rec = Recorder(Ledger(ledger_path, busy_timeout_s=0.2), project_id="web", agent_id="x")
    rec.decision("first")
    blocker = sqlite3.connect(ledger_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    try:
        with pytest.raises(RecordFailed, match="locked") as info:
            rec.decision("second")
        assert info.value.__cause__ is not None  # the driver error is chained
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert rec.ledger.count() == 1
    rec.decision("third")  # recovers once the lock is gone
    assert rec.ledger.count() == 2


CHILD = textwrap.dedent(
    """
    import sys
    from nervous_system import Recorder
    rec = Recorder(sys.argv[1], project_id="web", agent_id="crashy")
    i = 0
    while True:
        if i % 2:
            eid = rec.file_change(f"f{i % 50}.txt", b"content %d" % i)
        else:
            eid = rec.decision(f"step {i}")
        print(eid, flush=True)   # the call has returned
        i += 1
    """
)


@pytest.mark.parametrize("kill_after", [1, 37, 400])
def test_kill_9_right_after_a_record_call_loses_nothing(ledger_path, python, kill_after):
    proc = subprocess.Popen([python, "-c", CHILD, str(ledger_path)], stdout=subprocess.PIPE, text=True)
    returned = []
    try:
        for line in proc.stdout:
            returned.append(line.strip())
            if len(returned) >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait()
    # also take whatever the child printed before it died
    returned += [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
    lg = Ledger(ledger_path)
    stored = {s.event_id for s in lg.events()}
    assert returned and set(returned) <= stored
    assert len(stored) <= len(returned) + 1  # at most the one in flight when killed


def test_symlink_changes_carry_no_line_diff(rec):
    """A symlink's content is its target: replacing or deleting one is not a text diff."""
    rec.file_change("link", b"target-a", mode="symlink")
    rec.file_change("link", b"plain text\n", mode="regular")  # symlink -> file
    rec.file_change("link2", b"target-b", mode="symlink")
    rec.file_change("link2", None)
    changes = [e.state_change for e in events(rec)]
    assert [c.diff_patch for c in changes] == ["", "", "", ""]
    assert changes[1].previous_file_mode.value == "symlink" and changes[1].file_mode.value == "regular"
    assert changes[3].operation.value == "delete" and changes[3].lines_removed == 0


@pytest.mark.parametrize("durability", ["full", "group"])
def test_close_leaves_a_lent_ledger_open(ledger_path, durability):
    lg = Ledger(ledger_path, durability=durability)
    with Recorder(lg, project_id="web", agent_id="a") as rec:
        rec.decision("first")
    Recorder(lg, project_id="web", agent_id="b").decision("the ledger is still open")
    lg.flush()
    assert lg.count() == 2
    lg.close()
