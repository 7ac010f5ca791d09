"""Time-travel replay: materialize a project's files as they were at a moment, and
diff two moments.

Library entry points::

    from ledger import open_ledger
    from replay.moments import resolve_moment
    from replay import replay_local, diff_moments

    lg = open_ledger()
    moment = resolve_moment(lg, "default", "web", "2 hours ago")
    report = replay_local(lg, "default", "web", moment, "/tmp/web-then")

``replay.materialize`` is source-agnostic (``ChangeRow``s + a blob reader); the
functions here feed it from the local SQLite ledger.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from replay.moments import Moment
from ledger.records import ChangeRow
from ledger.store import Ledger
from replay.diffing import PathDiff, TreeDiff, diff_trees
from replay.errors import ConflictsFound, InconsistentTree, OutputNotEmpty, ReplayError, UnsafePath
from replay.materialize import Conflict, ReplayReport, Tree, build_tree, materialize

__all__ = [
    "Conflict",
    "ReplayReport",
    "Tree",
    "PathDiff",
    "TreeDiff",
    "build_tree",
    "materialize",
    "diff_trees",
    "ReplaySource",
    "local_source",
    "replay_from",
    "diff_from",
    "changes_at",
    "tree_at",
    "replay_local",
    "diff_moments",
    "ReplayError",
    "UnsafePath",
    "OutputNotEmpty",
    "ConflictsFound",
    "InconsistentTree",
]


@dataclass(frozen=True)
class ReplaySource:
    """Where replay reads history from: how to resolve a WHEN, which changes a moment
    selects (in apply order), and how to read content. ``verify``: whether the
    materializer must check content hashes (False when ``read_blob`` already does).

    The local ledger is ``local_source``; another source (the FoundationDB hub) only
    has to build one of these.
    """

    name: str
    tenant: str
    project: str
    resolve: Callable[[str], Moment]
    changes: Callable[[Moment], Iterable[ChangeRow]]
    read_blob: Callable[[str], bytes]
    verify: bool = True


def local_source(ledger: Ledger, tenant: str, project: str) -> ReplaySource:
    """A ``ReplaySource`` over the local SQLite ledger."""
    from replay.moments import resolve_moment

    return ReplaySource(
        name="local",
        tenant=tenant,
        project=project,
        resolve=lambda when: resolve_moment(ledger, tenant, project, when),
        changes=lambda moment: changes_at(ledger, tenant, project, moment),
        read_blob=ledger.get_blob,
        verify=False,  # Ledger.get_blob checks the SHA-256 of what it returns
    )


def replay_from(
    source: ReplaySource,
    moment: Moment,
    out_dir: str | os.PathLike,
    *,
    force: bool = False,
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Materialize ``source``'s project as of ``moment`` into ``out_dir`` (see ``materialize``)."""
    return materialize(source.changes(moment), source.read_blob, out_dir, force=force,
                       strict=strict, verify=source.verify, progress=progress)


def diff_from(source: ReplaySource, a: Moment, b: Moment, *, patches: bool = True) -> TreeDiff:
    """What changed in ``source``'s project from moment ``a`` to moment ``b``."""
    from replay.diffing import diff_with_content

    tree_a, conflicts_a = build_tree(source.changes(a))
    tree_b, conflicts_b = build_tree(source.changes(b))
    return diff_with_content(
        tree_a, tree_b, source.read_blob if patches else None,
        a_label=a.describe(), b_label=b.describe(),
        conflicts=len(conflicts_a) + len(conflicts_b),
    )


def changes_at(ledger: Ledger, tenant: str, project: str, moment: Moment) -> Iterator[ChangeRow]:
    """The project's file changes selected by ``moment``, in the order to apply them:
    event time (ties by seq) for a time, recording order (seq) for an event or commit."""
    if moment.kind == "time":
        return ledger.changes(tenant, project, until_ns=moment.until_ns, order="time")
    return ledger.changes(tenant, project, until_seq=moment.until_seq, order="seq")


def tree_at(ledger: Ledger, tenant: str, project: str, moment: Moment) -> tuple[Tree, list[Conflict]]:
    """``build_tree`` of the local ledger at ``moment``: ``({path: (sha256, mode)}, conflicts)``."""
    return build_tree(changes_at(ledger, tenant, project, moment))


def replay_local(
    ledger: Ledger,
    tenant: str,
    project: str,
    moment: Moment,
    out_dir: str | os.PathLike,
    *,
    force: bool = False,
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Materialize ``project`` as of ``moment`` from the local ledger into ``out_dir``.

    See ``replay.materialize.materialize`` for the guarantees and errors.
    """
    return replay_from(local_source(ledger, tenant, project), moment, out_dir,
                       force=force, strict=strict, progress=progress)


def diff_moments(
    ledger: Ledger, tenant: str, project: str, a: Moment, b: Moment, *, patches: bool = True
) -> TreeDiff:
    """What changed between moments ``a`` and ``b`` in the local ledger (see ``replay.diffing``)."""
    return diff_from(local_source(ledger, tenant, project), a, b, patches=patches)
