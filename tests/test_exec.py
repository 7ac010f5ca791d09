"""``ledger exec``: every file change a command makes (shell included) is recorded and
replays to exactly the tree the command left."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import Ledger
from cli import cli
from replay import materialize

SCRIPT = r"""
set -e
echo created > new.txt
printf 'line 1\nline 2 edited\n' > edit.txt
mv old-name.txt renamed.txt
chmod +x tool.sh
rm gone.txt
ln -s new.txt link-to-new
mkdir -p deep/dir && printf '\000\001\002' > deep/dir/blob.bin
mv dir-to-file tmp && rm -r tmp && echo now-a-file > dir-to-file
sed -i 's/one/ONE/' sed-me.txt
touch empty
"""


def tree_of(root: Path) -> dict[str, tuple[str, bytes]]:
    """{path: (kind, bytes)} of files and symlinks, ignoring .git."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git" and not os.path.islink(os.path.join(dirpath, d))]
        names = files + [d for d in os.listdir(dirpath) if os.path.islink(os.path.join(dirpath, d))
                         and os.path.isdir(os.path.join(dirpath, d))]
        for f in names:
            full = os.path.join(dirpath, f)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", os.fsencode(os.readlink(full)))
            else:
                kind = "executable" if st.st_mode & stat.S_IXUSR else "regular"
                out[rel] = (kind, Path(full).read_bytes())
    return out


def make_work_tree(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "dir-to-file").mkdir(parents=True)
    (work / "dir-to-file" / "inner.txt").write_text("inside\n")
    (work / "edit.txt").write_text("line 1\nline 2\n")
    (work / "old-name.txt").write_text("moving content\n")
    (work / "tool.sh").write_text("#!/bin/sh\necho hi\n")
    (work / "gone.txt").write_text("bye\n")
    (work / "sed-me.txt").write_text("one two\n")
    (work / ".git").mkdir()
    (work / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return work


def exec_cli(ledger_path, work, *args, project="proj"):
    return CliRunner().invoke(cli, ["--db", str(ledger_path), "--project", project, "exec",
                                    "--root", str(work), *args])


def test_shell_changes_replay_to_the_exact_tree(ledger_path, tmp_path, monkeypatch):
    work = make_work_tree(tmp_path)
    monkeypatch.chdir(work)
    res = exec_cli(ledger_path, work, "--json", "--", "sh", "-c", SCRIPT)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stderr)
    ops = {(c["op"], c["path"]) for c in summary["changes"]}
    assert ops == {
        ("create", "new.txt"), ("modify", "edit.txt"), ("rename", "renamed.txt"),
        ("modify", "tool.sh"), ("delete", "gone.txt"), ("create", "link-to-new"),
        ("create", "deep/dir/blob.bin"), ("delete", "dir-to-file/inner.txt"),
        ("create", "dir-to-file"), ("modify", "sed-me.txt"), ("create", "empty"),
    }
    lg = Ledger(ledger_path)
    rename = next(c for c in summary["changes"] if c["op"] == "rename")
    assert rename["previous_path"] == "old-name.txt"
    chmod = lg.get(next(c["event_id"] for c in summary["changes"] if c["path"] == "tool.sh")).event.state_change
    assert chmod.previous_state_hash == chmod.new_state_hash and chmod.file_mode.value == "executable"
    assert chmod.previous_file_mode.value == "regular"
    # attribution: agent exec:sh, caused by the decision describing the command, in its trace
    decision = lg.get(summary["decision_id"]).event
    assert decision.agent_id == "exec:sh" and "sh -c" in decision.decision.rationale
    for c in summary["changes"]:
        ev = lg.get(c["event_id"]).event
        assert ev.caused_by == summary["decision_id"] and ev.agent_id == "exec:sh"
        assert ev.trace_id == summary["trace_id"] and ev.span_id == summary["span_id"]
    sig = lg.get(summary["signal_id"]).event.signal
    assert sig.status == "exit 0" and json.loads(sig.detail)["exit_code"] == 0
    span = next(e.event for e in lg.events(kind="span"))
    assert span.span_id == summary["span_id"] and span.span.attributes["process.exit.code"] == 0
    # replay reproduces exactly the tree the command left (bytes, exec bits, symlinks)
    out = tmp_path / "replayed"
    report = materialize(lg.changes("default", "proj", order="time"), lg.get_blob, out)
    assert report.conflicts == []
    expected = {p: v for p, v in tree_of(work).items() if not p.startswith(".git/")}
    assert tree_of(out) == expected
    assert ".git/HEAD" not in lg.current_tree("default", "proj")


