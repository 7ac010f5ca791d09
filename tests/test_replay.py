"""Replay equals `git archive` at every commit; time vs recording order; diff; conflicts."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner, Result

from ledger import ChangeRow, Ledger, sha256_hex
from cli import cli
from nervous_system.gitimport import import_git
from replay import resolve_moment
from replay import build_tree, diff_moments, materialize, replay_local
from schemas import Operation, StateChange, SwarmEvent, deterministic_event_id
from tests.git_fixtures import GitRepo, assert_same_tree, build_rich_history, git_archive_tree, snapshot


def run(args: list[str], db) -> Result:
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
    return result


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    """The rich history, imported once for the module."""
    base = tmp_path_factory.mktemp("rich")
    repo = build_rich_history(base / "repo")
    db = base / "ledger.db"
    with Ledger(db) as lg:
        import_git(lg, repo.path, project_id="rich")
    return repo, db


def test_replay_at_every_commit_equals_git_archive(rich, tmp_path):
    repo, db = rich
    commits = repo.first_parent_commits()
    assert len(commits) >= 17
    for i, commit in enumerate(commits):
        out = tmp_path / f"replay-{i}"
        result = run(["replay", "--at", commit[:10], "--out", str(out), "--strict"], db)
        assert result.exit_code == 0, result.output
        assert_same_tree(out, git_archive_tree(repo, commit, tmp_path / f"archive-{i}"))


def test_replay_reproduces_the_hard_cases(rich, tmp_path):
    repo, db = rich
    out = tmp_path / "head"
    assert run(["replay", "--at", repo.head(), "--out", str(out)], db).exit_code == 0
    snap = snapshot(out)
    assert snap[b"escape"] == ("link", b"../../etc/passwd")  # restored as content, never followed
    assert snap[b"dangling"] == ("link", b"does/not/exist")
    assert snap[b"weird_target"] == ("link", b"\xff\xfe-not-utf8")
    assert snap[b"linkdir"] == ("link", b"src")
    assert snap[b"tool"] == ("link", b"script.sh")
    assert snap[b"empty.txt"] == ("file", b"", False)
    assert snap[b"bin-script.sh"][2] is True
    assert snap["é2.txt".encode()][1] == b"accent\n"
    assert snap[b"dir with spaces"][0] == "file"
    assert (out / "bin-script.sh").stat().st_mode & 0o777 == 0o755
    assert (out / "README.md").stat().st_mode & 0o777 == 0o644


def test_replay_at_commit_time_agrees_when_times_increase(rich, tmp_path):
    repo, db = rich
    commits = repo.first_parent_commits()
    times = [repo.commit_time(c) for c in commits]
    assert times == sorted(set(times))  # strictly increasing in this fixture
    for i, (commit, t) in enumerate(zip(commits, times)):
        iso = dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()
        out = tmp_path / f"t-{i}"
        result = run(["replay", "--at", iso, "--out", str(out), "--strict"], db)
        assert result.exit_code == 0, result.output
        assert_same_tree(out, git_archive_tree(repo, commit, tmp_path / f"a-{i}"))


def test_non_monotonic_committer_times(tmp_path):
    """A rebased-looking history: commit 3 is dated before commit 2. --at COMMIT still
    equals git archive; --at TIME follows event time (and reports the conflict)."""
    repo = GitRepo(tmp_path / "repo")
    t0 = 1_700_000_000
    repo.write("a.txt", "one\n")
    c1 = repo.commit("c1", at=t0)
    repo.write("b.txt", "two\n")
    c2 = repo.commit("c2", at=t0 + 3000)
    repo.write("b.txt", "two, edited\n")
    repo.write("a.txt", "one, edited\n")
    c3 = repo.commit("c3", at=t0 + 1000)
    db = tmp_path / "l.db"
    with Ledger(db) as lg:
        import_git(lg, repo.path, project_id="p")
    for i, c in enumerate((c1, c2, c3)):
        out = tmp_path / f"c{i}"
        result = run(["replay", "--at", c, "--out", str(out), "--strict"], db)
        assert result.exit_code == 0, result.output
        assert_same_tree(out, git_archive_tree(repo, c, tmp_path / f"arch{i}"))
    # at c3's time only c1 and c3 happened: c3's edit of b.txt meets a missing file
    at_time = dt.datetime.fromtimestamp(t0 + 1000, dt.timezone.utc).isoformat()
    strict = run(["replay", "--at", at_time, "--out", str(tmp_path / "strict"), "--strict"], db)
    assert strict.exit_code == 1
    assert "conflict" in strict.output and not (tmp_path / "strict").exists()
    loose = run(["replay", "--at", at_time, "--out", str(tmp_path / "loose"), "--json"], db)
    assert loose.exit_code == 0, loose.output
    report = json.loads(loose.output)
    assert [(c["path"], c["problem"]) for c in report["conflicts"]] == [("b.txt", "missing")]
    assert report["moment"]["kind"] == "time"
    assert snapshot(tmp_path / "loose") == {
        b"a.txt": ("file", b"one, edited\n", False), b"b.txt": ("file", b"two, edited\n", False)}


def _event(ts: int, n: int, op: str, path: str, new: bytes | None, prev: bytes | None, **kw) -> SwarmEvent:
    return SwarmEvent(
        event_id=deterministic_event_id(ts // 1_000_000, "t", str(n)), timestamp=ts,
        tenant_id="default", project_id="p", agent_id="agent",
        state_change=StateChange(
            target_resource=path, operation=Operation(op),
            new_state_hash=sha256_hex(new) if new is not None else "",
            previous_state_hash=sha256_hex(prev) if prev is not None else "",
            file_mode=kw.pop("mode", "regular") if new is not None else "unspecified", **kw),
    )


def test_conflicts_are_reported_and_strict_writes_nothing(tmp_path, ledger_path):
    t = 1_700_000_000_000_000_000
    with Ledger(ledger_path) as lg:
        lg.append(_event(t, 1, "create", "a.txt", b"v1", None), {sha256_hex(b"v1"): b"v1"})
        # claims to modify content that was never there
        lg.append(_event(t + 1, 2, "modify", "a.txt", b"v3", b"v2"), {sha256_hex(b"v3"): b"v3"})
        lg.append(_event(t + 2, 3, "delete", "gone.txt", None, b"x"))
    out = tmp_path / "out"
    strict = run(["replay", "--at", "now", "--out", str(out), "--strict"], ledger_path)
    assert strict.exit_code == 1
    assert "hash mismatch" in strict.output and "nothing was written" in strict.output
    assert not out.exists()
    loose = run(["replay", "--at", "now", "--out", str(out)], ledger_path)
    assert loose.exit_code == 0
    assert "2 conflicts" in loose.output
    assert (out / "a.txt").read_bytes() == b"v3"  # the recorded history wins
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"]


def test_build_tree_rules():
    def row(n, op, path, new="", prev="", mode="regular", prev_path="", previous_mode=""):
        return ChangeRow(event_id=f"e{n}", time_ns=n, order=n, operation=op, path=path,
                         previous_path=prev_path, previous_hash=prev, new_hash=new, mode=mode,
                         previous_mode=previous_mode)

    h = {k: sha256_hex(k.encode()) for k in "abcd"}
    tree, conflicts = build_tree([
        row(1, "create", "x/y", h["a"]),
        row(2, "create", "x/y", h["b"]),                         # exists
        row(3, "rename", "z", h["b"], h["b"], prev_path="x/y"),  # clean rename
        row(4, "modify", "z", h["c"], h["a"]),                   # hash mismatch
        row(5, "modify", "z", h["c"], h["c"], mode="executable", previous_mode="regular"),  # mode mismatch? no: z is regular
        row(6, "create", "z/inner", h["d"]),                     # z is a file: parent_is_file
        row(7, "create", "z", h["a"]),                           # z is a directory now
    ])
    assert [c.problem for c in conflicts] == ["exists", "hash_mismatch", "parent_is_file", "is_directory"]
    assert tree == {"z": (h["a"], "regular")}


def test_diff_between_moments(rich, tmp_path):
    repo, db = rich
    commits = repo.first_parent_commits()
    with Ledger(db) as lg:
        a = resolve_moment(lg, "default", "rich", commits[1])
        b = resolve_moment(lg, "default", "rich", commits[2])
        d = diff_moments(lg, "default", "rich", a, b)
    by_path = {p.path: p for p in d.paths}
    assert by_path["src/app.py"].status == "removed"
    assert by_path["src/main.py"].status == "added"
    assert "+# moved" in by_path["src/main.py"].patch
    assert by_path["é2.txt"].status == "added"
    result = run(["diff", commits[0], commits[1], "--stat"], db)
    assert result.exit_code == 0, result.output
    assert "script.sh" in result.output and "mode regular -> executable" in result.output
    js = json.loads(run(["diff", commits[3], commits[4], "--json"], db).output)
    assert js["modified"] == 1 and js["paths"][0]["path"] == "swap"
    assert js["paths"][0]["new_mode"] == "symlink"


def test_materialize_other_source_rows(tmp_path):
    """The materializer only needs rows and a blob reader (what the hub will feed it)."""
    blobs = {sha256_hex(b"x"): b"x", sha256_hex(b"target"): b"target"}
    rows = [
        ChangeRow("e1", 1, b"\x00" * 10, "create", "d/f", "", "", sha256_hex(b"x"), "executable", ""),
        ChangeRow("e2", 2, b"\x00" * 9 + b"\x01", "create", "l", "", "", sha256_hex(b"target"), "symlink", ""),
    ]
    report = materialize(rows, blobs.__getitem__, tmp_path / "o")
    assert (report.files, report.symlinks, report.executables) == (1, 1, 1)
    assert snapshot(tmp_path / "o") == {b"d/f": ("file", b"x", True), b"l": ("link", b"target")}
    with pytest.raises(Exception, match="does not match"):
        materialize(rows, lambda h: b"tampered", tmp_path / "o2")
    assert not (tmp_path / "o2").exists()


def test_replay_local_library(rich, tmp_path):
    repo, db = rich
    with Ledger(db) as lg:
        moment = resolve_moment(lg, "default", "rich", repo.head())
        seen = []
        report = replay_local(lg, "default", "rich", moment, tmp_path / "o",
                              progress=lambda done, total: seen.append((done, total)))
    assert report.conflicts == []
    assert seen and seen[-1][0] == seen[-1][1] == len(report.tree)
    assert report.files + report.symlinks == len(report.tree)
