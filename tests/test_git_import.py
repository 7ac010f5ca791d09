"""`ledger import git`: events per commit, idempotency, invalid paths, submodules."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ledger import Ledger, sha256_hex
from cli import cli
from nervous_system.gitimport import GitImportError, InvalidGitPath, import_git
from replay import resolve_moment
from replay import replay_local
from tests.git_fixtures import GitRepo, assert_same_tree, build_rich_history, git_archive_tree, snapshot


def run(args, db):
    return CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)


@pytest.fixture
def small(tmp_path) -> GitRepo:
    r = GitRepo(tmp_path / "small")
    r.write("a.txt", "alpha\n")
    r.write("tool.sh", "#!/bin/sh\n", executable=True)
    r.symlink("link", "a.txt")
    r.commit("first commit\n\nlong explanation")
    r.git("mv", "a.txt", "b.txt")
    r.write("b.txt", "alpha\nbeta\n")
    r.remove("tool.sh")
    r.commit("second")
    return r


def test_events_of_a_commit(small, ledger_path):
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, small.path, project_id="small")
        assert (summary.commits, summary.commits_imported, summary.events_added) == (2, 2, 2 + 3 + 2)
        c1, c2 = small.first_parent_commits()
        events = [s.event for s in lg.events(project_id="small", order="seq")]
    first = [e for e in events if e.related_commit_hash == c1]
    decision = first[0]
    assert decision.kind == "decision"
    assert decision.decision.rationale == "first commit\n\nlong explanation"
    assert decision.agent_id == "ada@example.com" and decision.user_id == "Ada Lovelace"
    assert decision.agent_role.value == "coder" and decision.session_id == c1
    assert decision.timestamp == small.commit_time(c1) * 1_000_000_000
    changes = {e.state_change.target_resource: e for e in first[1:]}
    assert all(e.caused_by == decision.event_id and e.timestamp == decision.timestamp
               for e in changes.values())
    assert changes["tool.sh"].state_change.file_mode.value == "executable"
    link = changes["link"].state_change
    assert link.file_mode.value == "symlink" and link.new_state_hash == sha256_hex(b"a.txt")
    assert changes["a.txt"].state_change.new_state_hash == sha256_hex(b"alpha\n")
    # no diff on import (made on demand from the blobs): line counts are git's
    assert changes["a.txt"].state_change.diff_patch == ""
    assert (changes["a.txt"].state_change.lines_added, changes["a.txt"].state_change.lines_removed) == (1, 0)
    assert (link.lines_added, link.lines_removed) == (0, 0)  # a symlink's content is a target
    second = {e.state_change.target_resource: e.state_change for e in events
              if e.related_commit_hash == c2 and e.kind == "state_change"}
    rename = second["b.txt"]
    assert rename.operation.value == "rename" and rename.previous_resource == "a.txt"
    assert rename.previous_state_hash == sha256_hex(b"alpha\n")
    assert rename.new_state_hash == sha256_hex(b"alpha\nbeta\n")
    assert (rename.lines_added, rename.lines_removed) == (1, 0)
    assert second["tool.sh"].operation.value == "delete"
    assert second["tool.sh"].previous_file_mode.value == "executable"


def test_reimport_adds_nothing_and_extends_incrementally(small, ledger_path):
    with Ledger(ledger_path) as lg:
        import_git(lg, small.path, project_id="p", rev="HEAD~1")
        before = lg.count()
        small.write("c.txt", "new\n")
        small.commit("third")
        s2 = import_git(lg, small.path, project_id="p")
        assert (s2.commits_present, s2.commits_imported) == (1, 2)
        bodies = {s.event_id: s.body for s in lg.events()}
        assert len(bodies) == before + s2.events_added
        s3 = import_git(lg, small.path, project_id="p")
        assert (s3.events_added, s3.commits_imported, s3.new_content_bytes) == (0, 0, 0)
        assert s3.events_present == len(bodies)
        assert {s.event_id: s.body for s in lg.events()} == bodies


def test_interrupted_import_completes_on_rerun(tmp_path, monkeypatch):
    """A failure between batches (what a crash does) leaves whole commits only; the
    re-run finishes and the result equals a clean import, event for event."""
    repo = build_rich_history(tmp_path / "repo")
    clean_db, broken_db = tmp_path / "clean.db", tmp_path / "broken.db"
    with Ledger(clean_db) as lg:
        import_git(lg, repo.path, project_id="p", batch_commits=3)
        clean = {s.event_id: s.body for s in lg.events()}
    calls = {"n": 0}
    real = Ledger.append_prepared  # the import's write step, on its writer thread

    def flaky(self, prepared):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("simulated crash")
        return real(self, prepared)

    monkeypatch.setattr(Ledger, "append_prepared", flaky)
    with Ledger(broken_db) as lg:
        with pytest.raises(OSError):
            import_git(lg, repo.path, project_id="p", batch_commits=3)
        partial = list(lg.events(order="seq"))
        commits = {s.event.related_commit_hash for s in partial}
        assert len(commits) == 6  # two whole batches of 3 commits
        for commit in commits:  # every commit is whole
            assert sum(1 for s in partial if s.event.related_commit_hash == commit) == \
                sum(1 for b in clean.values() if commit.encode() in b)
    monkeypatch.setattr(Ledger, "append_prepared", real)
    with Ledger(broken_db) as lg:
        s = import_git(lg, repo.path, project_id="p")
        assert s.commits_present == 6
        assert {x.event_id: x.body for x in lg.events()} == clean


def test_invalid_utf8_path_refused_with_nothing_written(tmp_path, ledger_path):
    repo = GitRepo(tmp_path / "repo")
    repo.write("ok.txt", "fine\n")
    repo.commit("good")
    repo.write(b"bad\xff.txt", "latin-1 name\n")
    bad = repo.commit("adds a bad name")
    repo.write("later.txt", "x\n")
    repo.commit("later")
    with Ledger(ledger_path) as lg:
        with pytest.raises(InvalidGitPath) as info:
            import_git(lg, repo.path, project_id="p")
        assert bad in str(info.value) and "UTF-8" in str(info.value)
        assert "--skip-invalid-paths" in str(info.value)
        assert lg.count() == 0
        summary = import_git(lg, repo.path, project_id="p", skip_invalid_paths=True)
        assert [(s.commit, s.path) for s in summary.skipped_paths] == [(bad, "bad\\xff.txt")]
        moment = resolve_moment(lg, "default", "p", repo.head())
        replay_local(lg, "default", "p", moment, tmp_path / "out")
    expected = snapshot(git_archive_tree(repo, repo.head(), tmp_path / "arch"))
    del expected[b"bad\xff.txt"]
    assert snapshot(tmp_path / "out") == expected
    result = run(["import", "git", str(repo.path), "--project", "q"], ledger_path)
    assert result.exit_code == 1 and "not valid UTF-8" in result.output


def test_submodules_are_skipped_like_git_archive(tmp_path, ledger_path):
    repo = GitRepo(tmp_path / "repo")
    repo.write("a.txt", "a\n")
    first = repo.commit("a")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{first},vendor/sub")
    repo.git("commit", "-q", "-m", "add a submodule", at=repo.time + 60)
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, repo.path, project_id="p")
        assert summary.skipped_submodule_changes == 1
        assert lg.count(kind="state_change") == 1
        moment = resolve_moment(lg, "default", "p", repo.head())
        replay_local(lg, "default", "p", moment, tmp_path / "out")
    assert_same_tree(tmp_path / "out", git_archive_tree(repo, repo.head(), tmp_path / "arch"))


def test_cli_import_json_and_errors(small, ledger_path, tmp_path):
    result = run(["import", "git", str(small.path), "--json"], ledger_path)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["project_id"] == "small" and data["commits"] == 2 and data["events_added"] == 7
    assert data["new_content_bytes"] == len(b"alpha\n") + len(b"#!/bin/sh\n") + len(b"a.txt") + len(b"alpha\nbeta\n")
    again = run(["import", "git", str(small.path)], ledger_path)
    assert again.exit_code == 0 and "0 events added, 7 already present" in again.output
    (tmp_path / "plain").mkdir()
    bad = run(["import", "git", str(tmp_path / "plain")], ledger_path)
    assert bad.exit_code == 1 and "git" in bad.output
    rev = run(["import", "git", str(small.path), "--rev", "no-such-branch"], ledger_path)
    assert rev.exit_code == 1 and "no-such-branch" in rev.output


def test_import_is_one_git_log_one_line_counter_and_one_cat_file(small, ledger_path, spawned):
    """Speed by design: one history stream, one line-count stream, one long-lived blob
    reader; a re-import starts neither the line counter nor the blob reader's work."""
    before = len(spawned)
    with Ledger(ledger_path) as lg:
        import_git(lg, small.path, project_id="p")
        long_lived = [c for c in spawned[before:] if {"log", "cat-file", "diff-tree"} & set(c)]
        assert sum("log" in c for c in long_lived) == 1
        assert sum("diff-tree" in c for c in long_lived) == 1
        assert sum("cat-file" in c for c in long_lived) == 1
        again = len(spawned)
        import_git(lg, small.path, project_id="p")
        assert not any("diff-tree" in c for c in spawned[again:])


def test_not_a_repository(tmp_path, ledger_path):
    with Ledger(ledger_path) as lg, pytest.raises(GitImportError, match="no such directory"):
        import_git(lg, tmp_path / "missing")


def test_huge_commits_stream_contents_in_chunks(tmp_path, ledger_path, monkeypatch):
    """Contents of a commit are read a chunk of entries at a time and stored ahead of
    the events when they pile up; the result is the same history."""
    from nervous_system.gitimport import plumbing, writer

    monkeypatch.setattr(plumbing, "ENTRIES_PER_FETCH", 3)
    monkeypatch.setattr(writer, "SPILL_BLOB_BYTES", 100)
    repo = build_rich_history(tmp_path / "repo")
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, repo.path, project_id="p")
        assert summary.new_blobs == len({s.event.state_change.new_state_hash
                                         for s in lg.events(kind="state_change")} - {""})
        for i, commit in enumerate(repo.first_parent_commits()):
            moment = resolve_moment(lg, "default", "p", commit)
            replay_local(lg, "default", "p", moment, tmp_path / f"o{i}", strict=True)
            assert_same_tree(tmp_path / f"o{i}", git_archive_tree(repo, commit, tmp_path / f"a{i}"))
