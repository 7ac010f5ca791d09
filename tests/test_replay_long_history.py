"""Replay of a 20,000-commit history equals ``git archive`` at every 500th commit (and
at the last), starting from replay snapshots; the snapshots are spaced by the rule and
the blobs are delta chains."""

from __future__ import annotations

import sqlite3

import pytest

from ledger import Ledger
from nervous_system.gitimport import import_git
from replay import LocalHistory, replay_local, resolve_moment
from replay import snapshots
from tests.git_fixtures import assert_same_tree
from tests.git_history import fast_history
from replay import verify

pytestmark = pytest.mark.slow


def test_replay_at_every_500th_of_20000_commits_equals_git_archive(tmp_path, ledger_path):
    repo = tmp_path / "repo"
    commits = fast_history(repo, 20_000, seed=3)
    assert len(commits) == 20_000
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, repo, project_id="long")
        assert summary.commits_imported == 20_000
        assert snapshots.refresh(lg, "default", "long") >= 20
        infos = lg.snapshots("default", "long")
        history = LocalHistory(lg, "default", "long")
        picks = commits[499::500] + [commits[0]]
        for i, commit in enumerate(picks):
            moment = resolve_moment(lg, "default", "long", commit)
            start, rest = history.plan(moment)
            assert len(list(rest)) < max(snapshots.MIN_SPACING, len(start.tree))  # bounded work
            out = tmp_path / f"replay-{i}"
            replay_local(lg, "default", "long", moment, out)
            expected = verify.git_archive_to(repo, commit, tmp_path / f"archive-{i}")
            assert_same_tree(out, expected)
        assert [s.seq for s in lg.snapshots("default", "long")] == [s.seq for s in infos]
    with sqlite3.connect(ledger_path) as conn:
        encodings = dict(conn.execute("SELECT encoding, count(*) FROM blobs GROUP BY encoding").fetchall())
        depth = conn.execute("SELECT max(chain_pos) FROM blobs").fetchone()[0]
    assert encodings.get("zstd-delta", 0) > 10 * encodings.get("zstd", 0)  # most versions are deltas
    assert depth == 15
