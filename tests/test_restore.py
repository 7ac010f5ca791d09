"""`ledger restore`: rewind the work tree in place — only recorded paths, never .git or
untracked/ignored files, unseen changes refused (or recorded first with --force), the
restore itself recorded and undoable."""

from __future__ import annotations

import json
import os
import stat

import pytest
from click.testing import CliRunner

from cli import cli
from ledger import Ledger
from nervous_system import Recorder
from tests.git_fixtures import GitRepo


def run(db, *args):
    return CliRunner().invoke(cli, ["--db", str(db), *args])


class Work:
    """A git work tree whose changes are written to disk and recorded with the SDK."""

    def __init__(self, root, ledger_path):
        self.root = root
        self.lg = Ledger(ledger_path)
        self.lg.register_project("default", "app", root=root)
        self.rec = Recorder(self.lg, project_id="app", agent_id="agent")

    def write(self, path, data: bytes, mode="regular"):
        full = self.root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        if mode == "symlink":
            if full.is_symlink() or full.exists():
                full.unlink()
            os.symlink(data, full)
        else:
            full.write_bytes(data)
            full.chmod(0o755 if mode == "executable" else 0o644)
        return self.rec.file_change(path, data, mode=mode)

    def delete(self, path):
        (self.root / path).unlink()
        return self.rec.file_change(path, None)

    def tree(self) -> dict:
        out = {}
        for dirpath, dirnames, files in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d != ".git"]
            for name in files + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, self.root)
                if os.path.islink(full):
                    out[rel] = ("link", os.readlink(full))
                else:
                    out[rel] = (open(full, "rb").read(), bool(os.stat(full).st_mode & stat.S_IXUSR))
        return out


@pytest.fixture
def work(tmp_path, ledger_path, monkeypatch):
    repo = GitRepo(tmp_path / "app")
    repo.write(".gitignore", "build/\n")
    repo.commit("start")
    w = Work(repo.path.resolve(), ledger_path)
    w.rec.decision("first version")
    w.write("src/main.py", b"print(1)\n")
    w.write("run.sh", b"#!/bin/sh\n", mode="executable")
    w.first = w.write("old.txt", b"old\n")  # the end of the first version
    w.rec.decision("second version")
    w.second = w.write("src/main.py", b"print(2)\n")
    w.write("link", b"src/main.py", mode="symlink")
    w.delete("old.txt")
    w.write("run.sh", b"#!/bin/sh\necho\n", mode="regular")
    (w.root / "build").mkdir()
    (w.root / "build" / "out.o").write_bytes(b"ignored build output")
    (w.root / "notes.txt").write_text("untracked, never recorded")
    monkeypatch.chdir(w.root / "src")
    yield w
    w.lg.close()


def test_restore_rewinds_recorded_paths_only(work, ledger_path):
    res = run(ledger_path, "restore", "--at", work.first)
    assert res.exit_code == 0, res.output
    tree = work.tree()
    assert tree["src/main.py"] == (b"print(1)\n", False)
    assert tree["run.sh"] == (b"#!/bin/sh\n", True)        # executable again
    assert tree["old.txt"] == (b"old\n", False)            # deleted later: back
    assert "link" not in tree                              # created later: gone
    assert tree["notes.txt"][0] == b"untracked, never recorded"
    assert tree["build/out.o"][0] == b"ignored build output"
    assert (work.root / ".git" / "HEAD").exists()
    assert "Undo with: ledger restore --at" in res.output


def test_the_restore_is_recorded_and_can_be_undone(work, ledger_path):
    before = work.tree()
    res = run(ledger_path, "restore", "--at", work.first, "--json")
    decision = json.loads(res.stdout)["decision_id"]
    with Ledger(ledger_path) as lg:
        d = lg.get(decision).event
        assert d.agent_id == "ledger-restore" and d.decision.rationale.startswith("restore to event")
        caused = list(lg.events(caused_by=decision))
        assert {e.event.state_change.target_resource for e in caused} == {"src/main.py", "run.sh", "old.txt", "link"}
        from ledger import sha256_hex

        on_disk = {}
        for path, (data, executable) in work.tree().items():
            if path in ("notes.txt", ".gitignore") or path.startswith("build/"):
                continue  # never recorded
            if data == "link":
                on_disk[path] = (sha256_hex(executable.encode()), "symlink")
            else:
                on_disk[path] = (sha256_hex(data), "executable" if executable else "regular")
        ledger_view = {p: (s.hash, s.mode) for p, s in lg.current_tree("default", "app").items()}
        assert ledger_view == on_disk  # the ledger's view equals the work tree after the restore
    undo = run(ledger_path, "restore", "--at", decision + "^")
    assert undo.exit_code == 0, undo.output
    assert work.tree() == before


def test_unseen_changes_are_refused_then_kept_with_force(work, ledger_path):
    (work.root / "src" / "main.py").write_bytes(b"edited by hand, never recorded\n")
    dry = run(ledger_path, "restore", "--at", work.first, "--dry-run")
    assert dry.exit_code == 0 and "would update src/main.py" in dry.output and "not seen" in dry.output
    refused = run(ledger_path, "restore", "--at", work.first)
    assert refused.exit_code == 1 and "src/main.py" in refused.output and "--force" in refused.output
    assert (work.root / "src" / "main.py").read_bytes() == b"edited by hand, never recorded\n"
    forced = run(ledger_path, "restore", "--at", work.first, "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert (work.root / "src" / "main.py").read_bytes() == b"print(1)\n"
    with Ledger(ledger_path) as lg:  # the hand edit was recorded first: it can come back
        kept = [e for e in lg.events(path="src/main.py") if e.event.agent_id == "ledger-restore"]
        assert any(lg.get_blob(e.event.state_change.new_state_hash) == b"edited by hand, never recorded\n"
                   for e in kept if e.event.state_change.new_state_hash)


def test_paths_narrow_the_restore(work, ledger_path):
    res = run(ledger_path, "restore", "--at", work.first, "main.py")  # relative to the cwd (src/)
    assert res.exit_code == 0, res.output
    tree = work.tree()
    assert tree["src/main.py"][0] == b"print(1)\n" and tree["run.sh"] == (b"#!/bin/sh\necho\n", False)
    outside = run(ledger_path, "restore", "--at", work.first, str(work.root.parent))
    assert outside.exit_code == 2 and "outside the project's work tree" in outside.output


def test_a_symlinked_directory_in_the_work_tree_is_never_written_through(work, ledger_path, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for p in (work.root / "src").iterdir():
        p.unlink()
    (work.root / "src").rmdir()
    os.symlink(elsewhere, work.root / "src")  # src/ now points outside the work tree
    os.chdir(work.root)
    res = run(ledger_path, "restore", "--at", work.first, "--force")
    assert res.exit_code == 1 and "not a real directory" in res.output
    assert list(elsewhere.iterdir()) == []


def test_before_the_first_event_says_so(work, ledger_path):
    res = run(ledger_path, "restore", "--at", "2001-01-01")
    assert res.exit_code == 1 and "before anything project 'app' recorded" in res.output
