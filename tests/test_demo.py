"""``ledger demo``: the main job runs end to end and really checks its replays."""

from __future__ import annotations

import json

from click.testing import CliRunner

from cli import cli
from cli.demo_job import run_demo
from tests.git_fixtures import GitRepo, build_rich_history


def test_demo_on_a_git_history_checks_every_replay(tmp_path):
    repo = build_rich_history(tmp_path / "repo")
    result = CliRunner().invoke(cli, ["demo", "--repo", str(repo.path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["commits"] == len(repo.first_parent_commits())
    assert len(report["checks"]) >= 2
    assert all(c["differences"] == [] and c["conflicts"] == 0 for c in report["checks"])


def test_demo_without_a_repository_records_an_sdk_session(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--sdk", "--keep", str(tmp_path / "kept")])
    assert result.exit_code == 0, result.output
    assert "every replay matched exactly" in result.output
    assert (tmp_path / "kept" / "ledger.db").exists()
    # the last moment of the scripted session: the rename kept the executable bit
    last = sorted((tmp_path / "kept" / "replay").iterdir())[-1]
    assert (last / "hello.py").stat().st_mode & 0o100
    assert (last / "greet").is_symlink()


def test_demo_reports_a_mismatch_with_exit_1(tmp_path, monkeypatch):
    """The check is real: corrupt what git archive produced and the demo must fail."""
    repo = GitRepo(tmp_path / "repo")
    repo.write("a.txt", "one\n")
    repo.commit("one")
    import cli.demo_job as demo

    real = demo.git_archive_to

    def tampered(repo_path, commit, dest):
        out = real(repo_path, commit, dest)
        (out / "a.txt").write_text("tampered\n")
        return out

    monkeypatch.setattr(demo, "git_archive_to", tampered)
    report = run_demo(tmp_path / "work", repo.path)
    assert not report.ok
    assert report.checks[0].differences == ["a.txt content differs (4 bytes, expected 9)"]
    result = CliRunner().invoke(cli, ["demo", "--repo", str(repo.path)])
    assert result.exit_code == 1 and "SOME REPLAYS DIFFERED" in result.output
