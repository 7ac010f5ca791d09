"""Git import at git speed: line counts from git (no diff on import), ids that depend on
what events describe (two machines, two byte views, no collision), and re-imports that
recognise commits stored under the earlier id scheme."""

from __future__ import annotations

import difflib
import subprocess

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger
from nervous_system.gitimport import import_git
from schemas import deterministic_event_id
from tests.git_fixtures import GitRepo, build_rich_history


def git_numstat(repo: GitRepo) -> dict[tuple[str, str], tuple[int, int]]:
    """{(commit, path): (added, removed)} from `git log --numstat` (renames keyed by
    their destination; binary shows 0)."""
    out = subprocess.run(
        ["git", "-C", str(repo.path), "-c", "core.quotepath=off", "log", "--first-parent", "--root", "-M",
         "--numstat", "-z", "--format=%x00%H", "--diff-merges=first-parent", "HEAD"],
        capture_output=True, check=True).stdout
    counts, commit = {}, None
    tokens = iter(out.split(b"\x00"))
    for tok in tokens:
        tok = tok.lstrip(b"\n")
        if len(tok) == 40 and b"\t" not in tok:
            commit = tok.decode()
            continue
        if not tok:
            continue
        added, removed, path = tok.split(b"\t", 2)
        if not path:
            next(tokens)
            path = next(tokens)
        counts[(commit, path.decode())] = (0 if added == b"-" else int(added), 0 if removed == b"-" else int(removed))
    return counts


def test_line_counts_come_from_git_and_no_diff_is_computed(tmp_path, ledger_path, monkeypatch):
    repo = build_rich_history(tmp_path / "repo")
    expected = git_numstat(repo)

    def no_difflib(*args, **kwargs):
        raise AssertionError("import must not diff contents")

    monkeypatch.setattr(difflib, "unified_diff", no_difflib)
    with Ledger(ledger_path) as lg:
        import_git(lg, repo.path, project_id="p")
        changes = [s.event for s in lg.events(kind="state_change")]
    monkeypatch.undo()
    checked = 0
    for ev in changes:
        sc = ev.state_change
        assert sc.diff_patch == ""
        got = (sc.lines_added, sc.lines_removed)
        if "symlink" in (sc.file_mode.value, sc.previous_file_mode.value):
            assert got == (0, 0)
            continue
        key = (ev.related_commit_hash, sc.target_resource)
        assert got == expected[key], (key, got)
        checked += 1
    assert checked > 20
    big = next(e.state_change for e in changes if e.state_change.target_resource == "big.txt")
    assert (big.lines_added, big.lines_removed) == (200_000, 0)  # git counts what difflib skipped
    binary = [e.state_change for e in changes if e.state_change.target_resource == "bin.dat"]
    assert all((b.lines_added, b.lines_removed) == (0, 0) for b in binary)
    rename = next(e.state_change for e in changes if e.state_change.target_resource == "src/main.py"
                  and e.state_change.operation.value == "rename")
    assert (rename.lines_added, rename.lines_removed) == (1, 0)


def test_show_patch_makes_the_diff_from_the_blobs(tmp_path, ledger_path):
    repo = GitRepo(tmp_path / "repo")
    repo.write("a.py", "x = 1\ny = 2\n")
    repo.commit("one")
    repo.git("mv", "a.py", "b.py")
    repo.write("b.py", "x = 1\ny = 3\n")
    repo.commit("two")
    with Ledger(ledger_path) as lg:
        import_git(lg, repo.path, project_id="p")
        rename = next(s for s in lg.events(kind="state_change") if s.event.state_change.operation.value == "rename")
    result = CliRunner().invoke(cli, ["--db", str(ledger_path), "show", rename.event_id, "--patch"])
    assert result.exit_code == 0, result.output
    assert "--- a/a.py\n+++ b/b.py\n" in result.output and "-y = 2\n+y = 3\n" in result.output


def _crlf_history(path) -> GitRepo:
    repo = GitRepo(path)
    repo.write("same.bin", b"\x00binary, the same everywhere")
    repo.write("a.txt", "one\ntwo\n")
    repo.commit("one")
    repo.write("a.txt", "one\ntwo\nthree\n")
    repo.write("new.bin", b"\x00also binary")
    repo.commit("two")
    return repo