def test_exit_code_traceparent_and_second_run(ledger_path, tmp_path, monkeypatch):
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.chdir(work)
    res = exec_cli(ledger_path, work, "--json", "--", "sh", "-c",
                   'printf "%s" "$TRACEPARENT" > tp.txt; exit 7')
    assert res.exit_code == 7
    summary = json.loads(res.stderr)
    tp = (work / "tp.txt").read_text()
    assert tp.startswith(f"00-{summary['trace_id']}-{summary['span_id']}-")
    lg = Ledger(ledger_path)
    assert lg.get(summary["signal_id"]).event.signal.status == "exit 7"
    span = next(e.event for e in lg.events(kind="span"))
    assert span.span.status_code.value == "error"
    # second run: the ledger already knows the tree, so no baseline is needed
    res = exec_cli(ledger_path, work, "--json", "--", "rm", "tp.txt")
    assert res.exit_code == 0
    summary = json.loads(res.stderr)
    assert summary["baseline_changes"] == 0 and summary["counts"] == {"delete": 1}


def test_baseline_records_preexisting_state_and_excludes(ledger_path, tmp_path, monkeypatch):
    work = tmp_path / "w"
    (work / "build").mkdir(parents=True)
    (work / "keep.txt").write_text("pre-existing\n")
    monkeypatch.chdir(work)
    res = exec_cli(ledger_path, work, "--exclude", "build/", "--exclude", "*.log", "--json", "--",
                   "sh", "-c", "echo more >> keep.txt; echo x > build/out.o; echo l > run.log")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stderr)
    assert summary["baseline_changes"] == 1
    assert summary["counts"] == {"modify": 1}
    lg = Ledger(ledger_path)
    baseline = [e.event for e in lg.events(agent_id="ledger-exec")]
    assert {e.kind for e in baseline} == {"decision", "state_change"}
    assert set(lg.current_tree("default", "proj")) == {"keep.txt"}


def test_ledger_inside_the_tree_is_not_recorded(tmp_path, monkeypatch):
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.chdir(work)
    db = work / ".ledger" / "ledger.db"
    res = exec_cli(db, work, "--", "sh", "-c", "echo a > a.txt")
    assert res.exit_code == 0, res.output
    assert set(Ledger(db).current_tree("default", "proj")) == {"a.txt"}


def test_command_not_found(ledger_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = exec_cli(ledger_path, tmp_path, "--", "no-such-command-xyz")
    assert res.exit_code == 1 and "cannot run 'no-such-command-xyz'" in res.output


# ------------------------------------------------------------------ the work tree, git's view
import subprocess  # noqa: E402

from tests.test_worktree import make_deep, remove_deep  # noqa: E402


def git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "-C", str(path), "init", "-q"], check=True)
    return path


def exec_here(ledger_path, *args, project="proj"):
    """`ledger exec` without --root, from the current directory."""
    return CliRunner().invoke(cli, ["--db", str(ledger_path), "--project", project, "exec", *args])


def assert_no_orphans(lg: Ledger) -> None:
    """Every change has its decision; every decision of a command has its exit signal."""
    events = [s.event for s in lg.events(order="seq")]
    ids = {e.event_id for e in events}
    for e in events:
        if e.kind == "state_change":
            assert e.caused_by in ids
    for d in (e for e in events if e.kind == "decision" and e.decision.input_trigger == "ledger exec"):
        assert any(e.kind == "signal" and e.session_id == d.session_id for e in events)


def test_gitignore_honoured_git_never_recorded_and_venv_not_read(ledger_path, tmp_path, monkeypatch):
    work = git_repo(tmp_path / "work")
    (work / ".gitignore").write_text(".venv/\n*.pyc\n")
    (work / "app.py").write_text("print('hi')\n")
    for i in range(2000):
        p = work / ".venv" / "lib" / f"pkg{i % 20}" / f"m{i}.py"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x = 1\n")
    monkeypatch.chdir(work)
    res = exec_here(ledger_path, "--json", "--", "sh", "-c",
                    "touch .venv/new.py; echo y >> app.py; echo c > app.pyc; echo n > notes.md")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stderr)
    assert {(c["op"], c["path"]) for c in summary["changes"]} == {("modify", "app.py"), ("create", "notes.md")}
    with Ledger(ledger_path) as lg:
        tree = lg.current_tree("default", "proj")
        assert set(tree) == {".gitignore", "app.py", "notes.md"}
        assert not any(p.startswith((".git/", ".venv/")) for p in tree)
        assert_no_orphans(lg)


