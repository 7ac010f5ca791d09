"""Blame: for each line of a file at a moment, the change that last touched it, and why.

Like ``git blame``, over a history's file changes (``replay.history.History``):

1. **Lineage.** The changes a moment selects (``History.changes``: the order replay
   applies them) are walked back from the moment: every change that wrote the path,
   following renames to their source (``previous_path``), until the change that
   created it. Changes made by shell commands (``ledger exec``: snapshots of the work
   tree) are changes like any other, so blame goes through them and through their
   renames.
2. **Attribution.** Going back one version at a time, the older version is diffed
   against the newer one with git's own diff (``replay.xdiff``: Myers with git's
   heuristics); lines inside a hunk belong to the newer version's change, the others
   are passed on to the older version. What is left at the change that created the
   file belongs to it.
3. **Why.** Each line's change is linked to its event (agent, session, time, related
   commit) and to the decision that caused it (``caused_by``): the first line of its
   rationale.

On a history imported from git (``ledger import git``: first-parent), the commit of
each line equals ``git blame --first-parent``'s; plain ``git blame`` also follows the
side branches of merges, which a first-parent import does not have (lines written on a
merged branch belong to the merge commit here). Pure except for ``read_blob``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from ledger.records import ChangeRow
from replay.errors import ReplayError
from replay.history import History, LogEntry
from replay.moments import Moment
from replay.views import first_line
from replay.xdiff import diff_hunks, split_lines
from schemas import format_timestamp_ns

__all__ = ["BlameLine", "Blame", "PathNotInTree", "lineage", "attribute", "blame"]


class PathNotInTree(ReplayError, LookupError):
    """The path is not a file of the project at that moment."""


@dataclass(frozen=True)
class BlameLine:
    """One line of the file and the change behind it.

    ``line``: 1-based number; ``content``: the line's text (undecodable bytes replaced,
    no newline); ``path``: the file's path in the version that wrote the line (differs
    after a rename); ``time``: the event time, RFC 3339 UTC; ``commit``: the event's
    ``related_commit_hash`` ("" when none); ``rationale``: the first line of the decision
    behind the change ("" when it has none)."""

    line: int
    content: str
    event_id: str
    path: str
    agent_id: str = ""
    session_id: str = ""
    time: str = ""
    commit: str = ""
    decision_id: str = ""
    rationale: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Blame:
    """The blame of ``path`` at ``moment`` (its description); ``versions``: how many
    changes of the lineage were read."""

    path: str
    moment: str
    lines: list[BlameLine] = field(default_factory=list)
    versions: int = 0

    def to_dict(self) -> dict:
        return {"path": self.path, "moment": self.moment, "versions": self.versions,
                "lines": [line.to_dict() for line in self.lines]}


def lineage(changes: Sequence[ChangeRow], path: str) -> list[ChangeRow]:
    """The changes that wrote ``path`` as the last of ``changes`` leaves it, newest first,
    back through renames to the change that created it (see the module docstring).
    Raises ``PathNotInTree`` when the path is absent after the last change."""
    out: list[ChangeRow] = []
    current = path
    for row in reversed(changes):
        if row.path == current and row.operation != "delete":
            out.append(row)
            if row.operation == "create":
                break
            if row.operation == "rename" and row.previous_path:
                current = row.previous_path
        elif current in (row.path, row.previous_path if row.operation == "rename" else None):
            # deleted, or renamed away, after the state we are tracing back: the
            # lineage ends (the path did not exist just before the next version)
            break
    if not out:
        raise PathNotInTree(f"{path!r} is not a file of the project at that moment "
                            "(see `ledger replay` or `ledger log PATH`)")
    return out


def attribute(versions: Sequence[ChangeRow], read_blob: Callable[[str], bytes]) -> tuple[bytes, list[ChangeRow]]:
    """The newest version's content and, for each of its lines, the change (one of
    ``versions``, newest first as ``lineage`` returns them) that last changed it."""
    content = read_blob(versions[0].new_hash) if versions[0].new_hash else b""
    total = len(split_lines(content))
    owner: list[ChangeRow | None] = [None] * total
    # pending: (line in the final file, its line number in the version being looked at)
    pending = [(i, i) for i in range(total)]
    newer = content
    for k, row in enumerate(versions):
        older_row = versions[k + 1] if k + 1 < len(versions) else None
        if older_row is None or not pending:
            for final, _ in pending:
                owner[final] = row
            pending = []
            break
        if older_row.new_hash == row.new_hash:
            continue  # a mode change or a pure rename: every line passes back unchanged
        older = read_blob(older_row.new_hash) if older_row.new_hash else b""
        pending = _pass_back(pending, diff_hunks(older, newer), row, owner)
        newer = older
    return content, [o if o is not None else versions[-1] for o in owner]


def _pass_back(pending, hunks, row: ChangeRow, owner: list) -> list[tuple[int, int]]:
    """Lines inside ``hunks`` (new side) go to ``row``; the others move to the old side."""
    starts = [h[2] for h in hunks]
    out = []
    for final, line in pending:
        at = bisect.bisect_right(starts, line) - 1
        if at >= 0:
            start_a, count_a, start_b, count_b = hunks[at]
            if line < start_b + count_b:
                owner[final] = row
                continue
            out.append((final, line + (start_a + count_a) - (start_b + count_b)))
        else:
            out.append((final, line))
    return out


def blame(history: History, path: str, moment: Moment, *,
          changes: Iterable[ChangeRow] | None = None) -> Blame:
    """Blame ``path`` at ``moment`` in ``history`` (see the module docstring).

    ``changes``: the moment's changes when the caller has them already (the UI keeps
    them), else ``history.changes(moment)``. Raises ``PathNotInTree``, and
    ``ReplayError`` when a version's content was withheld (a secret file, recorded by
    hash only: ``ledger.secret_files``).
    """
    rows = list(history.changes(moment) if changes is None else changes)
    versions = lineage(rows, path)
    try:
        content, owners = attribute(versions, history.read_blob)
    except LookupError as exc:
        withheld = getattr(history, "withheld", None)
        reason = next((r for r in (withheld(v.new_hash) for v in versions if v.new_hash and withheld)
                       if r), None)
        if not reason:
            raise
        from replay.errors import ReplayError

        raise ReplayError(f"cannot blame {path!r}: its content was withheld when recorded ({reason}: "
                          "a secret file is recorded by hash only, see docs/trust.md); `ledger log "
                          f"{path}` lists its changes") from exc
    entries: dict[str, LogEntry] = {}
    decisions: dict[str, str] = {}
    lines = []
    texts = split_lines(content)
    for number, (text, row) in enumerate(zip(texts, owners), start=1):
        entry = entries.get(row.event_id)
        if entry is None:
            entry = entries[row.event_id] = history.get(row.event_id)
        ev = entry.event  # None when its stored body cannot be read: the line keeps its change
        cause = (ev.caused_by if ev is not None else "") or ""
        if cause and cause not in decisions:
            decisions[cause] = first_line(history.rationale_of(cause) or "")
        lines.append(BlameLine(
            line=number, content=text.rstrip(b"\n").decode("utf-8", "replace"),
            event_id=row.event_id, path=row.path, agent_id=ev.agent_id if ev else "",
            session_id=ev.session_id if ev else "", time=format_timestamp_ns(entry.time_ns),
            commit=(ev.related_commit_hash if ev else row.commit_hash) or "",
            decision_id=cause, rationale=decisions.get(cause, "")))
    return Blame(path, moment.describe(), lines, versions=len(versions))

