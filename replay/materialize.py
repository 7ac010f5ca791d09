"""The time-travel materializer: file state changes in, an exact directory tree out.

Source-agnostic: it takes ``ledger.ChangeRow`` records in the order to apply them and a
``read_blob(sha256_hex) -> bytes`` function, so the local ledger and the FoundationDB
hub feed the same code. Two steps:

1. ``build_tree(changes)`` (pure, no I/O) applies the changes to an in-memory tree
   ``{path: (sha256_hex, mode)}``, checking every change against the state it applies
   to (previous hash and mode, existence). A mismatch is a ``Conflict``: reported, and
   the change still applies (the recorded history wins). Unsafe paths (absolute,
   ``..``, through a symlink that is in the tree at that moment) raise ``UnsafePath``.
2. ``materialize(...)`` writes that tree into a fresh temporary directory next to the
   output directory and renames it into place, so a failed or interrupted replay
   leaves nothing half-written. Regular files get mode 0644, executables 0755 (like
   ``git archive``), symlinks are created with their recorded target bytes (content,
   like git: they are never followed, and may point anywhere). Files are created with
   ``O_EXCL | O_NOFOLLOW`` inside directories this code created, and symlinks are
   created last, so nothing is ever written through a link.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from ledger.changes import projected
from ledger.records import ChangeRow
from replay.errors import ConflictsFound, InconsistentTree, ReplayError, UnsafePath
from replay.outdir import OutputPolicy, remove_tree
from replay.writer import FILE_MODES, write_tree
from schemas import check_relative_path

if TYPE_CHECKING:
    from replay.snapshots import Start

__all__ = [
    "Tree",
    "Conflict",
    "ReplayReport",
    "Unrestored",
    "build_tree",
    "materialize",
    "FILE_MODES",
]

#: ``{path: (sha256_hex, mode)}`` with mode one of "regular", "executable", "symlink".
Tree = dict[str, tuple[str, str]]



@dataclass(frozen=True)
class Conflict:
    """A change that did not apply cleanly to the state before it.

    ``problem``: "exists" (create over an existing path), "missing" (modify, delete or
    rename of an absent path), "hash_mismatch" (previous hash differs), "mode_mismatch"
    (previous mode differs), "parent_is_file" (a path below a regular file: the file
    was removed), "is_directory" (a file where a directory was: its contents were
    removed). ``expected``/``actual`` are hashes, modes or "absent"/"directory".
    """

    event_id: str
    path: str
    operation: str
    problem: str
    expected: str
    actual: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def __str__(self) -> str:
        return (f"{self.event_id[:13]} {self.operation} {self.path}: {self.problem.replace('_', ' ')} "
                f"(expected {_short(self.expected)}, found {_short(self.actual)})")


def _short(value: str) -> str:
    return value[:12] if len(value) == 64 else (value or "nothing")


@dataclass(frozen=True)
class Unrestored:
    """A file replay or restore could not write: ``path``, its recorded ``hash`` and
    ``reason`` (the event's ``content_withheld``, e.g. "secret-file": its content was
    never stored)."""

    path: str
    hash: str
    reason: str

    def to_dict(self) -> dict:
        return {"path": self.path, "hash": self.hash, "reason": self.reason}

    def __str__(self) -> str:
        why = "content withheld: secret file" if self.reason == "secret-file" else f"content withheld: {self.reason}"
        return f"{self.path} ({why}; not restored)"


@dataclass
class ReplayReport:
    """What a replay wrote. ``bytes`` counts file content and symlink targets."""

    out_dir: str
    files: int = 0
    executables: int = 0
    symlinks: int = 0
    directories: int = 0
    bytes: int = 0
    changes: int = 0
    #: Of ``changes``, how many a replay snapshot held (``replay.snapshots``): the
    #: replay applied only ``changes - snapshot_changes`` of them.
    snapshot_changes: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    tree: Tree = field(default_factory=dict)
    seconds: float = 0.0
    #: Files of the tree that were NOT written, with why: ``Unrestored`` (content withheld
    #: at record time, e.g. a secret file; ``ledger.secret_files``).
    unrestored: list["Unrestored"] = field(default_factory=list)

    def to_dict(self, *, include_tree: bool = False) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("conflicts", "tree", "unrestored")}
        d["conflicts"] = [c.to_dict() for c in self.conflicts]
        d["unrestored"] = [u.to_dict() for u in self.unrestored]
        if include_tree:
            d["tree"] = {p: {"hash": h, "mode": m} for p, (h, m) in sorted(self.tree.items())}
        return d


# ------------------------------------------------------------------ tree building
def _ancestors(path: str) -> Iterable[str]:
    i = path.find("/")
    while i != -1:
        yield path[:i]
        i = path.find("/", i + 1)


class _State:
    """The tree plus a count of entries below each directory (O(depth) updates)."""

    def __init__(self) -> None:
        self.tree: Tree = {}
        self.below: dict[str, int] = {}

    def add(self, path: str, entry: tuple[str, str]) -> None:
        if path not in self.tree:
            for a in _ancestors(path):
                self.below[a] = self.below.get(a, 0) + 1
        self.tree[path] = entry

    def remove(self, path: str) -> None:
        if self.tree.pop(path, None) is not None:
            for a in _ancestors(path):
                left = self.below[a] - 1
                if left:
                    self.below[a] = left
                else:
                    del self.below[a]

    def remove_under(self, directory: str) -> None:
        prefix = directory + "/"
        for p in [p for p in self.tree if p.startswith(prefix)]:
            self.remove(p)


def _check_path(change: ChangeRow, path: str) -> None:
    try:
        check_relative_path(path)
    except ValueError as exc:
        raise UnsafePath(
            f"event {change.event_id}: {exc}; refusing to write outside the output "
            "directory. Nothing was written."
        ) from exc


def build_tree(changes: Iterable[ChangeRow], start: Tree | None = None) -> tuple[Tree, list[Conflict]]:
    """Apply ``changes`` in the given order to an empty tree (or to a copy of ``start``,
    a tree ``build_tree`` returned: ``build_tree(b, start=build_tree(a)[0])[0] ==
    build_tree(a + b)[0]``, which lets a caller resume from a checkpoint).

    Returns ``(tree, conflicts)``; ``tree`` maps path -> ``(sha256_hex, mode)``.
    Raises ``UnsafePath`` for an absolute path, a '..' component, or a change whose
    path (or rename source) goes through a path that is a symlink in the tree at that
    moment; ``InconsistentTree`` for an unknown operation. Pure: no I/O.
    """
    state = _State()
    for path, entry in (start or {}).items():
        state.add(path, entry)
    tree = state.tree
    conflicts: list[Conflict] = []

    def conflict(c: ChangeRow, path: str, problem: str, expected: str, actual: str) -> None:
        conflicts.append(Conflict(c.event_id, path, c.operation, problem, expected, actual))

    def check_previous(c: ChangeRow, path: str) -> bool:
        """Compare the state of ``path`` with the change's expectation; True if present."""
        current = tree.get(path)
        if current is None:
            conflict(c, path, "missing", c.previous_hash or "present", "absent")
            return False
        if c.previous_hash and current[0] != c.previous_hash:
            conflict(c, path, "hash_mismatch", c.previous_hash, current[0])
        elif c.previous_mode and c.previous_mode != "unspecified" and current[1] != c.previous_mode:
            conflict(c, path, "mode_mismatch", c.previous_mode, current[1])
        return True

    def place(c: ChangeRow, path: str) -> None:
        for a in _ancestors(path):
            if a in tree:  # a regular file where a directory is needed (symlinks refused earlier)
                conflict(c, path, "parent_is_file", "directory", tree[a][0])
                state.remove(a)
        if path in state.below:
            conflict(c, path, "is_directory", "absent", "directory")
            state.remove_under(path)
        mode = c.mode if c.mode in ("regular", "executable", "symlink") else "regular"
        state.add(path, (c.new_hash, mode))

    for c in changes:
        paths = [c.path] + ([c.previous_path] if c.operation == "rename" else [])
        for p in paths:
            _check_path(c, p)
            for a in _ancestors(p):
                entry = tree.get(a)
                if entry is not None and entry[1] == "symlink":
                    raise UnsafePath(
                        f"event {c.event_id} ({c.operation} {p!r}) goes through {a!r}, which is a "
                        "symlink at that moment; writing through it could leave the output "
                        "directory, so the replay is refused. Nothing was written."
                    )
        op = c.operation
        if op == "create":
            if c.path in tree:
                conflict(c, c.path, "exists", "absent", tree[c.path][0])
        elif op in ("modify", "delete"):
            check_previous(c, c.path)
        elif op == "rename":
            check_previous(c, c.previous_path)
            if c.path in tree:
                conflict(c, c.path, "exists", "absent", tree[c.path][0])
        else:
            raise InconsistentTree(
                f"event {c.event_id}: unknown operation {op!r} for {c.path!r}; "
                "upgrade context-ledger to replay this history"
            )
        for path, entry in projected(op, c.path, c.previous_path, c.new_hash, c.mode):
            if entry is None:
                state.remove(path)
            else:
                place(c, path)
    return tree, conflicts