def test_subdirectory_runs_there_and_records_paths_from_the_root(ledger_path, tmp_path, monkeypatch):
    work = git_repo(tmp_path / "work")
    (work / "src" / "pkg").mkdir(parents=True)
    (work / "src" / "pkg" / "mod.py").write_text("a = 1\n")
    monkeypatch.chdir(work / "src" / "pkg")
    res = exec_here(ledger_path, "--json", "--", "sh", "-c", "echo b > b.py; pwd > where.txt")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stderr)
    assert summary["root"] == str(work)
    assert {c["path"] for c in summary["changes"]} == {"src/pkg/b.py", "src/pkg/where.txt"}
    assert (work / "src" / "pkg" / "where.txt").read_text().strip() == str(work / "src" / "pkg")
    with Ledger(ledger_path) as lg:
        assert set(lg.current_tree("default", "proj")) == {"src/pkg/mod.py", "src/pkg/b.py", "src/pkg/where.txt"}


def test_project_defaults_to_the_root_name(ledger_path, tmp_path, monkeypatch):
    work = git_repo(tmp_path / "my-app")
    (work / "sub").mkdir()
    monkeypatch.chdir(work / "sub")
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "exec", "--", "sh", "-c", "echo x > x"])
    assert res.exit_code == 0, res.output
    with Ledger(ledger_path) as lg:
        assert set(lg.current_tree("default", "my-app")) == {"sub/x"}


def test_non_utf8_name_is_reported_skipped_and_leaves_no_orphan(ledger_path, tmp_path, monkeypatch):
    work = git_repo(tmp_path / "work")
    with open(os.path.join(os.fsencode(work), b"latin\xe9.txt"), "wb") as fh:
        fh.write(b"caf\xe9\n")
    (work / "ok.txt").write_text("ok\n")
    monkeypatch.chdir(work)
    for _ in range(2):  # it blocked every run before: twice in a row
        res = exec_here(ledger_path, "--", "sh", "-c", "echo more >> ok.txt")
        assert res.exit_code == 0, res.output
        assert "not recorded: latin\\xe9.txt" in res.stderr and "UTF-8" in res.stderr
    with Ledger(ledger_path) as lg:
        assert set(lg.current_tree("default", "proj")) == {"ok.txt"}
        assert lg.count(kind="signal") == 2
        assert_no_orphans(lg)


def test_command_that_cannot_start_records_no_decision(ledger_path, tmp_path, monkeypatch):
    work = git_repo(tmp_path / "work")
    (work / "a.txt").write_text("a\n")
    monkeypatch.chdir(work)
    res = exec_here(ledger_path, "--", "no-such-command-xyz")
    assert res.exit_code == 1 and "cannot run" in res.output
    with Ledger(ledger_path) as lg:
        decisions = [s.event for s in lg.events(kind="decision")]
        assert [d.decision.input_trigger for d in decisions] == ["ledger exec baseline"]
        assert_no_orphans(lg)


@pytest.mark.slow
def test_a_2100_level_tree_does_not_stop_the_recording(ledger_path, tmp_path, monkeypatch):
    work = git_repo(tmp_path / "work")
    make_deep(work, 2100)
    try:
        monkeypatch.chdir(work)
        res = exec_here(ledger_path, "--json", "--", "sh", "-c", "echo new > new.txt")
        assert res.exit_code == 0, res.output
        summary = json.loads(res.stderr)
        assert [(c["op"], c["path"]) for c in summary["changes"]] == [("create", "new.txt")]
        assert summary["unrecorded"]
    finally:
        remove_deep(work)


def test_project_of_a_registered_root(ledger_path, tmp_path, monkeypatch):
    work = git_repo(tmp_path / "checkout-dir")
    with Ledger(ledger_path) as lg:
        lg.register_project("default", "web", root=work)
    (work / "src").mkdir()
    monkeypatch.chdir(work / "src")
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "exec", "--", "sh", "-c", "echo x > x"])
    assert res.exit_code == 0, res.output
    with Ledger(ledger_path) as lg:
        assert set(lg.current_tree("default", "web")) == {"src/x"}
        assert lg.project_info("default", "checkout-dir") is None
