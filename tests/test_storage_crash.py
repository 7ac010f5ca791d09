"""kill -9 in the middle of writing a delta chain or a replay snapshot loses nothing
and replay stays exact (real processes; the kill is placed with ledger.faults).

* ``blobs.after_delta``: ``ledger import git`` dies with a delta row of its batch written
  but not committed; a re-run imports the rest, and every commit replays exactly.
* ``snapshots.before_commit``: the snapshot pass after an import, and a replay that
  builds snapshots, die with a snapshot row written but not committed; no damaged
  snapshot is ever stored, replays stay exact, and a later run builds the rest.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess

import pytest

from ledger import Ledger
from replay import LocalHistory, replay_local, resolve_moment
from replay import verify
from tests.git_fixtures import assert_same_tree
from tests.git_history import fast_history

pytestmark = pytest.mark.slow

SPACING = "40"


def ledger_cmd(python, ledger_path, *args):
    return [python, "-c", "from cli import cli; cli()", "--db", str(ledger_path), *args]


def run(cmd, crash_at=None):
    env = {**os.environ, "LEDGER_SNAPSHOT_MIN_SPACING": SPACING}
    env.pop("LEDGER_CRASH_AT", None)
    if crash_at:
        env["LEDGER_CRASH_AT"] = crash_at
    return subprocess.run(cmd, env=env, capture_output=True, timeout=300)


def replay_matches_git(lg, repo, commits, tmp_path, tag):
    for i, commit in enumerate(commits):
        out = tmp_path / f"{tag}-{i}"
        replay_local(lg, "default", "repo", resolve_moment(lg, "default", "repo", commit), out)
        assert_same_tree(out, verify.git_archive_to(repo, commit, tmp_path / f"{tag}-git-{i}"))


def test_kill_9_mid_delta_chain_and_mid_snapshot_loses_nothing(tmp_path, ledger_path, python):
    repo = tmp_path / "repo"
    commits = fast_history(repo, 300, seed=5, files=40)
    imp = ledger_cmd(python, ledger_path, "import", "git", str(repo), "--batch-commits", "25")

    died = run(imp, crash_at="blobs.after_delta:200")  # mid-batch, after earlier batches committed
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()
    with Ledger(ledger_path) as lg:
        imported = lg.commits("default", "repo", "")
        assert 0 < len(imported) < len(commits)  # some whole batches, not all
        assert lg.snapshots("default", "repo") == []

    died = run(imp, crash_at="snapshots.before_commit:3")  # the import finishes, its snapshot pass dies
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()
    with Ledger(ledger_path) as lg:
        assert len(lg.commits("default", "repo", "")) == len(commits)
        kept = lg.snapshots("default", "repo")
        assert len(kept) == 2  # the third snapshot's transaction never committed
        assert all(lg.load_snapshot(s) is not None for s in kept)
        with lg.write_transaction() as conn:  # every blob reads back whole (chains intact)
            hashes = [r[0] for r in conn.execute("SELECT hash FROM blobs")]
        assert all(lg.get_blob(h) is not None for h in hashes)
        replay_matches_git(lg, repo, commits[::37] + commits[-1:], tmp_path, "a")

    died = run(ledger_cmd(python, ledger_path, "replay", "--at", commits[-1], "--out",
                          str(tmp_path / "cli-out")), crash_at="snapshots.before_commit:2")
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()
    assert not (tmp_path / "cli-out").exists()
    with Ledger(ledger_path) as lg:
        after = lg.snapshots("default", "repo")
        assert len(after) == len(kept) + 1 and all(lg.load_snapshot(s) is not None for s in after)

    done = run(ledger_cmd(python, ledger_path, "replay", "--at", commits[-1], "--out", str(tmp_path / "cli-out")))
    assert done.returncode == 0, done.stderr.decode()
    assert_same_tree(tmp_path / "cli-out", verify.git_archive_to(repo, commits[-1], tmp_path / "last"))
    with Ledger(ledger_path) as lg:
        final = lg.snapshots("default", "repo")
        assert len(final) > len(after)
        changes = sum(1 for _ in lg.changes("default", "repo", order="seq"))
        assert final[-1].changes > changes - int(SPACING) - max(s.entries for s in final)
        with sqlite3.connect(ledger_path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("SELECT count(*) FROM blobs WHERE encoding = 'zstd-delta'").fetchone()[0] > 100
        replay_matches_git(lg, repo, commits[::23] + commits[-1:], tmp_path, "b")