# -------------------------------------------------------------------- writing
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def materialize(
    changes: Iterable[ChangeRow],
    read_blob: Callable[[str], bytes],
    out_dir: str | os.PathLike,
    *,
    force: bool = False,
    strict: bool = False,
    verify: bool = True,
    progress: Callable[[int, int], None] | None = None,
    policy: OutputPolicy | None = None,
    start: "Start | None" = None,
    withheld: Callable[[str], str | None] | None = None,
) -> ReplayReport:
    """Build the tree of ``changes`` and write it to ``out_dir``.

    ``withheld(sha256_hex)`` says why a content is not stored (the change's
    ``content_withheld`` reason, e.g. "secret-file") or None: a file whose content
    ``read_blob`` cannot find (``LookupError``) and that ``withheld`` explains is left out
    and listed in ``report.unrestored``; any other missing content fails the replay.

    ``read_blob(sha256_hex)`` returns the content; with ``verify`` its SHA-256 is
    checked. ``progress(done, total)`` counts tree entries written. ``out_dir`` must be
    absent or empty unless ``force``; ``policy`` (``replay.outdir.OutputPolicy``) decides
    what may be replaced (by default: nothing that holds a ``.git``, and with ``force``
    only a directory an earlier replay created). With ``strict``,
    any conflict raises ``ConflictsFound`` before anything is written. ``start``
    (``replay.snapshots.Start``): the tree ``changes`` apply to (a replay snapshot; its
    conflicts and change count are part of the report), else an empty tree.

    All or nothing: the tree is written to a temporary directory next to ``out_dir``
    and renamed into place; on any error (a missing blob, a full disk, an interrupt) the
    temporary directory is removed and ``out_dir`` is left as it was.
    Raises ``UnsafePath``, ``OutputNotEmpty``, ``ConflictsFound``, ``ReplayError``, and
    whatever ``read_blob`` raises (e.g. ``ledger.BlobNotFound``).
    """
    started = time.perf_counter()
    out = Path(os.path.abspath(out_dir))
    policy = policy or OutputPolicy()
    replace = policy.check(out, force=force)
    rows = 0

    def counted() -> Iterable[ChangeRow]:
        nonlocal rows
        for c in changes:
            rows += 1
            yield c

    tree, conflicts = build_tree(counted(), start=start.tree if start is not None else None)
    if start is not None:
        conflicts = start.conflicts + conflicts
        rows += start.changes
    if strict and conflicts:
        raise ConflictsFound(
            f"{len(conflicts)} change(s) conflict with the state they apply to (first: "
            f"{conflicts[0]}); --strict: nothing was written. Replay without --strict to "
            "see them all",
            conflicts,
        )
    report = ReplayReport(out_dir=str(out), changes=rows, conflicts=conflicts, tree=tree,
                          snapshot_changes=start.changes if start is not None else 0)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.replay-", dir=out.parent))
    except OSError as exc:
        raise ReplayError(f"cannot create a temporary directory next to {out}: {exc}") from exc
    try:
        write_tree(tree, tmp, read_blob, verify, report, progress, withheld)
        os.chmod(tmp, 0o777 & ~_umask())
        _swap_into_place(tmp, out, replace)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            remove_tree(tmp)
        if isinstance(exc, OSError):
            raise ReplayError(f"replay into {out} failed, nothing was written: {exc}") from exc
        raise
    policy.remember(out)
    report.seconds = time.perf_counter() - started
    return report


def _swap_into_place(tmp: Path, out: Path, replace: bool) -> None:
    """Rename ``tmp`` to ``out``; with ``replace``, move the old ``out`` aside first and
    delete it only after the new tree is in place (restored if the rename fails)."""
    if not replace:
        os.rename(tmp, out)  # atomic; also replaces an empty directory
        return
    old = tmp.with_name(tmp.name + ".old")
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    with contextlib.suppress(OSError):
        remove_tree(old)
