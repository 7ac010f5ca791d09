"""The work tree: snapshots of the files under a root and the changes between two.

Shared by ``ledger exec`` and the agent hooks (which snapshot after every tool call), so
this package imports only the standard library, ``schemas.paths`` and ``schemas.limits``.

* ``find_root(start)``: the repository root (git's top level) or ``start``.
* ``snapshot(root, excluder, cache=..., progress=...)`` -> ``Snapshot``: every file and
  symlink ``listing.list_paths`` gives (git's view of the tree: ``.gitignore`` honoured,
  never ``.git/``, never the ledger's own files, ``--exclude`` globs), with its mode
  (``regular``, ``executable`` = owner execute bit, ``symlink``) and the SHA-256 of its
  bytes (of the link target for a symlink). Files whose stat is unchanged since the
  cached snapshot (``cache.StatCache``, git's "racily clean" rule) are not re-read.
  Paths that are not valid UTF-8 or break the rules of ``schemas.paths``, and files
  over ``schemas.limits.MAX_CONTENT_BYTES`` (never read), are listed in
  ``Snapshot.skipped``, never recorded. ``progress(done, total)`` is called while a
  snapshot hashes ``PROGRESS_MIN_FILES`` files or more (a first snapshot).
* ``cached_entries(cache)``: the snapshot a saved stat cache describes (a hook keeps
  no other state between tool calls: load the cache, snapshot, diff the two).
* ``diff(before, after)``: the changes in recording order: deletes, renames (a path
  that disappeared and one that appeared with the same content; the same
  base name preferred), modifications (content and/or mode: a chmod is a modify with
  the same hash), creates.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path
from typing import Callable, Mapping, NamedTuple

from nervous_system.worktree.cache import StatCache, cache_path
from nervous_system.worktree.listing import Excluder, Skipped, find_root, list_paths
from schemas.limits import MAX_CONTENT_BYTES

__all__ = ["Entry", "Change", "Snapshot", "Skipped", "Excluder", "StatCache", "cache_path", "find_root",
           "snapshot", "diff", "read_content", "cached_entries", "default_project_name", "project_for_root",
           "PROGRESS_MIN_FILES"]

#: A snapshot that hashes at least this many files reports progress.
PROGRESS_MIN_FILES = 1000


class Entry(NamedTuple):
    """One file or symlink of a snapshot. ``mode``: regular, executable or symlink;
    ``digest``: SHA-256 hex of the content (symlink: of the target text);
    ``stat_key``: (size, mtime_ns, ctime_ns, inode, st_mode). A named tuple: a hook
    builds thousands per tool call."""

    path: str
    mode: str
    digest: str
    size: int
    stat_key: tuple


class Change(NamedTuple):
    """A difference between two snapshots. ``op``: create, modify, delete or rename."""

    op: str
    path: str
    mode: str = ""
    previous_path: str = ""


class Snapshot:
    """A snapshot of ``root`` started at ``taken_ns``: ``entries`` by relative path,
    what was left out (``skipped``), and how many files were read (``hashed``). (No
    dataclasses on the hook path: importing them costs ~8 ms.)"""

    __slots__ = ("root", "taken_ns", "entries", "skipped", "hashed")

    def __init__(self, root: Path, taken_ns: int) -> None:
        self.root = root
        self.taken_ns = taken_ns
        self.entries: dict[str, Entry] = {}
        self.skipped: list[Skipped] = []
        self.hashed = 0

    def as_cache(self) -> StatCache:
        """This snapshot as an in-memory stat cache (for the next snapshot)."""
        return StatCache.of(os.fspath(self.root), {p: (e.stat_key, e.digest) for p, e in self.entries.items()},
                            self.taken_ns)


def cached_entries(cache: StatCache) -> dict[str, Entry]:
    """The snapshot a stat cache was saved from (what a hook compares the next
    snapshot with): ``{path: Entry}``."""
    return {p: Entry(p, _mode_of(row[4]), row[5], row[0], row[:5])
            for p, row in cache.entries.items() if len(row) == 6}


def default_project_name(root: str | os.PathLike) -> str:
    """A project id from a directory's name (``/src/web-app`` -> ``web-app``)."""
    name = Path(os.path.abspath(root)).name or "repo"
    cleaned = "".join(c if c.isprintable() and c != "/" else "_" for c in name)[:128]
    return cleaned or "repo"


