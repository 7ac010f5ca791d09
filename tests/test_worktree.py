"""``nervous_system.worktree``: the work-tree snapshots ``ledger exec`` and the agent hooks
share: git's view of the tree, a stat cache, iterative walks, reported skips."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nervous_system.worktree import (
    PROGRESS_MIN_FILES,
    Excluder,
    StatCache,
    cache_path,
    diff,
    find_root,
    snapshot,
)
from nervous_system.worktree.listing import IgnoreRules

OLD = time.time_ns() - 10 * 1_000_000_000  # mtimes older than any snapshot: cache-trusted


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def write(root: Path, rel: str, data: bytes | str = b"x\n", *, old: bool = True) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if old:
        os.utime(path, ns=(OLD, OLD))
    return path


def make_deep(base: Path, levels: int) -> None:
    """``base/d/d/.../d/f.txt`` with ``levels`` directories (deeper than PATH_MAX: made
    with directory file descriptors)."""
    fd = os.open(base, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir("d", dir_fd=fd)
        nfd = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    out = os.open("f.txt", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd)
    os.write(out, b"deep\n")
    os.close(out)
    os.close(fd)


def remove_deep(base: Path) -> None:
    """Remove ``base/d/d/...`` level by level (shutil.rmtree recurses once per level and
    `rm -rf` is quadratic on such depths)."""
    cwd = os.getcwd()
    try:
        os.chdir(base)
        depth = 0
        while os.path.isdir("d") and not os.path.islink("d"):
            os.chdir("d")
            depth += 1
        for name in os.listdir("."):
            os.unlink(name)
        for _ in range(depth):
            os.chdir("..")
            os.rmdir("d")
    finally:
        os.chdir(cwd)


@pytest.fixture
def deep_cleanup():
    made: list[Path] = []
    yield made
    for path in made:
        remove_deep(path)


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    return root


def test_find_root(repo, tmp_path):
    (repo / "a" / "b").mkdir(parents=True)
    assert find_root(repo / "a" / "b") == repo
    plain = tmp_path / "plain" / "sub"
    plain.mkdir(parents=True)
    assert find_root(plain) == plain


def test_git_tree_honours_gitignore_and_never_lists_git(repo, monkeypatch):
    write(repo, ".gitignore", ".venv/\n*.log\n")
    write(repo, "src/a.py")
    write(repo, "run.log")
    write(repo, "excluded-by-info.txt")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("excluded-by-info.txt\n")
    global_ignore = repo.parent / "global-ignore"
    global_ignore.write_text("*.tmp\n")
    git(repo, "config", "core.excludesFile", str(global_ignore))
    write(repo, "x.tmp")
    for i in range(3000):
        write(repo, f".venv/lib/site-packages/m{i}.py", old=False)
    write(repo, "tracked-then-ignored.log")
    git(repo, "add", "-f", "tracked-then-ignored.log")
    opened: list[str] = []
    real_open = open

    def spy(file, *args, **kwargs):
        opened.append(os.fspath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    snap = snapshot(repo)
    monkeypatch.undo()
    assert set(snap.entries) == {".gitignore", "src/a.py", "tracked-then-ignored.log"}
    assert not any(".venv" in p or "/.git/" in p for p in opened)  # ignored files are not read
    assert snap.hashed == 3


def test_plain_directory_walk_honours_gitignore_files(tmp_path, monkeypatch):
    root = tmp_path / "plain"
    write(root, ".gitignore", "build/\n/top-only.txt\n*.o\n!keep.o\ndocs/**/*.tmp\n")
    write(root, "build/out.bin")
    write(root, "top-only.txt")
    write(root, "sub/top-only.txt")
    write(root, "a.o")
    write(root, "keep.o")
    write(root, "docs/x/y/z.tmp")
    write(root, "docs/x/y/z.md")
    write(root, "sub/.gitignore", "local.txt\n")
    write(root, "sub/local.txt")
    write(root, "local.txt")
    write(root, ".git/HEAD")  # a .git directory is never listed, repository or not
    listed: list[str] = []
    real = os.scandir

    def spy(path="."):
        listed.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", spy)
    snap = snapshot(root, use_git=False)
    monkeypatch.undo()
    assert set(snap.entries) == {".gitignore", "sub/top-only.txt", "keep.o", "docs/x/y/z.md",
                                 "sub/.gitignore", "local.txt"}
    assert not any(p.endswith("build") or p.endswith(".git") for p in listed)


def test_ignore_rules_unit():
    rules = IgnoreRules("# c\n*.py[co]\n!important.pyc\nlogs/\na/**/b\n")
    assert rules.ignored("x/y.pyc", False) and rules.ignored("z.pyo", False)
    assert rules.ignored("important.pyc", False) is False
    assert rules.ignored("logs", True) and rules.ignored("logs", False) is None
    assert rules.ignored("a/b", True) and rules.ignored("a/x/y/b", False) and rules.ignored("c/a/b", False) is None


def test_stat_cache_rehashes_only_changed_files(repo, tmp_path):
    for i in range(50):
        write(repo, f"f{i}.txt", f"{i}\n")
    cache_file = cache_path(tmp_path / "ledger.db", repo)
    first = snapshot(repo, cache=StatCache.load(cache_file, repo))
    assert first.hashed == 50 and cache_file.exists()
    assert not [p for p in cache_file.parent.iterdir() if p.name.startswith(".stat-cache-")]
    second = snapshot(repo, cache=StatCache.load(cache_file, repo))
    assert second.hashed == 0 and second.entries == first.entries
    write(repo, "f7.txt", "changed, longer\n")
    third = snapshot(repo, cache=StatCache.load(cache_file, repo))
    assert third.hashed == 1 and [c.path for c in diff(second.entries, third.entries)] == ["f7.txt"]
    assert cache_file.read_bytes().startswith(b"context-ledger stat cache 1 ")
    cache_file.write_bytes(cache_file.read_bytes()[:-20])  # a corrupt cache only costs a rehash
    fourth = snapshot(repo, cache=StatCache.load(cache_file, repo))
    assert fourth.hashed == 50 and fourth.entries == third.entries
    cache_file.write_bytes(b"context-ledger stat cache 1 2.7\n\x00\x01")  # another Python
    assert StatCache.load(cache_file, repo).entries == {}
    other = StatCache.load(cache_file, tmp_path)  # a cache of another root is not used
    assert other.entries == {}


def test_racily_clean_entries_are_not_trusted():
    key = (5, 1_700_000_000_500_000_000, 0, 1, 0o100644)
    cache = StatCache.of("/r", {"a": (key, "d" * 64)}, taken_ns=1_700_000_000_900_000_000)
    assert cache.digest("a", key) is None  # modified within the second the snapshot started
    later = StatCache.of("/r", {"a": (key, "d" * 64)}, taken_ns=1_700_000_001_000_000_000)
    assert later.digest("a", key) == "d" * 64
    assert later.digest("a", (6, *key[1:])) is None


def test_diff_kinds(tmp_path):
    root = tmp_path / "w"
    write(root, "keep.txt", "same\n")
    write(root, "old/name.txt", "moving\n")
    write(root, "tool.sh", "#!/bin/sh\n")
    write(root, "gone.txt", "bye\n")
    write(root, "bin.dat", b"\x00\x01")
    before = snapshot(root, use_git=False).entries
    (root / "old" / "name.txt").rename(root / "name.txt")
    os.chmod(root / "tool.sh", 0o755)
    (root / "gone.txt").unlink()
    (root / "bin.dat").write_bytes(b"\x00\x02")
    os.symlink("keep.txt", root / "link")
    after = snapshot(root, use_git=False).entries
    changes = [(c.op, c.path, c.previous_path, c.mode) for c in diff(before, after)]
    assert changes == [("delete", "gone.txt", "", ""), ("rename", "name.txt", "old/name.txt", "regular"),
                       ("modify", "bin.dat", "", "regular"), ("modify", "tool.sh", "", "executable"),
                       ("create", "link", "", "symlink")]


@pytest.mark.parametrize("use_git", [True, False])
def test_non_utf8_names_are_reported_and_skipped(repo, use_git):
    write(repo, "ok.txt")
    with open(os.path.join(os.fsencode(repo), b"bad\xff.txt"), "wb") as fh:
        fh.write(b"x")
    os.mkdir(os.path.join(os.fsencode(repo), b"dir\xfe"))
    with open(os.path.join(os.fsencode(repo), b"dir\xfe", b"inner.txt"), "wb") as fh:
        fh.write(b"y")
    snap = snapshot(repo, use_git=use_git)
    assert set(snap.entries) == {"ok.txt"}
    reasons = {s.path: s.reason for s in snap.skipped}
    assert any("bad\\xff.txt" in p for p in reasons) and all("UTF-8" in r for r in reasons.values())


@pytest.mark.slow
@pytest.mark.parametrize("use_git", [True, False])
def test_a_2100_level_tree_is_walked_without_recursion(repo, use_git, deep_cleanup):
    deep_cleanup.append(repo)
    make_deep(repo, 2100)
    write(repo, "top.txt")
    snap = snapshot(repo, use_git=use_git)
    assert set(snap.entries) == {"top.txt"}
    assert snap.skipped  # reported, not silently dropped
    assert all(len(s.path) <= 200 for s in snap.skipped)


def test_paths_over_the_record_time_limits_are_reported(tmp_path):
    root = tmp_path / "w"
    write(root, "ok.txt")
    write(root, "n" * 250 + "/" + "m" * 250 + "/x.txt")  # fits
    (root / ("x" * 200)).mkdir()
    snap = snapshot(root, use_git=False)
    assert "ok.txt" in snap.entries and len(snap.entries) == 2
    long_name = "y" * 256
    try:
        (root / long_name).write_text("z")
    except OSError:  # the filesystem refuses it first: nothing to check
        return
    snap = snapshot(root, use_git=False)
    assert long_name not in snap.entries and any("NAME_MAX" in s.reason for s in snap.skipped)


def test_exclusions(tmp_path):
    root = tmp_path / "w"
    write(root, "build/x.o")
    write(root, "src/app.py")
    write(root, "debug.log")
    write(root, "ledger.db")
    write(root, "ledger.db-wal")
    write(root, "ledger.db-worktrees/abc.json")
    excluder = Excluder(root, ["build/", "*.log"], root / "ledger.db")
    assert set(snapshot(root, excluder, use_git=False).entries) == {"src/app.py"}
    git(root, "init", "-q")
    assert set(snapshot(root, excluder).entries) == {"src/app.py"}


def test_progress_for_a_large_first_snapshot(tmp_path):
    root = tmp_path / "w"
    for i in range(PROGRESS_MIN_FILES + 5):
        write(root, f"d{i % 10}/f{i}")
    calls: list[tuple[int, int]] = []
    snap = snapshot(root, use_git=False, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (PROGRESS_MIN_FILES + 5, PROGRESS_MIN_FILES + 5) and len(calls) > 5
    calls.clear()
    snapshot(root, use_git=False, progress=lambda d, t: calls.append((d, t)), cache=snap.as_cache())
    assert calls == []


def test_the_snapshot_path_imports_only_the_standard_library():
    code = ("import sys, nervous_system.worktree as w\n"
            "w.snapshot('.')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pydantic', 'opentelemetry', 'sqlite_utils', 'ledger', 'google', 'sqlite3')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
