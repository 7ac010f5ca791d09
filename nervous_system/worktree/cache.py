"""The stat cache: what a work tree's files hashed to, keyed by their stat (like git's
index), so a later snapshot re-reads only files whose stat changed.

``{path: (size, mtime_ns, ctime_ns, inode, st_mode, sha256)}`` (the mode follows from
``st_mode``) saved per work tree (``cache_path``: next to the ledger file, in
``<ledger>-worktrees/``, one file per root named by a hash of the root's path), written
atomically (a temporary file renamed over the old one). Format: the line
``context-ledger stat cache 1 <python major.minor>`` then ``marshal`` of
``(root, taken_ns, entries)`` — several times faster to load and save than JSON, which
matters on every hook call; ``marshal`` is only read back by the same Python version
(the header says which). A missing, unreadable, corrupt, foreign or other-version file
is an empty cache: everything is hashed again.

git's "racily clean" rule: an entry is trusted only if the file's mtime is older than
the whole second in which the snapshot that hashed it started (a file changed right
after it was hashed, within the filesystem's timestamp granularity, keeps its mtime
and may keep its size: such files are hashed again).
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from pathlib import Path
from typing import Mapping

__all__ = ["StatCache", "cache_path", "CACHE_VERSION"]

CACHE_VERSION = 1
_HEADER = f"context-ledger stat cache {CACHE_VERSION} {sys.version_info[0]}.{sys.version_info[1]}\n".encode()
_SECOND = 1_000_000_000


def cache_path(ledger_path: str | os.PathLike, root: str | os.PathLike) -> Path:
    """Where the stat cache of work tree ``root`` lives for the ledger at ``ledger_path``."""
    key = hashlib.sha256(os.fsencode(os.path.abspath(root))).hexdigest()[:24]
    return Path(os.fspath(ledger_path) + "-worktrees") / f"{key}.json"


class StatCache:
    """Digests by stat key for one work tree (see the module docstring)."""

    def __init__(self, root: str, entries: Mapping[str, tuple] | None = None, taken_ns: int = 0,
                 path: str | os.PathLike | None = None) -> None:
        self.root = root
        self.entries: dict[str, tuple] = dict(entries or {})  # path -> (*stat_key, sha256)
        self.trusted_before = (taken_ns // _SECOND) * _SECOND
        self.path = Path(path) if path is not None else None

    @classmethod
    def load(cls, path: str | os.PathLike, root: str | os.PathLike) -> "StatCache":
        """The cache saved at ``path`` for ``root``; empty when absent or unusable."""
        root_s = os.path.abspath(root)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
            if not data.startswith(_HEADER):
                raise ValueError("another format, version or Python")
            root, taken, entries = marshal.loads(data[len(_HEADER):])
            if root != root_s or not isinstance(entries, dict) or not isinstance(taken, int):
                raise ValueError("another root")
        except Exception:  # noqa: BLE001 - any unreadable cache is an empty one
            return cls(root_s, path=path)
        return cls(root_s, entries, taken, path)

    @classmethod
    def of(cls, root: str, entries: Mapping[str, tuple[tuple, str]], taken_ns: int) -> "StatCache":
        """An in-memory cache from ``{path: (stat_key, sha256)}`` taken at ``taken_ns``."""
        return cls(root, {p: (*key, digest) for p, (key, digest) in entries.items()}, taken_ns)

    def digest(self, rel: str, key: tuple) -> str | None:
        """The SHA-256 recorded for ``rel`` if its stat ``key`` is unchanged and trusted."""
        row = self.entries.get(rel)
        if row is None or row[:5] != key or key[1] >= self.trusted_before:
            return None
        return row[5]

    def save(self, entries: Mapping[str, tuple[tuple, str]], taken_ns: int) -> None:
        """Replace the saved cache with ``{path: (stat_key, sha256)}`` (atomic; errors
        are ignored: a cache is an optimisation)."""
        if self.path is None:
            return
        data = _HEADER + marshal.dumps((self.root, taken_ns, {p: (*key, digest) for p, (key, digest) in entries.items()}))
        import tempfile  # only when saving: ~4 ms of imports a hook without changes skips

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".stat-cache-", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass
