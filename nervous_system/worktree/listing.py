"""Which files a work tree has: the repository root, and the paths to snapshot.

* ``find_root(start)``: git's top level (the nearest directory holding ``.git``, a
  directory or a worktree's file), else ``start`` itself.
* ``list_paths(root, excluder)``: inside git, the tracked files plus the untracked ones
  git does not ignore (ONE ``git ls-files -z --cached --others --exclude-standard``:
  ``.gitignore`` at every level, ``.git/info/exclude`` and the global excludes file,
  exactly as git reads them); outside git (or when git fails), an iterative walk that
  honours the ``.gitignore`` files it meets (``IgnoreRules``). Both never list ``.git``
  and apply the ``Excluder`` (the ledger's own files, ``--exclude`` globs). Paths that
  are not valid UTF-8 or break the rules of ``schemas.paths`` are reported in
  ``skipped`` and left out (a directory over the limits is not entered).

Standard library only: agent hooks list the work tree after every tool call.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from pathlib import Path
from typing import Container, Iterable, NamedTuple

from schemas.paths import check_relative_path

__all__ = ["Skipped", "Excluder", "IgnoreRules", "find_root", "list_paths", "git_dir_of"]


class Skipped(NamedTuple):
    """A path left out of a snapshot: the path (undecodable bytes escaped) and why."""

    path: str
    reason: str


def find_root(start: str | os.PathLike) -> Path:
    """The work tree's root: the nearest directory at or above ``start`` that holds a
    ``.git`` (git's top level), else ``start`` itself (absolute)."""
    here = Path(os.path.abspath(start))
    for directory in (here, *here.parents):
        if os.path.lexists(os.path.join(directory, ".git")):
            return directory
    return here


def git_dir_of(root: Path) -> bool:
    """Whether ``root`` is the top of a git work tree."""
    return os.path.lexists(os.path.join(root, ".git"))


class Excluder:
    """Paths outside the recording: any ``.git`` component, the ledger's own files
    (database, ``-wal``, ``-shm``, ``-journal``, the ``-worktrees`` stat caches) when
    they live under ``root``, and ``patterns`` (``fnmatch`` globs matched against the
    relative path and each name; ``build/`` matches a directory)."""

    def __init__(self, root: Path, patterns: Iterable[str] = (), ledger_path: Path | None = None):
        self.patterns = [p for p in patterns if p]
        self.exact: set[str] = set()
        self.dirs: set[str] = set()
        if ledger_path is not None:
            try:
                rel = Path(os.path.abspath(ledger_path)).relative_to(os.path.abspath(root)).as_posix()
            except ValueError:
                rel = None
            if rel:
                self.exact.update({rel, rel + "-wal", rel + "-shm", rel + "-journal"})
                self.dirs.add(rel + "-worktrees")

    def excluded(self, rel: str, is_dir: bool) -> bool:
        """True if the relative path ``rel`` (a directory when ``is_dir``) is excluded."""
        name = rel.rsplit("/", 1)[-1]
        if name == ".git":
            return True
        if rel in self.exact or (is_dir and rel in self.dirs):
            return True
        for pat in self.patterns:
            if pat.endswith("/"):
                if is_dir and (fnmatch.fnmatchcase(rel, pat[:-1]) or fnmatch.fnmatchcase(name, pat[:-1])):
                    return True
            elif fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(name, pat):
                return True
        return False

    def excluded_file(self, rel: str) -> bool:
        """``excluded`` for a file found by path (its directories are checked too)."""
        if self.patterns or self.dirs or "/.git/" in f"/{rel}":
            at = rel.find("/")
            while at != -1:
                if self.excluded(rel[:at], True):
                    return True
                at = rel.find("/", at + 1)
        return self.excluded(rel, False)


def _shown(rel: str) -> str:
    """A path for people: undecodable bytes escaped, at most 200 characters."""
    text = repr(rel.encode("utf-8", "surrogateescape"))[2:-1]
    return text if len(text) <= 200 else text[:100] + "..." + text[-97:]


def _problem(rel: str) -> str | None:
    try:
        check_relative_path(rel)
    except ValueError as exc:
        return str(exc)
    return None


def _git_paths(root: Path, excluder: Excluder, skipped: list[Skipped],
               checked: Container[str] | None = None) -> list[str] | None:
    """The listing from git, or None when git cannot give it. Paths in ``checked``
    (a previous snapshot's) passed the path check already."""
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    try:
        proc = subprocess.run(
            ["git", "-C", os.fspath(root), "-c", "core.quotepath=off", "ls-files", "-z", "--cached",
             "--others", "--exclude-standard"], capture_output=True, env=env, check=False)
    except OSError:
        return None
    if proc.returncode != 0:
        return None
    for line in proc.stderr.decode("utf-8", "replace").splitlines():  # what git could not read
        if line.startswith("warning: ") and "'" in line:
            what, _, rest = line[len("warning: "):].partition("'")
            skipped.append(Skipped(_shown(rest.rsplit("'", 1)[0]),
                                   f"git: {what.strip()} ({rest.rsplit(':', 1)[-1].strip()})"))
    out: list[str] = []
    seen: set[str] = set()
    for raw in proc.stdout.split(b"\x00"):
        if not raw or raw.endswith(b"/"):  # a nested repository shows as a directory
            continue
        try:
            rel = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            skipped.append(Skipped(_shown(os.fsdecode(raw)), f"not valid UTF-8 (byte {exc.start})"))
            continue
        if rel in seen:  # a conflicted file is listed once per stage
            continue
        seen.add(rel)
        problem = None if checked is not None and rel in checked else _problem(rel)
        if problem is not None:
            skipped.append(Skipped(_shown(rel), problem[:300]))
        elif not excluder.excluded_file(rel):
            out.append(rel)
    return out


# ----------------------------------------------------------------- .gitignore outside git
def _glob_regex(pattern: str) -> str:
    """gitignore glob -> regex (``**`` spans directories, ``*``/``?``/``[...]`` do not)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("/.*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end].replace("\\", "\\\\")
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        elif c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


class IgnoreRules:
    """The rules of one ``.gitignore`` (gitignore(5)): ``#`` comments, ``!`` negation,
    a trailing ``/`` for directories only, a pattern with a ``/`` anchored to the file's
    directory, else matched against the name at any depth. The last matching rule wins."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[re.Pattern[str], bool, bool, bool]] = []
        for line in text.splitlines():
            line = line.rstrip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:]
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            anchored = "/" in line
            line = line.lstrip("/")
            if line:
                self.rules.append((re.compile(_glob_regex(line) + r"\Z"), negate, dir_only, anchored))

    def ignored(self, rel: str, is_dir: bool) -> bool | None:
        """True/False if a rule decides ``rel`` (relative to the file's directory), else None."""
        verdict = None
        name = rel.rsplit("/", 1)[-1]
        for regex, negate, dir_only, anchored in self.rules:
            if dir_only and not is_dir:
                continue
            if regex.match(rel if anchored else name):
                verdict = not negate
        return verdict


