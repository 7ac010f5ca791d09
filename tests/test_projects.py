"""The project comes from the repository you stand in; a mistyped project is an error
listing the known ones (never a silent new project); projects can be added, renamed and
removed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger
from nervous_system import Recorder
from tests.git_fixtures import GitRepo


def run(db, *args, cwd=None, monkeypatch=None):
    if cwd is not None:
        monkeypatch.chdir(cwd)
    return CliRunner().invoke(cli, ["--db", str(db), *args])


@pytest.fixture
def two_repos(tmp_path, ledger_path):
    repos = {}
    for name in ("web", "api"):
        repo = GitRepo(tmp_path / name)
        repo.write(f"{name}.txt", f"{name}\n")
        repo.write("src/deep/x.txt", "x\n")
        repo.commit(f"start {name}")
        assert run(ledger_path, "import", "git", str(repo.path)).exit_code == 0
        repos[name] = repo
    return repos


def test_commands_inside_a_repository_pick_its_project(two_repos, ledger_path, monkeypatch):
    for name, repo in two_repos.items():
        res = run(ledger_path, "log", "--json", cwd=repo.path / "src" / "deep", monkeypatch=monkeypatch)
        assert res.exit_code == 0, res.output
        assert {e["project_id"] for e in json.loads(res.stdout)} == {name}
    outside = run(ledger_path, "log", cwd=two_repos["web"].path.parent, monkeypatch=monkeypatch)
    assert outside.exit_code == 1 and "several projects" in outside.output and "api" in outside.output
    listed = json.loads(run(ledger_path, "projects", "--json").stdout)
    assert {p["project_id"]: p["root"] for p in listed} == {
        n: str(r.path.resolve()) for n, r in two_repos.items()}
    assert all(p["identity"].startswith("git:") for p in listed)


def test_a_mistyped_project_is_an_error_with_suggestions(two_repos, ledger_path):
    res = run(ledger_path, "log", "--project", "wbe")
    assert res.exit_code == 1 and "did you mean web" in res.output and "ledger projects add wbe" in res.output
    line = '{"decision": {"rationale": "x"}}\n'
    rec = CliRunner().invoke(cli, ["--db", str(ledger_path), "--project", "wbe", "record"], input=line)
    assert rec.exit_code == 1 and "did you mean web" in rec.output
    with Ledger(ledger_path) as lg:
        assert sorted(p.project_id for p in lg.project_infos()) == ["api", "web"]  # nothing created


def test_add_rename_remove(ledger_path, tmp_path):
    with Ledger(ledger_path) as lg:
        Recorder(lg, project_id="wbe", agent_id="a").file_change("a.txt", b"1\n")
    assert run(ledger_path, "projects", "rename", "wbe", "web").exit_code == 0
    with Ledger(ledger_path) as lg:
        assert [p.project_id for p in lg.project_infos()] == ["web"]
        stored = list(lg.events())
        assert {s.project_id for s in stored} == {"web"} and {s.event.project_id for s in stored} == {"web"}
        assert lg.path_state("default", "web", "a.txt") is not None
        lg.mark_synced([(stored[0].seq, b"\x00" * 12)])
    refused = run(ledger_path, "projects", "rename", "web", "other")
    assert refused.exit_code == 1 and "already on the hub" in refused.output
    assert run(ledger_path, "projects", "add", "scratch", "--root", str(tmp_path)).exit_code == 0
    no = run(ledger_path, "projects", "rm", "scratch")
    assert no.exit_code == 2 and "--yes" in no.output
    assert run(ledger_path, "projects", "rm", "scratch", "--yes").exit_code == 0
    with Ledger(ledger_path) as lg:
        assert [p.project_id for p in lg.project_infos()] == ["web"]


def test_one_work_tree_belongs_to_one_project(ledger_path, tmp_path):
    with Ledger(ledger_path) as lg:
        lg.register_project("default", "web", root=tmp_path)
        from ledger import StoreError

        with pytest.raises(StoreError, match="already the work tree of project 'web'"):
            lg.register_project("default", "other", root=tmp_path)


def test_the_first_project_may_be_started_by_recording(ledger_path):
    line = '{"decision": {"rationale": "x"}}\n'
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "--project", "web", "record"], input=line)
    assert res.exit_code == 0, res.output
    with Ledger(ledger_path) as lg:
        assert [p.project_id for p in lg.project_infos()] == ["web"]
