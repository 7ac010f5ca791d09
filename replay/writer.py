"""Writing a replayed tree: files, executables and symlinks, exactly, and only inside
the output directory.

Every directory is created and opened relative to its parent (``mkdir``/``open`` with
``dir_fd`` and ``O_NOFOLLOW``): no absolute path is ever built, so neither PATH_MAX nor
a symlink can make a write land elsewhere, and trees of any depth are written. Files are
created with ``O_EXCL | O_NOFOLLOW`` (never through an existing entry); symlinks are
created last, so no later write can go through one. Regular files get mode 0644 and
executables 0755, like ``git archive``.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from replay.errors import ReplayError
from replay.overlap import BackgroundWriter
from schemas.paths import check_symlink

if TYPE_CHECKING:
    from replay.materialize import ReplayReport, Tree

__all__ = ["FILE_MODES", "write_tree"]

#: Permission bits written for each file mode (git archive's 0644/0755).
FILE_MODES = {"regular": 0o644, "executable": 0o755}

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_WRITE_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC
#: Directory descriptors kept open while writing (least recently used are closed).
OPEN_DIRS = 64


class _Dirs:
    """The directories of the tree being written under the directory open at
    ``root_fd``: created on first use (``mkdir`` fails if anything is already there)
    and opened relative to their parent."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.open: OrderedDict[str, int] = OrderedDict()
        self.made: set[str] = set()

    def fd(self, directory: str) -> int:
        """The descriptor of ``directory`` ('' is the root), creating it and its parents."""
        if not directory:
            return self.root_fd
        fd = self.open.get(directory)
        if fd is not None:
            self.open.move_to_end(directory)
            return fd
        parts = directory.split("/")
        known = len(parts) - 1
        while known > 0 and "/".join(parts[:known]) not in self.open:
            known -= 1
        fd = self.open["/".join(parts[:known])] if known else self.root_fd
        for i in range(known, len(parts)):
            sub = "/".join(parts[:i + 1])
            if sub not in self.made:
                os.mkdir(parts[i], 0o755, dir_fd=fd)
                self.made.add(sub)
            fd = os.open(parts[i], _O_DIR, dir_fd=fd)
            self.open[sub] = fd
            if len(self.open) > OPEN_DIRS:
                os.close(self.open.popitem(last=False)[1])
        return fd

    def close(self) -> None:
        for fd in self.open.values():
            os.close(fd)
        self.open.clear()


class _Withheld(Exception):
    """The content of a path was withheld at record time (``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _checked(read_blob: Callable[[str], bytes], digest: str, path: str, verify: bool,
             withheld: Callable[[str], str | None] | None = None) -> bytes:
    try:
        data = read_blob(digest)
    except LookupError:
        reason = withheld(digest) if withheld is not None else None
        if reason:
            raise _Withheld(reason) from None
        raise
    if verify and hashlib.sha256(data).hexdigest() != digest:
        raise ReplayError(f"content of {path!r} does not match its SHA-256 {digest}; the store is corrupt")
    return data


def write_tree(
    tree: "Tree",
    root: Path,
    read_blob: Callable[[str], bytes],
    verify: bool,
    report: "ReplayReport",
    progress: Callable[[int, int], None] | None,
    withheld: Callable[[str], str | None] | None = None,
) -> None:
    """Write ``tree`` (``{path: (sha256_hex, mode)}``) into the empty directory ``root``,
    counting into ``report``; ``progress(done, total)`` every 200 entries. A file whose
    content is missing and that ``withheld(sha256_hex)`` explains is skipped and listed in
    ``report.unrestored`` (nothing is written in its place). Raises
    ``ReplayError`` for content that does not match its hash (with ``verify``) and
    ``OSError`` for filesystem errors."""
    root_fd = os.open(root, _O_DIR)
    dirs = _Dirs(root_fd)
    total, done = len(tree), 0
    links: list[tuple[str, str]] = []

    def write_file(item: tuple[str, str, bytes]) -> None:  # on the writer thread
        path, mode, data = item
        parent, _, name = path.rpartition("/")
        fd = os.open(name, _O_WRITE_NEW, 0o600, dir_fd=dirs.fd(parent))
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, FILE_MODES[mode])
        finally:
            os.close(fd)
        report.files += 1
        report.executables += mode == "executable"
        report.bytes += len(data)

    try:
        # files are written on a second thread while the next contents are read here
        # (query, delta chain, hash check): see replay.overlap
        with BackgroundWriter(write_file) as writer:
            for path in sorted(tree):
                digest, mode = tree[path]
                if mode == "symlink":
                    links.append((path, digest))
                    continue
                try:
                    data = _checked(read_blob, digest, path, verify, withheld)
                except _Withheld as why:
                    from replay.materialize import Unrestored

                    report.unrestored.append(Unrestored(path, digest, why.reason))
                else:
                    writer.put((path, mode, data), len(data))
                done += 1
                if progress is not None and (done % 200 == 0 or done == total):
                    progress(done, total)
        for path, digest in links:  # last: no later write can go through them
            target = _checked(read_blob, digest, path, verify)
            try:
                check_symlink(path, target)
            except ValueError as exc:
                raise ReplayError(f"{exc}; the replay is refused. Nothing was written.") from None
            parent, _, name = path.rpartition("/")
            os.symlink(target, os.fsencode(name), dir_fd=dirs.fd(parent))
            report.symlinks += 1
            report.bytes += len(target)
            done += 1
            if progress is not None and (done % 200 == 0 or done == total):
                progress(done, total)
        report.directories = len(dirs.made)
    finally:
        dirs.close()
        os.close(root_fd)
