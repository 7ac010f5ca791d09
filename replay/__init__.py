"""The read side: moments, histories (local and hub), the time-travel materializer,
diffing and restore.

Library entry points::

    from ledger import open_ledger
    from replay import LocalHistory, replay_from, diff_from

    lg = open_ledger()
    history = LocalHistory(lg, "default", "web")
    moment = history.resolve("2 hours ago")            # replay.moments: one WHEN parser
    report = replay_from(history, moment, "/tmp/web-then")

``replay.materialize`` is source-agnostic (``ChangeRow``s + a blob reader); a
``replay.history.History`` (``LocalHistory``, ``replay.hub.HubHistory``) feeds it.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from ledger.records import ChangeRow
from ledger.store import Ledger
from replay.errors import ConflictsFound, InconsistentTree, OutputNotEmpty, ReplayError, UnsafePath
from replay.history import History, LocalHistory, LogEntry, LogQuery
from replay.materialize import Conflict, ReplayReport, Tree, build_tree, materialize
from replay.moments import Moment
from replay.outdir import OutputPolicy
from replay.snapshots import plan_of, tree_of
from schemas.lazy import lazy_exports

if TYPE_CHECKING:
    from replay.diffing import PathDiff, TreeDiff, diff_trees

#: Loaded on first use (PEP 562): ``ledger replay`` does not pay for the diff machinery.
__getattr__, _ = lazy_exports(__name__, dict.fromkeys(["PathDiff", "TreeDiff", "diff_trees"], "replay.diffing"))

__all__ = [
    "Conflict",
    "ReplayReport",
    "Tree",
    "PathDiff",
    "TreeDiff",
    "build_tree",
    "materialize",
    "diff_trees",
    "History",
    "ReplaySource",
    "LocalHistory",
    "LogEntry",
    "LogQuery",
    "Moment",
    "local_source",
    "resolve_moment",
    "replay_from",
    "diff_from",
    "changes_at",
    "tree_at",
    "replay_local",
    "ledger_output_policy",
    "OutputPolicy",
    "diff_moments",
    "ReplayError",
    "UnsafePath",
    "OutputNotEmpty",
    "ConflictsFound",
    "InconsistentTree",
]

#: Where replay reads history from (the name the CLI's ``--source`` wiring uses).
ReplaySource = History


def local_source(ledger: Ledger, tenant: str, project: str) -> LocalHistory:
    """The local ledger's project as a ``History``."""
    return LocalHistory(ledger, tenant, project)


def ledger_output_policy(ledger_path: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> OutputPolicy:
    """The output rules of replays made for the ledger at ``ledger_path``: never into
    (or over) the ledger file, its directory or ``data_dir``; ``--force`` replaces only
    directories recorded in ``<ledger dir>/replays.jsonl`` (``replay.outdir``)."""
    path = Path(ledger_path)
    protected = tuple(Path(p) for p in (path, path.parent, data_dir) if p is not None)
    return OutputPolicy(protected=protected, registry=path.parent / "replays.jsonl")


def resolve_moment(ledger: Ledger, tenant: str, project: str, when: str,
                   now: dt.datetime | None = None) -> Moment:
    """Resolve WHEN against a project of the local ledger (``replay.moments``)."""
    return LocalHistory(ledger, tenant, project).resolve(when, now=now)


def replay_from(
    source: ReplaySource,
    moment: Moment,
    out_dir: str | os.PathLike,
    *,
    force: bool = False,
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
    policy: OutputPolicy | None = None,
) -> ReplayReport:
    """Materialize ``source``'s project as of ``moment`` into ``out_dir`` (see
    ``materialize``; ``policy``: ``replay.outdir.OutputPolicy``)."""
    start, rows = plan_of(source, moment)
    return materialize(rows, source.read_blob, out_dir, force=force, strict=strict,
                       verify=source.verify, progress=progress, policy=policy, start=start,
                       withheld=getattr(source, "withheld", None))


def diff_from(source: ReplaySource, a: Moment, b: Moment, *, patches: bool = True) -> TreeDiff:
    """What changed in ``source``'s project from moment ``a`` to moment ``b``."""
    from replay.diffing import diff_with_content

    tree_a, conflicts_a = tree_of(source, a)
    tree_b, conflicts_b = tree_of(source, b)
    return diff_with_content(
        tree_a, tree_b, source.read_blob if patches else None,
        a_label=a.describe(), b_label=b.describe(),
        conflicts=len(conflicts_a) + len(conflicts_b), withheld=getattr(source, "withheld", None),
    )


def changes_at(ledger: Ledger, tenant: str, project: str, moment: Moment) -> Iterator[ChangeRow]:
    """The project's file changes selected by ``moment``, in the order to apply them:
    event time (ties by seq) for a time, recording order (seq) for an event or commit."""
    return iter(LocalHistory(ledger, tenant, project).changes(moment))


def tree_at(ledger: Ledger, tenant: str, project: str, moment: Moment) -> tuple[Tree, list[Conflict]]:
    """``build_tree`` of the local ledger at ``moment``: ``({path: (sha256, mode)}, conflicts)``."""
    return tree_of(LocalHistory(ledger, tenant, project), moment)


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
    """Materialize ``project`` as of ``moment`` from the local ledger into ``out_dir``,
    with the ledger's output policy (``ledger_output_policy``).

    See ``replay.materialize.materialize`` for the guarantees and errors.
    """
    return replay_from(local_source(ledger, tenant, project), moment, out_dir,
                       force=force, strict=strict, progress=progress,
                       policy=ledger_output_policy(ledger.path))


def diff_moments(
    ledger: Ledger, tenant: str, project: str, a: Moment, b: Moment, *, patches: bool = True
) -> TreeDiff:
    """What changed between moments ``a`` and ``b`` in the local ledger (see ``replay.diffing``)."""
    return diff_from(local_source(ledger, tenant, project), a, b, patches=patches)
