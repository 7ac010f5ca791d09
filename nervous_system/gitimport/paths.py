"""Paths of a git history: decoding and checking them, and ordering a commit's changes.

Paths are bytes in git. They are decoded as UTF-8; a path that is not valid UTF-8 (or
is otherwise not a valid relative path, ``schemas.check_relative_path``) is refused
BEFORE anything is written: the whole history is parsed and checked first.
``skip=True`` instead drops such paths and lists them (a rename from such a path
becomes a create, a rename to one becomes a delete).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

from nervous_system.gitimport.errors import InvalidGitPath
from nervous_system.gitimport.plumbing import ABSENT, NULL_SHA, Commit, Entry
from nervous_system.worktree import default_project_name
from schemas import check_relative_path

__all__ = ["SkippedPath", "decode_path", "check_paths", "order_changes", "default_project_name"]

T = TypeVar("T")


@dataclass(frozen=True)
class SkippedPath:
    """A path left out by ``skip_invalid_paths``: the commit, the raw bytes shown
    escaped, and why."""

    commit: str
    path: str
    reason: str


def decode_path(raw: bytes) -> str:
    """UTF-8 text of a git path; raises ``ValueError`` when invalid."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"path {raw!r} is not valid UTF-8 (byte {exc.start})") from exc
    check_relative_path(text)
    return text


def _problems(entry: Entry) -> dict[str, str]:
    """``{"path"|"src": why}`` for the sides of ``entry`` whose paths are invalid."""
    problems: dict[str, str] = {}
    for side, raw in (("path", entry.path), ("src", entry.src)):
        if raw is None:
            continue
        try:
            decode_path(raw)
        except ValueError as exc:
            problems[side] = str(exc)
    return problems


def check_paths(commits: list[Commit], skip: bool) -> list[SkippedPath]:
    """Refuse (``InvalidGitPath``) or, with ``skip``, drop entries whose paths are
    invalid; returns what was dropped. Changes ``commits`` in place."""
    skipped: list[SkippedPath] = []
    for commit in commits:
        kept: list[Entry] = []
        for e in commit.entries:
            problems = _problems(e)
            if not problems:
                kept.append(e)
                continue
            if not skip:
                reason = next(iter(problems.values()))
                raise InvalidGitPath(
                    f"commit {commit.sha}: {reason}; nothing was imported. Rename the file in "
                    "the repository, or pass --skip-invalid-paths to import the history "
                    "without such paths (they are listed in the summary)"
                )
            for side, reason in problems.items():
                raw = e.path if side == "path" else e.src
                skipped.append(SkippedPath(commit.sha, repr(raw)[2:-1], reason))
            if e.status == "R":
                if "path" not in problems:  # invalid source: the new path appears
                    kept.append(Entry("A", ABSENT, e.new_mode, NULL_SHA, e.new_sha, e.path, rewritten=True))
                elif "src" not in problems:  # invalid target: the old path goes away
                    kept.append(Entry("D", e.old_mode, ABSENT, e.old_sha, NULL_SHA, e.src, rewritten=True))
        commit.entries = kept
    return skipped


def order_changes(items: list[T], status: Callable[[T], str], path: Callable[[T], str | bytes],
                  src: Callable[[T], str | bytes | None]) -> list[T]:
    """Order a commit's changes so every intermediate state is a valid tree: deletes
    first (they free paths a new file or directory needs), then renames (one that frees
    a path before one that needs it), then modifications and creates.

    ``status(item)`` is "D" (delete), "R" (rename) or anything else; ``path``/``src``
    give the (rename source) path, str or bytes."""
    deletes, renames, rest = [], [], []
    for e in items:
        kind = status(e)
        (deletes if kind == "D" else renames if kind == "R" else rest).append(e)
    ordered_renames: list[T] = []
    pending = renames
    while pending:
        srcs = {src(e) for e in pending}
        sep = "/" if isinstance(path(pending[0]), str) else b"/"
        src_dirs = {s[:i] for s in srcs for i in range(len(s)) if s[i:i + 1] == sep}

        def blocked(e: T) -> bool:
            dst, source = path(e), src(e)
            if dst in srcs and dst != source:
                return True
            if dst in src_dirs:
                return True
            return any(dst[:i] in srcs and dst[:i] != source for i in range(len(dst)) if dst[i:i + 1] == sep)

        ready = [e for e in pending if not blocked(e)]
        if not ready:  # a cycle (cannot happen without -B); keep git's order
            ordered_renames.extend(pending)
            break
        ordered_renames.extend(ready)
        ready_ids = {id(e) for e in ready}
        pending = [e for e in pending if id(e) not in ready_ids]
    return deletes + ordered_renames + rest
