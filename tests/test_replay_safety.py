"""Safe replay: nothing outside DIR, nothing half-written, non-empty DIR refused."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import textwrap
import time

import pytest
from click.testing import CliRunner

from ledger import ChangeRow, Ledger, sha256_hex
from cli import cli
from replay import UnsafePath, materialize
from schemas import InvalidEvent, Operation, StateChange, SwarmEvent, deterministic_event_id

T0 = 1_700_000_000_000_000_000


def run(args, db):
    return CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)


def row(n, op, path, content=b"", mode="regular", prev_path=""):
    return ChangeRow(f"e{n}", n, n, op, path, prev_path, "", sha256_hex(content) if op != "delete" else "",
                     mode if op != "delete" else "", "")


def leftovers(parent) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".replay-" in p.name)


@pytest.mark.parametrize("bad", ["/etc/evil", "a/../../evil", "../evil", "./x", "a//b"])
def test_escaping_paths_are_refused(tmp_path, bad):
    rows = [row(1, "create", "fine.txt", b"ok"), row(2, "create", bad, b"evil")]
    with pytest.raises(UnsafePath, match="Nothing was written"):
        materialize(rows, lambda h: b"ok" if h == sha256_hex(b"ok") else b"evil", tmp_path / "out")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_rename_from_escaping_path_refused(tmp_path):
    rows = [row(1, "rename", "x", b"a", prev_path="../../etc/passwd")]
    with pytest.raises(UnsafePath):
        materialize(rows, lambda h: b"a", tmp_path / "out")


def _file_event(n: int, path: str, data: bytes | None, *, mode="regular", prev: bytes | None = None,
                op: str | None = None, prev_path: str = "") -> SwarmEvent:
    op = op or ("delete" if data is None else "modify" if prev is not None else "create")
    return SwarmEvent(
        event_id=deterministic_event_id(T0 // 1_000_000 + n, "safety", str(n)), timestamp=T0 + n,
        tenant_id="default", project_id="p", agent_id="agent",
        state_change=StateChange(
            target_resource=path, operation=Operation(op), previous_resource=prev_path,
            new_state_hash=sha256_hex(data) if data is not None else "",
            previous_state_hash=sha256_hex(prev) if prev is not None else "",
            file_mode=mode if data is not None else "unspecified"),
    )


def _append(lg: Ledger, *events_and_data):
    for ev, data in events_and_data:
        lg.append(ev, {sha256_hex(data): data} if data is not None else None)


def _append_unchecked(lg: Ledger, event: SwarmEvent, data: bytes) -> None:
    """Store an event the way a ledger written by an older version (or another tool)
    may hold it: straight into the table, past the record-time checks."""
    from ledger import blobs
    from ledger.rows import INSERT_SQL, event_row

    with lg.write_transaction() as conn:
        blobs.put(conn, data)
        conn.execute(INSERT_SQL, event_row(event, event.to_bytes(), time.time_ns()))


def test_write_through_restored_symlink_is_refused(tmp_path, ledger_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = str(outside).encode()
    with Ledger(ledger_path) as lg:
        _append(lg,
                (_file_event(1, "ok.txt", b"ok"), b"ok"),
                (_file_event(2, "link", target, mode="symlink"), target))
        with pytest.raises(InvalidEvent, match="below 'link', which is a symlink"):
            _append(lg, (_file_event(3, "link/pwned.txt", b"evil"), b"evil"))  # refused when recorded
        _append_unchecked(lg, _file_event(3, "link/pwned.txt", b"evil"), b"evil")  # an old ledger's
    out = tmp_path / "out"
    result = run(["replay", "--at", "now", "--out", str(out)], ledger_path)
    assert result.exit_code == 1
    assert "'link'" in result.output and "symlink" in result.output and "Nothing was written" in result.output
    assert not out.exists() and list(outside.iterdir()) == [] and leftovers(tmp_path) == []
    # before the bad change, the symlink itself is restored as content (pointing outside)
    with Ledger(ledger_path) as lg:
        link_event = next(s for s in lg.events(path="link"))
    ok = run(["replay", "--at", link_event.event_id, "--out", str(out)], ledger_path)
    assert ok.exit_code == 0, ok.output
    assert os.readlink(out / "link") == str(outside) and list(outside.iterdir()) == []


def test_path_below_a_deleted_symlink_is_fine(tmp_path, ledger_path):
    with Ledger(ledger_path) as lg:
        _append(lg,
                (_file_event(1, "link", b"/tmp", mode="symlink"), b"/tmp"),
                (_file_event(2, "link", None, prev=b"/tmp"), None),
                (_file_event(3, "link/inside.txt", b"in"), b"in"))
    out = tmp_path / "out"
    result = run(["replay", "--at", "now", "--out", str(out), "--strict"], ledger_path)
    assert result.exit_code == 0, result.output
    assert (out / "link" / "inside.txt").read_bytes() == b"in" and not (out / "link").is_symlink()


@pytest.mark.parametrize("bulk_events", [1, 1000], ids=["bulk", "lookup-by-key"])
def test_symlink_rule_holds_inside_one_batch(ledger_path, monkeypatch, bulk_events):
    """``append_many`` carries the project's symlinks from event to event of a bulk
    transaction (``ledger.batchstate``), and a small one looks parents up by key: either
    way a symlink made earlier in the same batch guards the paths below it, one removed
    or renamed earlier frees them."""
    from ledger import store

    monkeypatch.setattr(store, "BULK_EVENTS", bulk_events)
    def pairs(*events_and_data):
        return [ev for ev, _ in events_and_data], {sha256_hex(d): d for _, d in events_and_data if d is not None}

    with Ledger(ledger_path) as lg:
        # the symlinks are first read (none) for d/x.txt, then the batch makes one
        events, blobs = pairs((_file_event(1, "d/x.txt", b"x"), b"x"),
                              (_file_event(2, "link", b"/tmp", mode="symlink"), b"/tmp"),
                              (_file_event(3, "link/y.txt", b"y"), b"y"))
        with pytest.raises(InvalidEvent, match="below 'link', which is a symlink"):
            lg.append_many(events, blobs)
        assert lg.count() == 0  # all or nothing
        lg.append_many(*pairs((_file_event(2, "link", b"/tmp", mode="symlink"), b"/tmp")))
        renamed = _file_event(4, "moved", b"/tmp", mode="symlink", prev=b"/tmp", op="rename", prev_path="link")
        lg.append_many(*pairs((renamed, b"/tmp"), (_file_event(5, "link/free.txt", b"f"), b"f")))
        with pytest.raises(InvalidEvent, match="below 'moved'"):
            lg.append_many(*pairs((_file_event(6, "moved/z.txt", b"z"), b"z")))
        lg.append_many(*pairs((_file_event(7, "moved", None, prev=b"/tmp"), None),
                              (_file_event(8, "moved/z.txt", b"z"), b"z")))
        assert lg.path_state("default", "p", "moved/z.txt") is not None


@pytest.fixture
def one_file_ledger(ledger_path):
    with Ledger(ledger_path) as lg:
        _append(lg, (_file_event(1, "a.txt", b"new content"), b"new content"),
                (_file_event(2, "b/c.txt", b"more"), b"more"))
    return ledger_path


def test_non_empty_dir_needs_force_and_force_replaces_only_a_replay(tmp_path, one_file_ledger):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    refused = run(["replay", "--at", "now", "--out", str(out)], one_file_ledger)
    assert refused.exit_code == 1 and "not empty" in refused.output and "--force" in refused.output
    forced = run(["replay", "--at", "now", "--out", str(out), "--force"], one_file_ledger)
    assert forced.exit_code == 1 and "was not created by `ledger replay`" in forced.output
    assert [p.name for p in out.iterdir()] == ["mine.txt"]  # nobody's work is deleted
    made = tmp_path / "made"
    assert run(["replay", "--at", "now", "--out", str(made)], one_file_ledger).exit_code == 0
    (made / "a.txt").write_bytes(b"edited after the replay")
    again = run(["replay", "--at", "now", "--out", str(made), "--force"], one_file_ledger)
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in made.iterdir()) == ["a.txt", "b"] and (made / "a.txt").read_bytes() == b"new content"
    third = run(["replay", "--at", "now", "--out", str(made), "--force"], one_file_ledger)
    assert third.exit_code == 0, third.output  # the replaced directory is remembered too
    assert leftovers(tmp_path) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(["replay", "--at", "now", "--out", str(empty)], one_file_ledger).exit_code == 0
    assert (empty / "a.txt").read_bytes() == b"new content"


@pytest.mark.parametrize("git_name", [".git", ".GIT", ".Git"])
def test_a_git_work_tree_is_never_a_replay_target(tmp_path, one_file_ledger, git_name):
    work = tmp_path / "work"
    (work / git_name).mkdir(parents=True)
    (work / git_name / "HEAD").write_text("ref: refs/heads/main\n")
    (work / "untracked.txt").write_text("uncommitted")
    for extra in ([], ["--force"]):
        result = run(["replay", "--at", "now", "--out", str(work), *extra], one_file_ledger)
        assert result.exit_code == 1 and "git work tree" in result.output and "ledger restore" in result.output
    assert (work / git_name / "HEAD").exists() and (work / "untracked.txt").read_text() == "uncommitted"


def test_the_ledgers_own_files_are_never_a_replay_target(tmp_path, one_file_ledger):
    data = one_file_ledger.parent
    for target in (data, data.parent, one_file_ledger):
        result = run(["replay", "--at", "now", "--out", str(target), "--force"], one_file_ledger)
        assert result.exit_code == 1 and "ledger's own data" in result.output, (target, result.output)
    assert one_file_ledger.exists() and Ledger(one_file_ledger).count() > 0


def test_deep_trees_are_removed_without_recursion(tmp_path):
    from replay.outdir import remove_tree

    deep = tmp_path / "deep"
    deep.mkdir()
    fd = os.open(deep, os.O_RDONLY)
    for _ in range(2500):  # deeper than Python's recursion limit and PATH_MAX (5,000 bytes)
        os.mkdir("d", dir_fd=fd)
        child = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd))
    os.close(fd)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("k")
    os.symlink(outside, deep / "link")
    remove_tree(deep)
    assert not deep.exists() and (outside / "keep").exists()


def test_out_that_is_a_file_or_symlink_is_refused(tmp_path, one_file_ledger):
    (tmp_path / "file").write_text("x")
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    for name, words in (("file", "not a directory"), ("alias", "symlink")):
        result = run(["replay", "--at", "now", "--out", str(tmp_path / name), "--force"], one_file_ledger)
        assert result.exit_code == 1 and words in result.output
    assert list((tmp_path / "real").iterdir()) == [] and (tmp_path / "file").read_text() == "x"


def test_missing_blob_leaves_nothing_half_written(tmp_path, one_file_ledger):
    with sqlite3.connect(one_file_ledger) as conn:
        conn.execute("DELETE FROM blobs WHERE hash = ?", (sha256_hex(b"more"),))
    out = tmp_path / "out"
    result = run(["replay", "--at", "now", "--out", str(out)], one_file_ledger)
    assert result.exit_code == 1 and sha256_hex(b"more") in result.output
    assert not out.exists() and leftovers(tmp_path) == []
    out.mkdir()
    (out / "old.txt").write_text("old")
    forced = run(["replay", "--at", "now", "--out", str(out), "--force"], one_file_ledger)
    assert forced.exit_code == 1
    assert [p.name for p in out.iterdir()] == ["old.txt"] and leftovers(tmp_path) == []


def test_interrupt_leaves_nothing(tmp_path):
    calls = []

    def read_blob(h):
        calls.append(h)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return b"x"

    rows = [row(i, "create", f"f{i}", b"x") for i in range(5)]
    with pytest.raises(KeyboardInterrupt):
        materialize(rows, read_blob, tmp_path / "out")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_kill_9_mid_replay_leaves_out_dir_absent(tmp_path, python):
    """A replay killed with SIGKILL while writing never leaves a partial --out."""
    ready = tmp_path / "ready"
    script = textwrap.dedent(f"""
        import sys
        from ledger import ChangeRow, sha256_hex
        from replay import materialize
        rows = [ChangeRow(f"e{{i}}", i, i, "create", f"d/f{{i}}", "", "", sha256_hex(b"x"), "regular", "")
                for i in range(10)]
        n = 0
        def read_blob(h):
            global n
            n += 1
            if n == 5:
                open({str(ready)!r}, "w").close()
                sys.stdin.read()  # block until killed
            return b"x"
        materialize(rows, read_blob, {str(tmp_path / 'out')!r})
    """)
    proc = subprocess.Popen([python, "-c", script], stdin=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdin.close()
    assert not (tmp_path / "out").exists()
    partial = [p for p in tmp_path.iterdir() if ".replay-" in p.name]
    assert len(partial) == 1 and partial[0].name.startswith(".out.replay-")  # hidden, never DIR


def test_files_are_created_without_following_links(tmp_path):
    """Symlinks are written last: a file listed after a same-named symlink prefix can't
    exist (refused above), and a symlink never receives file content."""
    rows = [row(1, "create", "z-link", b"a-file", mode="symlink"), row(2, "create", "a-file", b"data")]
    report = materialize(rows, lambda h: b"a-file" if h == sha256_hex(b"a-file") else b"data", tmp_path / "o")
    assert report.symlinks == 1 and os.readlink(tmp_path / "o" / "z-link") == "a-file"
    assert (tmp_path / "o" / "a-file").read_bytes() == b"data"
