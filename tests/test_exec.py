"""``ledger exec``: every file change a command makes (shell included) is recorded and
replays to exactly the tree the command left."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

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