def _read_rules(directory: str) -> IgnoreRules | None:
    try:
        with open(os.path.join(directory, ".gitignore"), encoding="utf-8", errors="replace") as fh:
            return IgnoreRules(fh.read())
    except OSError:
        return None


def _walk_paths(root: Path, excluder: Excluder, skipped: list[Skipped]) -> list[str]:
    """Files and symlinks under ``root`` by an iterative walk (an explicit stack, never
    recursion; symlinks are not followed), honouring the ``.gitignore`` files met."""
    out: list[str] = []
    root_s = os.fspath(root)
    # (relative directory, the .gitignore rules in force: (base directory, rules))
    stack: list[tuple[str, tuple[tuple[str, IgnoreRules], ...]]] = [("", ())]
    while stack:
        rel_dir, rules = stack.pop()
        full_dir = os.path.join(root_s, rel_dir) if rel_dir else root_s
        own = _read_rules(full_dir)
        if own is not None:
            rules = rules + ((rel_dir, own),)
        try:
            with os.scandir(full_dir) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            skipped.append(Skipped(_shown(rel_dir or "."), f"cannot list: {exc.strerror or exc}"))
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            if excluder.excluded(rel, is_dir):
                continue
            problem = _problem(rel)
            if problem is not None:
                skipped.append(Skipped(_shown(rel), problem[:300]))
                continue
            if _ignored(rules, rel, is_dir):
                continue
            if is_dir:
                stack.append((rel, rules))
            else:
                out.append(rel)
    return out


def _ignored(rules: tuple[tuple[str, IgnoreRules], ...], rel: str, is_dir: bool) -> bool:
    verdict = False
    for base, own in rules:
        decided = own.ignored(rel[len(base) + 1:] if base else rel, is_dir)
        if decided is not None:
            verdict = decided
    return verdict


def list_paths(root: Path, excluder: Excluder, skipped: list[Skipped], *, use_git: bool | None = None,
               checked: Container[str] | None = None) -> list[str]:
    """The relative paths of the files and symlinks to snapshot under ``root`` (see the
    module docstring); problems are appended to ``skipped``. ``use_git``: None = when
    ``root`` is a git work tree's top; ``checked``: paths known to pass the path check."""
    if use_git is None:
        use_git = git_dir_of(root)
    if use_git:
        listed = _git_paths(root, excluder, skipped, checked)
        if listed is not None:
            return listed
    return _walk_paths(root, excluder, skipped)
