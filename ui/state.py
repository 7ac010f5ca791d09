"""What the UI server keeps between requests: the history, its event index, and the
project's file changes in both replay orders (so a scrubber position costs one
``build_tree`` over a prefix, never a query), with a small cache of trees.

Every answer about files goes through ``replay``: trees are ``build_tree`` of exactly
the changes ``History.changes(moment)`` selects (the same rows in the same order:
a time moment takes the time-ordered changes up to it, an event or commit moment the
recording-ordered ones up to its position), diffs are ``replay.diffing``, blame is
``replay.blame``.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict

from ledger.records import ChangeRow
from replay.diffing import diff_trees, diff_with_content
from replay.history import History
from replay.materialize import Tree, build_tree
from replay.moments import Moment
from schemas import format_timestamp_ns
from ui.index import EventIndex

_TREE_CACHE = 16
#: Changes between two checkpoint trees (more when the history is long: at most
#: ``_MAX_CHECKPOINTS`` trees are kept per order).
_CHECKPOINT_STEP = 4000
_MAX_CHECKPOINTS = 48


class UIState:
    """The server's state for one project of one history (see the module docstring)."""

    def __init__(self, history: History, *, analytics_url: str | None = None):
        self.history = history
        self.analytics_url = analytics_url
        self.index = EventIndex(history)
        self._lock = threading.Lock()
        self._changes_version = -1
        self._by_time: list[ChangeRow] = []
        self._times: list[int] = []
        self._by_order: list[ChangeRow] = []
        self._orders: list = []
        self._trees: OrderedDict = OrderedDict()
        # per order ("time", "seq"): trees after every `step` changes, with conflict counts
        self._checkpoints: dict[str, list[tuple[Tree, int]]] = {"time": [], "seq": []}

    @property
    def source(self) -> str:
        return self.history.name

    # ---------------------------------------------------------------- changes and trees
    def _load_changes(self) -> None:
        """(Re)read the project's file changes when the index saw new events."""
        version = self.index.version
        if version == self._changes_version:
            return
        rows = list(self.history.changes(self.history.resolve("now")))
        by_order = sorted(rows, key=lambda r: r.order)
        self._by_time, self._times = rows, [r.time_ns for r in rows]
        self._by_order, self._orders = by_order, [r.order for r in by_order]
        self._trees.clear()
        self._checkpoints = {"time": [], "seq": []}
        self._step = max(_CHECKPOINT_STEP, len(rows) // _MAX_CHECKPOINTS + 1)
        self._changes_version = version

    def _prefix(self, moment: Moment) -> tuple[str, list[ChangeRow], int]:
        """(order, the rows in that order, how many of them the moment selects)."""
        if moment.kind == "time":
            end = len(self._by_time) if moment.until_ns is None else bisect.bisect_right(self._times, moment.until_ns)
            return "time", self._by_time, end
        return "seq", self._by_order, bisect.bisect_right(self._orders, moment.until)

    def changes(self, moment: Moment) -> list[ChangeRow]:
        """``History.changes(moment)``, answered from memory."""
        with self._lock:
            self._load_changes()
            _, rows, end = self._prefix(moment)
            return rows[:end]

    def tree(self, moment: Moment) -> tuple[Tree, int]:
        """The project's tree at ``moment`` and the number of replay conflicts met:
        ``build_tree`` of ``changes(moment)``, resumed from the nearest checkpoint tree
        (the same result, see ``build_tree``'s ``start``)."""
        with self._lock:
            self._load_changes()
            order, rows, end = self._prefix(moment)
            key = (order, end)
            cached = self._trees.get(key)
            if cached is not None:
                self._trees.move_to_end(key)
                return cached
            checkpoints = self._checkpoints[order]
            while len(checkpoints) < end // self._step:  # fill the checkpoints up to `end`
                n = len(checkpoints)
                start, conflicts = checkpoints[-1] if checkpoints else ({}, 0)
                tree, more = build_tree(rows[n * self._step:(n + 1) * self._step], start=start)
                checkpoints.append((tree, conflicts + len(more)))
            n = end // self._step
            start, conflicts = checkpoints[n - 1] if n else ({}, 0)
            tree, more = build_tree(rows[n * self._step:end], start=start)
            result = (tree, conflicts + len(more))
            self._trees[key] = result
            while len(self._trees) > _TREE_CACHE:
                self._trees.popitem(last=False)
            return result

    def warm(self) -> None:
        """Build the checkpoint trees ahead of the first scrubber drag (a project whose
        history cannot be replayed, e.g. an unsafe path, is reported when asked for)."""
        from replay.errors import ReplayError

        try:
            self.tree(self.history.resolve("now"))
        except ReplayError:
            pass

    def resolve(self, when: str | None) -> Moment:
        return self.history.resolve(when or "now")

    def diff(self, a: Moment, b: Moment, path: str | None = None) -> dict:
        """``replay.diffing`` between two moments: every differing path (no content
        read), or with ``path`` that path's unified diff."""
        tree_a, conflicts_a = self.tree(a)
        tree_b, conflicts_b = self.tree(b)
        if path is None:
            paths = diff_trees(tree_a, tree_b)
            return {"a": a.describe(), "b": b.describe(), "conflicts": conflicts_a + conflicts_b,
                    "paths": [p.to_dict() for p in paths]}
        sub_a = {path: tree_a[path]} if path in tree_a else {}
        sub_b = {path: tree_b[path]} if path in tree_b else {}
        result = diff_with_content(sub_a, sub_b, self.history.read_blob, a_label=a.describe(), b_label=b.describe(),
                                   withheld=self.history.withheld)
        return result.to_dict()


def moment_dict(moment: Moment) -> dict:
    """A moment for the browser: its description, exact time and the WHEN text that
    names it again (for ``ledger restore --at``)."""
    when = {"event": moment.event_id, "commit": moment.commit}.get(moment.kind) or format_timestamp_ns(moment.time_ns)
    return {"kind": moment.kind, "describe": moment.describe(), "when": when,
            "time": format_timestamp_ns(moment.time_ns), "time_ms": moment.time_ns / 1e6}
