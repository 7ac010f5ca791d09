"""Replay from snapshots: replay cost bounded by the size of the tree, not the length
of the history.

A replay snapshot (``ledger.snapshots``) is ``build_tree`` of a project's file changes
with ``seq <= S`` in recording order: the tree and the conflicts met. Rules:

* **Spacing.** Snapshot ``k+1`` is made once ``max(MIN_SPACING, entries of snapshot
  k)`` more file changes are recorded after snapshot ``k``. A replay therefore loads
  one snapshot (one tree) and applies at most that many changes, so its cost is
  O(size of the tree), whatever the moment; and all snapshots together hold about as
  many entries as there are changes (each spacing is at least the tree it follows).
* **Incremental.** Snapshot ``k+1`` is built from snapshot ``k`` plus the changes
  between them (``build_tree(..., start=...)``), never from the start of history.
* **Lazy, and rebuilt when lost.** ``refresh`` makes the missing snapshots up to a
  point (``ledger import git`` calls it at the end); a replay by commit or event calls
  it up to its moment, so snapshots that are missing, damaged (checksum) or dropped
  are rebuilt from events by the next replay. Saving is best effort: a read-only or
  busy ledger replays from events without saving.
* **Which moments.** A moment in recording order (commit, event) starts from the
  nearest snapshot with ``seq <=`` its last event. A moment in time starts from the
  nearest snapshot whose changes are in event-time order, all at or before the moment,
  with no event recorded later sorting before them (checked at replay time); when none
  qualifies (say, a history recorded out of time order) it replays from the first event.
* **Exact.** The result is by construction the one of ``build_tree`` over every change
  (``build_tree(b, start=build_tree(a)[0]) == build_tree(a + b)``), conflicts included.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable

from ledger.errors import StoreError
from ledger.records import ChangeRow
from ledger.snapshots import Snapshot, SnapshotInfo
from ledger.store import Ledger
from replay.materialize import Conflict, Tree, build_tree
from replay.moments import Moment

__all__ = ["MIN_SPACING", "Start", "refresh", "plan", "plan_of", "tree_of"]

#: Fewest file changes between two snapshots of a project (see the module docstring);
#: the environment variable ``LEDGER_SNAPSHOT_MIN_SPACING`` overrides it (tests, tuning).
MIN_SPACING = 1000


def _min_spacing(given: int | None) -> int:
    if given:
        return given
    env = os.environ.get("LEDGER_SNAPSHOT_MIN_SPACING")
    return int(env) if env and env.isdigit() and int(env) > 0 else MIN_SPACING
#: Seconds a replay waits for the write lock to save a snapshot (then it skips saving).
SAVE_WAIT_S = 0.2


@dataclass
class Start:
    """Where a replay starts: the tree after ``changes`` file changes (up to ``seq``;
    0 and an empty tree at the beginning of history) and the conflicts met so far."""

    tree: Tree = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    changes: int = 0
    seq: int = 0
    max_time_ns: int = 0
    time_ordered: bool = True


def _start(snapshot: Snapshot) -> Start:
    i = snapshot.info
    return Start(snapshot.tree, [Conflict(**c) for c in snapshot.conflicts], i.changes, i.seq,
                 i.max_time_ns, i.time_ordered)


def _nearest(ledger: Ledger, tenant: str, project: str, *, until_seq: int | None = None,
             until_ns: int | None = None) -> Start:
    """The nearest usable, intact snapshot (a damaged one is dropped, best effort)."""
    for info in ledger.usable_snapshots(tenant, project, until_seq=until_seq, until_ns=until_ns):
        snapshot = ledger.load_snapshot(info)
        if snapshot is not None:
            return _start(snapshot)
        try:
            ledger.drop_snapshots(tenant, project, seq=info.seq)
        except StoreError:
            pass
    return Start()


def _save(ledger: Ledger, tenant: str, project: str, state: Start, wait_s: float | None) -> bool:
    info = SnapshotInfo(tenant, project, state.seq, state.changes, len(state.tree),
                        state.max_time_ns, state.time_ordered)
    conflicts = [c.to_dict() for c in state.conflicts]
    if wait_s is None:
        ledger.save_snapshot(info, state.tree, conflicts)
        return True
    conn = ledger._conn()
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
        ledger.save_snapshot(info, state.tree, conflicts)
        return True
    except StoreError:  # busy or read-only: replay works without it
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(ledger.busy_timeout_s * 1000)}")


def _advance(ledger: Ledger, tenant: str, project: str, until_seq: int | None,
             *, min_spacing: int, save_wait_s: float | None) -> tuple[Start, list[ChangeRow], int]:
    """From the nearest snapshot, make (and save) every snapshot due up to ``until_seq``
    (None: the end). Returns ``(start, rest, saved)``: the last state reached, the
    changes after it up to ``until_seq`` (fewer than a spacing) and how many were saved."""
    state = _nearest(ledger, tenant, project, until_seq=until_seq)
    saved = 0
    saving = True
    while True:
        spacing = max(min_spacing, len(state.tree))
        rows = list(ledger.changes(tenant, project, after_seq=state.seq, until_seq=until_seq,
                                   order="seq", limit=spacing))
        if len(rows) < spacing:
            return state, rows, saved
        tree, more = build_tree(rows, start=state.tree)
        ordered = state.time_ordered
        latest = state.max_time_ns
        for r in rows:
            ordered = ordered and r.time_ns >= latest
            latest = max(latest, r.time_ns)
        state = Start(tree, state.conflicts + more, state.changes + len(rows), rows[-1].order,
                      latest, ordered)
        if saving:
            saving = _save(ledger, tenant, project, state, save_wait_s)
            saved += saving


def refresh(ledger: Ledger, tenant: str, project: str, *, until_seq: int | None = None,
            min_spacing: int | None = None) -> int:
    """Make the project's missing snapshots (up to ``until_seq``, default: all), each
    from the previous one plus the changes since. Returns how many were saved. Raises
    ``StoreError`` when one cannot be saved (read-only or busy ledger)."""
    return _advance(ledger, tenant, project, until_seq, min_spacing=_min_spacing(min_spacing),
                    save_wait_s=None)[2]


def plan(ledger: Ledger, tenant: str, project: str, moment: Moment, *,
         min_spacing: int | None = None) -> tuple[Start, Iterable[ChangeRow]]:
    """Where a replay of ``moment`` starts and the changes to apply after it, in order
    (see the module docstring). A moment in recording order also saves the snapshots
    that are due up to it (best effort)."""
    if moment.order == "time":
        state = _nearest(ledger, tenant, project, until_ns=moment.until_ns)
        rows = ledger.changes(tenant, project, until_ns=moment.until_ns, order="time",
                              after_seq=state.seq or None, since_ns=state.max_time_ns if state.seq else None)
        return state, rows
    state, rest, _ = _advance(ledger, tenant, project, moment.until,
                              min_spacing=_min_spacing(min_spacing), save_wait_s=SAVE_WAIT_S)
    return state, rest


def plan_of(source, moment: Moment) -> tuple[Start | None, Iterable[ChangeRow]]:
    """``(start, rows)`` of any ``replay.history.History``: one with replay snapshots
    (``LocalHistory.plan``) starts from the nearest one, others (the hub) from the first
    change (``start`` None)."""
    planner = getattr(source, "plan", None)
    if planner is not None:
        return planner(moment)
    return None, source.changes(moment)


def tree_of(source, moment: Moment) -> tuple[Tree, list[Conflict]]:
    """``build_tree(source.changes(moment))``, computed from the nearest snapshot when
    ``source`` has them: ``(tree, conflicts)``."""
    start, rows = plan_of(source, moment)
    if start is None:
        return build_tree(rows)
    tree, conflicts = build_tree(rows, start=start.tree)
    return tree, start.conflicts + conflicts
