"""Diff two trees (two moments of a project): added, removed, modified and
mode-changed paths, with unified diffs of text content.

Renames are not detected here: a moved file shows as removed + added (the events
themselves record renames; see ``ledger log``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ledger.diffs import describe_change
from replay.materialize import Tree

__all__ = ["PathDiff", "TreeDiff", "diff_trees", "diff_with_content"]


@dataclass
class PathDiff:
    """One path that differs. ``status``: "added", "removed", "modified" (content
    changed; the mode may have too) or "mode_changed" (same content, other mode).
    ``binary`` is True when content changed but no text diff can be shown."""

    path: str
    status: str
    old_hash: str = ""
    new_hash: str = ""
    old_mode: str = ""
    new_mode: str = ""
    lines_added: int = 0
    lines_removed: int = 0
    binary: bool = False
    patch: str = ""
    #: Why no patch could be made although content changed: "" or the
    #: ``content_withheld`` reason of a side whose bytes are in no store ("secret-file").
    withheld: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class TreeDiff:
    """The difference from ``a_label`` to ``b_label``; ``conflicts`` counts replay
    conflicts met while building either tree."""

    a_label: str
    b_label: str
    paths: list[PathDiff] = field(default_factory=list)
    conflicts: int = 0

    def count(self, status: str) -> int:
        return sum(1 for p in self.paths if p.status == status)

    def to_dict(self) -> dict:
        return {
            "a": self.a_label,
            "b": self.b_label,
            "added": self.count("added"),
            "removed": self.count("removed"),
            "modified": self.count("modified"),
            "mode_changed": self.count("mode_changed"),
            "lines_added": sum(p.lines_added for p in self.paths),
            "lines_removed": sum(p.lines_removed for p in self.paths),
            "conflicts": self.conflicts,
            "paths": [p.to_dict() for p in self.paths],
        }


def diff_trees(a: Tree, b: Tree) -> list[PathDiff]:
    """Paths that differ between trees ``a`` and ``b`` (sorted by path; no content read)."""
    out: list[PathDiff] = []
    for path in sorted(set(a) | set(b)):
        old, new = a.get(path), b.get(path)
        if old == new:
            continue
        if old is None:
            out.append(PathDiff(path, "added", new_hash=new[0], new_mode=new[1]))
        elif new is None:
            out.append(PathDiff(path, "removed", old_hash=old[0], old_mode=old[1]))
        else:
            status = "modified" if old[0] != new[0] else "mode_changed"
            out.append(PathDiff(path, status, old[0], new[0], old[1], new[1]))
    return out


def diff_with_content(
    a: Tree,
    b: Tree,
    read_blob: Callable[[str], bytes] | None,
    *,
    a_label: str = "a",
    b_label: str = "b",
    conflicts: int = 0,
    withheld: Callable[[str], str | None] | None = None,
) -> TreeDiff:
    """``diff_trees`` plus unified diffs and line counts read through ``read_blob``
    (None: no content read, no patches). Symlinks diff their targets as text. A side
    whose content ``withheld(sha256_hex)`` explains (a secret file: hash only) gives no
    patch and sets ``PathDiff.withheld``; other missing content raises what ``read_blob``
    raises."""
    paths = diff_trees(a, b)
    if read_blob is not None:
        for p in paths:
            if p.status == "mode_changed":
                continue
            try:
                old = read_blob(p.old_hash) if p.old_hash else None
                new = read_blob(p.new_hash) if p.new_hash else None
            except LookupError:
                reason = withheld and (withheld(p.new_hash) or withheld(p.old_hash))
                if not reason:
                    raise
                p.withheld = reason
                continue
            p.patch, p.lines_added, p.lines_removed = describe_change(p.path, old, new)
            p.binary = not p.patch and old != new and bool(old or new)
    return TreeDiff(a_label, b_label, paths, conflicts)
