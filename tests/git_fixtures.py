"""Test support: build real git repositories with real `git` commands, and compare a
directory tree with `git archive <commit> | tar -x` (type, bytes, exec bit, link target)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from replay import verify

BASE_TIME = 1_704_067_200  # 2024-01-01T00:00:00Z


class GitRepo:
    """A repository driven by real git commands with deterministic author/committer
    identity and dates (``tick`` seconds apart unless ``at`` is given)."""

    def __init__(self, path: Path, *, start: int = BASE_TIME, step: int = 60) -> None:
        self.path = Path(path)
        self.time = start
        self.step = step
        self.path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "core.autocrlf", "false")
        self.git("config", "core.symlinks", "true")

    def env(self, at: int | None = None) -> dict[str, str]:
        when = f"{self.time if at is None else at} +0000"
        env = dict(os.environ)
        env.update(
            GIT_AUTHOR_NAME="Ada Lovelace", GIT_AUTHOR_EMAIL="ada@example.com",
            GIT_COMMITTER_NAME="Ada Lovelace", GIT_COMMITTER_EMAIL="ada@example.com",
            GIT_AUTHOR_DATE=when, GIT_COMMITTER_DATE=when,
        )
        return env

    def git(self, *args: str | bytes, at: int | None = None) -> str:
        out = subprocess.run(["git", "-C", str(self.path), *args], check=True,
                             capture_output=True, env=self.env(at))
        return out.stdout.decode("utf-8", "replace").strip()

    # file helpers (paths relative to the repo, str or bytes)
    def _p(self, rel: str | bytes) -> bytes:
        return os.path.join(os.fsencode(self.path), os.fsencode(rel))

    def write(self, rel: str | bytes, data: bytes | str, *, executable: bool = False) -> None:
        p = self._p(rel)
        if os.path.islink(p):
            os.unlink(p)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.chmod(p, 0o755 if executable else 0o644)

    def chmod(self, rel: str | bytes, executable: bool) -> None:
        os.chmod(self._p(rel), 0o755 if executable else 0o644)

    def symlink(self, rel: str | bytes, target: str | bytes) -> None:
        p = self._p(rel)
        if os.path.lexists(p):
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        os.symlink(os.fsencode(target), p)

    def remove(self, rel: str | bytes) -> None:
        p = self._p(rel)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)

    def commit(self, message: str, *, at: int | None = None, allow_empty: bool = False) -> str:
        """Stage everything and commit; returns the full hash."""
        if at is None:
            self.time += self.step
        self.git("add", "-A")
        args = ["commit", "-q", "--no-verify", "-m", message]
        if allow_empty:
            args.append("--allow-empty")
        self.git(*args, at=at)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def first_parent_commits(self, rev: str = "HEAD") -> list[str]:
        return self.git("rev-list", "--first-parent", "--reverse", rev).split()

    def commit_time(self, commit: str) -> int:
        return int(self.git("show", "-s", "--format=%ct", commit))


def build_rich_history(path: Path) -> GitRepo:
    """A history exercising every kind of change replay must reproduce."""
    r = GitRepo(path)
    r.write("README.md", "# demo\n\nhello\n")
    r.write("src/app.py", "def main():\n    return 1\n")
    r.write("bin.dat", bytes(range(256)) * 4)
    r.write("empty.txt", b"")
    r.write("script.sh", "#!/bin/sh\necho hi\n")
    r.write("é.txt", "accent\n")
    r.write("日本/ファイル.txt", "japanese\n")
    r.write("dir with spaces/a b.txt", "spaces\n")
    r.write("tab\tname.txt", "tab\n")
    r.write("swap", "regular first\n")
    r.write("pkg/a.py", "a = 1\n")
    r.write("pkg/b.py", "b = 2\n")
    r.write("docs/guide.md", "guide\n")
    r.symlink("link_ok", "README.md")
    r.symlink("dangling", "does/not/exist")
    r.symlink("escape", "../../etc/passwd")
    r.commit("root: initial import\n\nwith a body")
    r.write("src/app.py", "def main():\n    return 2\n")
    r.chmod("script.sh", True)
    r.commit("modify app, make script executable")
    r.git("mv", "src/app.py", "src/main.py")
    r.write("src/main.py", "def main():\n    return 2\n# moved\n")
    r.git("mv", "é.txt", "é2.txt")
    r.commit("rename app.py -> main.py and é.txt -> é2.txt")
    r.remove("docs/guide.md")
    r.write("bin.dat", b"\x00\xff" * 1000 + b"changed")
    r.commit("delete guide, change binary")
    r.symlink("swap", "README.md")
    r.commit("swap: file -> symlink")
    r.write("swap", "regular again\n")
    r.chmod("script.sh", False)
    r.commit("swap: symlink -> file; script not executable")
    r.remove("pkg")
    r.write("pkg", "now a file\n")
    r.commit("directory pkg replaced by a file")
    r.remove("pkg")
    r.write("pkg/c.py", "c = 3\n")
    r.commit("file pkg replaced by a directory")
    r.symlink("linkdir", "src")
    r.symlink("weird_target", b"\xff\xfe-not-utf8")
    r.write("tool", "#!/bin/sh\n", executable=True)
    r.commit("symlink to a directory, link target that is not UTF-8")
    r.symlink("tool", "script.sh")
    r.commit("executable file -> symlink")
    r.commit("an empty commit", allow_empty=True)
    # a side branch merged with --no-ff: first-parent sees the merge as one change
    r.git("checkout", "-q", "-b", "feature")
    r.write("feature.txt", "feature\n")
    r.write("README.md", "# demo\n\nhello from feature\n")
    r.commit("feature work")
    r.git("checkout", "-q", "main")
    r.write("src/main.py", "def main():\n    return 3\n# moved\n")
    r.commit("main work while feature was open")
    r.time += r.step
    r.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature", at=r.time)
    r.git("mv", "日本", "japan")
    r.commit("rename a whole directory")
    r.git("mv", "script.sh", "bin-script.sh")
    r.chmod("bin-script.sh", True)
    r.commit("rename with a mode change")
    r.write("big.txt", "".join(f"line {i}\n" for i in range(200_000)))
    r.commit("a large text file (no diff stored)")
    r.remove("japan")
    r.remove("dir with spaces")
    r.write("dir with spaces", "file where a dir was\n")
    r.commit("remove dirs, file in place of a dir")
    return r


# ------------------------------------------------------------------ comparison
# The comparison itself is library code (``replay.verify``), shared with ``ledger demo``.
snapshot = verify.snapshot


def git_archive_tree(repo: GitRepo, commit: str, dest: Path) -> Path:
    """``git archive <commit> | tar -x -C dest``; returns ``dest``."""
    return verify.git_archive_to(repo.path, commit, dest)


def assert_same_tree(replayed: Path, expected: Path) -> None:
    """Fail with the differing paths when the two trees differ."""
    problems = verify.compare_trees(replayed, expected)
    if problems:
        raise AssertionError("trees differ: " + "; ".join(problems))


@pytest.fixture
def spawned(monkeypatch) -> list[list]:
    """The argv of every ``subprocess.Popen`` started while the test runs (processes
    still start for real): how tests check that import batches its git calls."""
    started: list[list] = []
    real_popen = subprocess.Popen

    def spy(cmd, *args, **kwargs):
        started.append(list(cmd))
        return real_popen(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    return started
