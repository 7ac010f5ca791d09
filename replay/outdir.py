"""Where replay may write: the output-directory rules, and tree removal that never
recurses or follows links.

``ledger replay --out DIR`` writes a fresh tree. Refused outright (whatever ``--force``):

* a ``DIR`` that holds a ``.git`` (in any spelling git recognises): it is a work tree with
  history and uncommitted work in it — ``ledger restore`` rewinds a work tree in place;
* a ``DIR`` that is, or contains, the ledger's own files or data directory.

A non-empty ``DIR`` needs ``--force``, and ``--force`` replaces only a directory an earlier
replay created: replays remember the directories they created (path, device and inode)
in a small registry in the ledger's data directory, so a directory that merely has the
same name, or was made by anything else, is never deleted.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from replay.errors import OutputNotEmpty, ReplayError
from schemas.paths import is_git_dir_name

__all__ = ["OutputPolicy", "remove_tree", "holds_git_dir"]


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _clear_files(fd: int) -> list[str]:
    """Unlink every non-directory in the directory open at ``fd``; return its subdirectories."""
    subdirs = []
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
    return subdirs


def remove_tree(path: str | os.PathLike) -> None:
    """Delete ``path`` and everything below it without recursion and without following
    symlinks (a link is removed, never what it points to), at any depth: every operation
    is relative to an open directory (``dir_fd``), so neither Python's recursion limit nor
    PATH_MAX (4096 bytes) bounds the tree, and at most two directories are open at once.
    A missing ``path`` is fine; other errors raise ``OSError``."""
    root = os.fspath(path)
    try:
        if not stat.S_ISDIR(os.lstat(root).st_mode):
            os.unlink(root)
            return
    except FileNotFoundError:
        return
    fd = os.open(root, _DIR_FLAGS)
    names: list[str] = []  # the path from root to the directory open at fd
    try:
        pending = [_clear_files(fd)]  # per level: subdirectories still to remove
        while True:
            if pending[-1]:
                name = pending[-1].pop()
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
                names.append(name)
                pending.append(_clear_files(fd))
                continue
            if not names:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir(names.pop(), dir_fd=fd)
            pending.pop()
    finally:
        os.close(fd)
    os.rmdir(root)


def holds_git_dir(directory: Path) -> str | None:
    """The name of a ``.git`` entry (any spelling) directly in ``directory``, or None."""
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if is_git_dir_name(entry.name):
                    return entry.name
    except (FileNotFoundError, NotADirectoryError):
        return None
    return None


def _contains(parent: Path, child: Path) -> bool:
    try:
        child.relative_to(parent)
        return True
    except ValueError:
        return False


@dataclass
class OutputPolicy:
    """The rules of one ledger's replays. ``protected``: files and directories a replay
    must never replace or contain (the ledger file and its data directory).
    ``registry``: the JSON Lines file of directories earlier replays created (None: no
    ``--force`` replacement is ever allowed)."""

    protected: tuple[Path, ...] = ()
    registry: Path | None = None
    _now: float = field(default_factory=time.time)

    def check(self, out: Path, *, force: bool) -> bool:
        """Check ``out`` before a replay; returns True when it exists, is non-empty and
        may be replaced. Raises ``ReplayError``/``OutputNotEmpty`` saying what to do."""
        real = Path(os.path.realpath(out))
        for guarded in self.protected:
            guarded_real = Path(os.path.realpath(guarded))
            if _contains(real, guarded_real):
                raise ReplayError(
                    f"{out} is or contains the ledger's own data ({guarded}); replay never writes "
                    "there. Choose another --out")
        if out.is_symlink():
            raise ReplayError(f"{out} is a symlink; give the real directory path (replay never follows links)")
        if not out.exists():
            return False
        if not out.is_dir():
            raise ReplayError(f"{out} exists and is not a directory; choose another --out")
        git = holds_git_dir(out)
        if git is not None:
            raise ReplayError(
                f"{out} holds {git!r}: it is a git work tree, and replay writes a fresh tree there "
                "(--force would delete your history and uncommitted work). To rewind a work tree in "
                "place use `ledger restore --at WHEN`; to replay, choose an empty or new --out")
        if not any(out.iterdir()):
            return False
        if not force:
            raise OutputNotEmpty(
                f"{out} is not empty; choose an empty or new directory, or pass --force to replace "
                "a directory an earlier `ledger replay` created")
        if not self.created_by_replay(out):
            raise OutputNotEmpty(
                f"{out} was not created by `ledger replay`, so --force will not delete it; remove it "
                "yourself if you mean to, or choose another --out")
        return True

    def _key(self, out: Path) -> dict:
        st = os.stat(out)
        return {"path": os.path.realpath(out), "dev": st.st_dev, "ino": st.st_ino}

    def created_by_replay(self, out: Path) -> bool:
        """True when ``out`` (the same directory: path, device and inode) was created by
        a replay of this ledger."""
        key = self._key(out)
        return any(all(entry.get(k) == v for k, v in key.items()) for entry in self._entries())

    def _entries(self) -> list[dict]:
        """The registry's entries (unreadable lines skipped)."""
        if self.registry is None or not self.registry.is_file():
            return []
        out = []
        with open(self.registry, encoding="utf-8") as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def remember(self, out: Path) -> None:
        """Record that a replay created ``out`` (appended; the file stays small: one line
        per replay, pruned of directories that no longer exist)."""
        if self.registry is None:
            return
        entries = [e for e in self._entries()
                   if os.path.isdir(e.get("path", "")) and e.get("path") != os.path.realpath(out)]
        entries.append({**self._key(out), "created": self._now})
        self.registry.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.registry.with_name(self.registry.name + ".tmp")
        tmp.write_text("".join(json.dumps(e) + "\n" for e in entries[-1000:]), encoding="utf-8")
        os.replace(tmp, self.registry)
