"""The SDK on an existing repository without a prior import: the first change of a path
that exists in git HEAD or the work tree takes its baseline from there, so replay equals
the repository (no `create` for a tracked file, no refused delete)."""

from __future__ import annotations

from click.testing import CliRunner

from cli import cli
from ledger import Ledger
from nervous_system import Recorder
from tests.git_fixtures import GitRepo


def test_first_changes_take_their_baseline_from_the_repository(tmp_path, ledger_path):
    repo = GitRepo(tmp_path / "repo")
    repo.write("a.txt", "committed\n")
    repo.write("tool.sh", "#!/bin/sh\n", executable=True)
    repo.write("gone.txt", "to be deleted\n")
    repo.commit("existing project")
    (repo.path / "scratch.txt").write_text("untracked, before the agent\n")
    with Ledger(ledger_path) as lg:
        lg.register_project("default", "app", root=repo.path)  # e.g. by `ledger agent install`
        rec = Recorder(lg, project_id="app", agent_id="agent")
        rec.decision("edit the existing files")
        for path, data in (("a.txt", b"edited\n"), ("tool.sh", b"#!/bin/sh\necho\n"),
                           ("scratch.txt", b"agent's version\n"), ("new.txt", b"brand new\n")):
            rec.file_change(path, data, mode="executable" if path == "tool.sh" else None)
            (repo.path / path).write_bytes(data)
        rec.file_change("gone.txt", None)  # a tracked file the ledger never saw: not refused
        (repo.path / "gone.txt").unlink()
        agent_changes = {e.event.state_change.target_resource: e.event.state_change
                         for e in lg.events(kind="state_change", agent_id="agent")}
        baselines = sorted(e.event.state_change.target_resource
                           for e in lg.events(kind="state_change", agent_id="ledger-baseline"))
    assert baselines == ["a.txt", "gone.txt", "scratch.txt", "tool.sh"]
    assert {p: c.operation.value for p, c in agent_changes.items()} == {
        "a.txt": "modify", "tool.sh": "modify", "scratch.txt": "modify", "new.txt": "create", "gone.txt": "delete"}
    assert agent_changes["a.txt"].previous_state_hash and "-committed" in agent_changes["a.txt"].diff_patch
    out = tmp_path / "replayed"
    res = CliRunner().invoke(cli, ["--db", str(ledger_path), "--project", "app", "replay", "--at", "now",
                                   "--out", str(out), "--strict"])
    assert res.exit_code == 0, res.output  # no conflict anywhere
    for path in ("a.txt", "tool.sh", "scratch.txt", "new.txt"):
        assert (out / path).read_bytes() == (repo.path / path).read_bytes()
    assert (out / "tool.sh").stat().st_mode & 0o100 and not (out / "gone.txt").exists()