def test_two_machines_with_different_attributes_never_collide(tmp_path):
    """The same history imported with core.autocrlf=true (CRLF bytes) and without
    (LF bytes): both imports meet in one ledger (what the hub does) with no event id
    given to two different events; the raw and the archive views stay apart."""
    repo = _crlf_history(tmp_path / "repo")
    lf, crlf = tmp_path / "lf.db", tmp_path / "crlf.db"
    with Ledger(lf) as lg:
        assert import_git(lg, repo.path, project_id="p").attributes == "none found"
        lf_events = {s.event_id: s.body for s in lg.events()}
    repo.git("config", "core.autocrlf", "true")
    with Ledger(crlf) as lg:
        assert import_git(lg, repo.path, project_id="p").attributes == "applied"
        crlf_events = {s.event_id: s.body for s in lg.events()}
        blobs = {h: lg.get_blob(h) for h in {s.event.state_change.new_state_hash
                                               for s in lg.events(kind="state_change")} if h}
    repo.git("config", "core.autocrlf", "false")  # a third machine: attributes, LF bytes
    (repo.path / ".git" / "info" / "attributes").write_text("*.txt -text\n")
    with Ledger(tmp_path / "info.db") as lg:
        assert import_git(lg, repo.path, project_id="p").attributes == "applied"
        info_events = {s.event_id: s.body for s in lg.events()}
    assert len(lf_events) == len(crlf_events) == len(info_events) == 6
    assert not lf_events.keys() & crlf_events.keys()  # raw and archive imports stay apart
    shared = info_events.keys() & crlf_events.keys()
    assert all(info_events[i] == crlf_events[i] for i in shared)  # one id, one event
    assert len(shared) == 4  # two decisions and the binary files; a.txt differs in bytes
    with Ledger(lf) as lg:  # the other machines' events arrive next to these: none refused
        for other in (crlf, tmp_path / "info.db"):
            lg.append_many([s.event for s in Ledger(other).events(order="seq")], blobs)
        assert lg.count() == len(lf_events.keys() | crlf_events.keys() | info_events.keys())
    # a re-import on either machine adds nothing
    with Ledger(crlf) as lg:
        assert import_git(lg, repo.path, project_id="p").events_added == 0


def _old_scheme(ledger_path, source_path, tenant="default"):
    """Copy of a ledger with the event ids of the previous import scheme
    (``deterministic_event_id(ms, tenant, project, commit, "decision"|"change", path)``)."""
    with Ledger(source_path) as src, Ledger(ledger_path) as dst:
        events = [s.event for s in src.events(order="seq")]
        blobs = {e.state_change.new_state_hash: src.get_blob(e.state_change.new_state_hash)
                 for e in events if e.state_change and e.state_change.new_state_hash}
        old = []
        for e in events:
            ms = e.timestamp // 1_000_000
            decision = deterministic_event_id(ms, tenant, e.project_id, e.related_commit_hash, "decision")
            if e.decision is not None:
                old.append(e.model_copy(update={"event_id": decision}))
            else:
                old.append(e.model_copy(update={"event_id": deterministic_event_id(
                    ms, tenant, e.project_id, e.related_commit_hash, "change", e.state_change.target_resource),
                    "caused_by": decision}))
        dst.append_many(old, blobs)
        return {s.event_id for s in dst.events()}


@pytest.mark.parametrize("attributes", [False, True])
def test_reimport_recognises_commits_stored_under_the_old_id_scheme(tmp_path, attributes):
    repo = build_rich_history(tmp_path / "repo")
    if attributes:
        repo.git("config", "core.autocrlf", "true")
    fresh, old = tmp_path / "fresh.db", tmp_path / "old.db"
    with Ledger(fresh) as lg:
        import_git(lg, repo.path, project_id="p")
    ids = _old_scheme(old, fresh)
    with Ledger(old) as lg:
        again = import_git(lg, repo.path, project_id="p")
        assert (again.events_added, again.commits_imported) == (0, 0)
        assert again.commits_present == again.commits and again.events_present == len(ids)
        repo.write("later.txt", "later\n")
        repo.commit("a later commit")
        more = import_git(lg, repo.path, project_id="p")
        assert (more.commits_imported, more.events_added) == (1, 2)
        assert {s.event_id for s in lg.events()} - ids == {
            s.event_id for s in lg.events(commit=repo.head())}


def test_an_agent_decision_naming_a_commit_does_not_count_as_imported(tmp_path, ledger_path):
    from nervous_system import Recorder

    repo = GitRepo(tmp_path / "repo")
    repo.write("a.txt", "a\n")
    commit = repo.commit("one")
    with Ledger(ledger_path) as lg:
        Recorder(lg, project_id="p", agent_id="bot").decision("reviewed it", commit=commit)
        summary = import_git(lg, repo.path, project_id="p")
        assert (summary.commits_imported, summary.events_added) == (1, 2)