def project_for_root(ledger: object, tenant: str, root: str | os.PathLike) -> str:
    """The project a work tree records into when none is configured: the registered
    project whose root holds ``root`` (``Ledger.project_for_path``, the ledger's project
    registry), else the root directory's name (``default_project_name``). ``ledger`` is
    used duck-typed, so this module imports nothing of the ledger."""
    lookup = getattr(ledger, "project_for_path", None)
    known = lookup(tenant, root) if lookup is not None else None
    return known.project_id if known is not None else default_project_name(root)


def _mode_of(st_mode: int) -> str:
    if stat.S_ISLNK(st_mode):
        return "symlink"
    return "executable" if st_mode & stat.S_IXUSR else "regular"


def _hash_file(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_content(root: Path, rel: str, mode: str) -> bytes:
    """The bytes the ledger stores for ``rel``: file content, or the link target."""
    full = os.path.join(root, rel)
    if mode == "symlink":
        return os.fsencode(os.readlink(full))
    with open(full, "rb") as fh:
        return fh.read()


def snapshot(
    root: str | os.PathLike,
    excluder: Excluder | None = None,
    *,
    cache: StatCache | None = None,
    progress: Callable[[int, int], None] | None = None,
    use_git: bool | None = None,
) -> Snapshot:
    """A ``Snapshot`` of ``root`` (see the package docstring). ``cache``: digests of an
    earlier snapshot (``StatCache.load``/``Snapshot.as_cache``); when it has a ``path``
    it is replaced by this snapshot. ``use_git``: None = when ``root`` is a git work
    tree's top."""
    root_p = Path(os.path.abspath(root))
    root_s = os.fspath(root_p)
    snap = Snapshot(root_p, time.time_ns())
    excluder = excluder or Excluder(root_p)
    known = cache.entries if cache is not None else None
    paths = list_paths(root_p, excluder, snap.skipped, use_git=use_git, checked=known)
    to_hash: list[tuple[str, tuple, int]] = []
    prefix = root_s.rstrip("/") + "/"
    lstat = os.lstat
    for rel in paths:
        try:
            st = lstat(prefix + rel)
        except OSError:  # deleted since listed, or tracked but gone from the work tree
            continue
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            continue  # a directory (submodule), socket, fifo, device: not content
        if st.st_size > MAX_CONTENT_BYTES:  # never read: it could not be recorded
            snap.skipped.append(Skipped(rel, f"{st.st_size:,} bytes, over the {MAX_CONTENT_BYTES:,}-byte "
                                             "limit of recorded content"))
            continue
        key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_mode)
        digest = cache.digest(rel, key) if cache is not None else None
        if digest is not None:
            snap.entries[rel] = Entry(rel, _mode_of(st.st_mode), digest, st.st_size, key)
        else:
            to_hash.append((rel, key, st.st_mode))
    report = progress if progress is not None and len(to_hash) >= PROGRESS_MIN_FILES else None
    for n, (rel, key, st_mode) in enumerate(to_hash, 1):
        full = prefix + rel
        try:
            if stat.S_ISLNK(st_mode):
                digest = hashlib.sha256(os.fsencode(os.readlink(full))).hexdigest()
            else:
                digest = _hash_file(full)
        except OSError:
            continue
        snap.entries[rel] = Entry(rel, _mode_of(st_mode), digest, key[0], key)
        snap.hashed += 1
        if report is not None and (n % 100 == 0 or n == len(to_hash)):
            report(n, len(to_hash))
    if cache is not None and cache.path is not None and (snap.hashed or len(cache.entries) != len(snap.entries)):
        cache.save({p: (e.stat_key, e.digest) for p, e in snap.entries.items()}, snap.taken_ns)
    return snap


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
