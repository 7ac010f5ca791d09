"""The work tree: snapshots of the files under a root and the changes between two.

Shared by ``ledger exec`` and the agent hooks. Snapshot: every file and symlink under
``root`` (symlinks are not followed), with its mode (``regular``, ``executable`` =
owner execute bit set, ``symlink``) and the SHA-256 of its bytes (of the link target
text for a symlink). Excluded: any ``.git`` directory, the ledger's own files
(database, ``-wal``, ``-shm``, ``-journal``) when they live under ``root``, and
``excludes`` globs (``fnmatch`` against the relative path and against each path
component; ``build/`` excludes a directory). Directories themselves are not recorded.
A file whose stat (size, mtime, ctime, inode, mode) did not change and whose mtime is
older than the earlier snapshot is not re-read (git's "racily clean" rule).

``diff`` orders changes for recording: deletes, renames, modifications (content and/or
mode: a chmod is a modify with the same hash), creates. A rename is a path that
disappeared and another that appeared with the same content (same base name
preferred).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

__all__ = ["Entry", "Change", "Excluder", "snapshot", "diff", "read_content"]

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """One file or symlink of a snapshot. ``mode``: regular, executable or symlink;
    ``digest``: SHA-256 hex of the content (symlink: of the target text)."""

    path: str
    mode: str
    digest: str
    size: int
    stat_key: tuple


@dataclass(frozen=True)
class Change:
    """A difference between two snapshots. ``op``: create, modify, delete or rename."""

    op: str
    path: str
    mode: str = ""
    previous_path: str = ""


class Excluder:
    """Decides which relative paths are outside the recording (see module docstring)."""

    def __init__(self, root: Path, patterns: Iterable[str] = (), ledger_path: Path | None = None):
        self.patterns = [p for p in patterns if p]
        self.exact: set[str] = set()
        if ledger_path is not None:
            try:
                rel = Path(os.path.abspath(ledger_path)).relative_to(os.path.abspath(root)).as_posix()
            except ValueError:
                rel = None
            if rel:
                self.exact.update({rel, rel + "-wal", rel + "-shm", rel + "-journal"})

    def excluded(self, rel: str, is_dir: bool) -> bool:
        """True if the relative path ``rel`` (a directory when ``is_dir``) is excluded."""
        name = rel.rsplit("/", 1)[-1]
        if is_dir and name == ".git":
            return True
        if rel in self.exact:
            return True
        for pat in self.patterns:
            if pat.endswith("/"):
                if is_dir and (fnmatch.fnmatchcase(rel, pat[:-1]) or fnmatch.fnmatchcase(name, pat[:-1])):
                    return True
            elif fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(name, pat):
                return True
        return False


def _stat_key(st: os.stat_result) -> tuple:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode)


def _hash_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_content(root: Path, rel: str, mode: str) -> bytes:
    """The bytes the ledger stores for ``rel``: file content, or the link target."""
    full = os.path.join(root, rel)
    if mode == "symlink":
        return os.fsencode(os.readlink(full))
    with open(full, "rb") as fh:
        return fh.read()


def snapshot(
    root: Path,
    excluder: Excluder,
    *,
    previous: Mapping[str, Entry] | None = None,
    previous_taken_ns: int | None = None,
) -> dict[str, Entry]:
    """``{relative path: Entry}`` of every file and symlink under ``root``.

    ``previous``/``previous_taken_ns``: an earlier snapshot and when it started
    (``time.time_ns()``), to skip re-hashing unchanged files. Paths that are not valid
    UTF-8 are refused by the ledger later, with the path in the message.
    """
    out: dict[str, Entry] = {}
    root_s = os.fspath(root)
    for dirpath, dirnames, filenames in os.walk(root_s, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root_s)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        keep = []
        for d in dirnames:
            rel = f"{rel_dir}/{d}" if rel_dir else d
            full = os.path.join(dirpath, d)
            if os.path.islink(full):
                filenames.append(d)  # a symlink to a directory is recorded as a symlink
            elif not excluder.excluded(rel, True):
                keep.append(d)
        dirnames[:] = sorted(keep)
        for f in filenames:
            rel = f"{rel_dir}/{f}" if rel_dir else f
            if excluder.excluded(rel, False):
                continue
            full = os.path.join(dirpath, f)
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                target = os.fsencode(os.readlink(full))
                out[rel] = Entry(rel, "symlink", hashlib.sha256(target).hexdigest(), len(target), _stat_key(st))
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # sockets, fifos, devices: not content
            mode = "executable" if st.st_mode & stat.S_IXUSR else "regular"
            key = _stat_key(st)
            prev = previous.get(rel) if previous else None
            if (prev is not None and prev.stat_key == key and previous_taken_ns is not None
                    and st.st_mtime_ns < previous_taken_ns):
                out[rel] = prev
                continue
            try:
                digest = _hash_file(full)
            except FileNotFoundError:
                continue
            out[rel] = Entry(rel, mode, digest, st.st_size, key)
    return out


def diff(before: Mapping[str, Entry], after: Mapping[str, Entry]) -> list[Change]:
    """The changes turning ``before`` into ``after``, in recording order."""
    gone = sorted(set(before) - set(after))
    new = sorted(set(after) - set(before))
    by_digest: dict[str, list[str]] = {}
    for p in gone:
        by_digest.setdefault(before[p].digest, []).append(p)
    renames: list[Change] = []
    creates: list[Change] = []
    for p in new:
        candidates = by_digest.get(after[p].digest)
        if candidates:
            base = p.rsplit("/", 1)[-1]
            pick = next((c for c in candidates if c.rsplit("/", 1)[-1] == base), candidates[0])
            candidates.remove(pick)
            renames.append(Change("rename", p, after[p].mode, pick))
        else:
            creates.append(Change("create", p, after[p].mode))
    renamed_from = {c.previous_path for c in renames}
    deletes = [Change("delete", p) for p in gone if p not in renamed_from]
    modifies = [
        Change("modify", p, after[p].mode)
        for p in sorted(set(before) & set(after))
        if before[p].digest != after[p].digest or before[p].mode != after[p].mode
    ]
    return [*deletes, *renames, *modifies, *creates]
