"""Replay and log from the hub: every laptop's events of a project, merged.

The hub is bitemporal: each event has its *event time* (``timestamp``, the agent's
clock) and its *hub time* (its versionstamp position: when the hub learned it, in the
hub's global commit order). ``HubHistory(hub, project, as_of=V)`` sees the project as the
hub knew it at versionstamp ``V`` (10 bytes: that whole commit; 12 bytes: up to that
event; None: now), and answers replay's questions:

- a **time** moment selects every file change with ``timestamp <= time``, applied in
  event-time order, ties broken by hub position (SPEC, "Global order");
- an **event** or **commit** moment selects every change the hub received up to and
  including that event (for a commit: its last event), applied in hub order -- the hub's
  recording order, which keeps each laptop's own recording order (git-archive semantics
  for imported commits, as for the local ledger).

``HubHistory`` is a ``replay.history.History``: ``ledger replay``/``diff``/``log`` read
from the hub with the same moments (``replay.moments``), filters, JSON shape
(``replay.views``) and materializer as from the local ledger.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Iterator

from hub.errors import HubError
from hub.protocol import HubClient, HubRecord
from ledger.changes import is_file_change
from ledger.errors import EventNotFound, MomentNotFound
from ledger.records import ChangeRow
from replay.history import LogEntry, LogQuery
from replay.moments import MIN_PREFIX, CommitRef, EventRef, Moment, resolve
from schemas import SwarmEvent


def parse_version(text: str | bytes | None) -> bytes | None:
    """A hub version given as hex text (20 digits = a commit versionstamp, 24 = an event
    position) or bytes, as bytes; None stays None. Raises ``HubError`` otherwise."""
    if text is None or isinstance(text, bytes):
        if text is not None and len(text) not in (10, 12):
            raise HubError(f"a hub version has 10 or 12 bytes, not {len(text)}")
        return text
    value = text.strip().lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{20}|[0-9a-f]{24}", value):
        raise HubError(
            f"--as-of-version {text!r} is not a hub versionstamp: give 20 hex digits (a commit "
            "versionstamp) or 24 (an event position), as shown by `ledger log --source hub`"
        )
    return bytes.fromhex(value)


@dataclass(frozen=True)
class HubEntry:
    """One event of the project as the hub holds it (what replay and log need)."""

    position: bytes
    event_id: str
    time_ns: int
    commit: str
    change: ChangeRow | None
    record: HubRecord


def change_row(event: SwarmEvent, position: bytes) -> ChangeRow | None:
    """The ``ChangeRow`` of a file state change (``order`` = 12-byte hub position), else None.
    Field values match ``Ledger.changes`` for the same event."""
    if not is_file_change(event):
        return None
    sc = event.state_change
    return ChangeRow(
        event_id=event.event_id, time_ns=event.timestamp, order=position,
        operation=sc.operation.value, path=sc.target_resource,
        previous_path=sc.previous_resource or "", previous_hash=sc.previous_state_hash or "",
        new_hash=sc.new_state_hash or "", mode=sc.file_mode.value,
        previous_mode=sc.previous_file_mode.value, commit_hash=event.related_commit_hash or "",
    )


class HubHistory:
    """A project's history on the hub as of hub version ``as_of`` (see module doc),
    read once (a bounded scan of the versionstamped log) and kept in memory. A
    ``replay.history.History``; ``read_blob`` reads hub blobs and checks their SHA-256."""

    name = "hub"
    verify = False  # the hub's read_blob checks the SHA-256 of what it returns

    def __init__(self, hub: HubClient, project_id: str, *, as_of: bytes | str | None = None,
                 cwd: str | None = None) -> None:
        self.hub = hub
        self.tenant = hub.tenant_id
        self.project = self.project_id = project_id
        self.as_of = parse_version(as_of)
        self.cwd = cwd
        self._entries: list[HubEntry] | None = None

    @property
    def entries(self) -> list[HubEntry]:
        """Every event of the project up to ``as_of``, in hub order."""
        if self._entries is None:
            out = []
            for rec in self.hub.iter_log(self.project_id, until=self.as_of):
                ev = rec.event
                out.append(HubEntry(rec.position, ev.event_id, ev.timestamp, ev.related_commit_hash or "",
                                    change_row(ev, rec.position), rec))
            self._entries = out
        return self._entries

    def _withheld_values(self, digest: str) -> list[str]:
        out = []
        for e in self.entries:
            sc = e.record.event.state_change if e.change is not None else None
            if sc is not None and sc.content_withheld and sc.new_state_hash == digest:
                out.append(sc.content_withheld)
        return out

    def read_blob(self, digest: str) -> bytes:
        """Content by SHA-256 hex from the project's hub blobs (checked); sealed content
        (``ledger.sealed_content``) is opened with its key while it lives."""
        from hub.errors import HubBlobMissing

        try:
            return self.hub.read_blob(self.project_id, digest)
        except HubBlobMissing:
            from ledger.sealed_content import opened

            data = opened(self._withheld_values(digest), digest,
                          lambda address: self.hub.read_blob(self.project_id, address))
            if data is None:
                raise
            return data

    def withheld(self, digest: str) -> str | None:
        """Why content ``digest`` is on no store (a change's ``content_withheld``, e.g.
        "secret-file"; "erased" or "sealed" for sealed content whose key is destroyed or
        not reachable), or None."""
        from ledger.sealed_content import reason

        values = self._withheld_values(digest)
        return reason(values[0]) if values else None

    def rationale_of(self, event_id: str) -> str | None:
        """The rationale of decision ``event_id`` in this project on the hub, or None."""
        for e in self.entries:
            if e.event_id == event_id:
                ev = e.record.event
                return ev.decision.rationale if ev.decision is not None else None
        return None

    # -- replay.moments.Resolvable -----------------------------------------------------------
    def find_events(self, prefix: str, limit: int) -> list[EventRef]:
        prefix = prefix.lower()
        found = [e for e in self.entries if e.event_id == prefix]
        if not found and len(prefix) >= MIN_PREFIX:
            found = [e for e in self.entries if e.event_id.startswith(prefix)]
        return [EventRef(e.event_id, e.time_ns, e.position) for e in found[:limit]]

    def find_commits(self, prefix: str, limit: int) -> list[CommitRef]:
        by_commit: dict[str, list[HubEntry]] = {}
        for e in self.entries:
            if e.commit and e.commit.startswith(prefix):
                by_commit.setdefault(e.commit, []).append(e)
        return [CommitRef(c, max(e.time_ns for e in es), min(e.position for e in es),
                          max(e.position for e in es))
                for c, es in sorted(by_commit.items())[:limit]]

    def first_time_ns(self) -> int | None:
        return min((e.time_ns for e in self.entries), default=None)

    def other_project(self, event_id: str) -> str | None:
        return None  # the hub is read one project directory at a time

    # -- History -----------------------------------------------------------------------------
    def resolve(self, when: str, *, now: dt.datetime | None = None, require_events: bool = False) -> Moment:
        """``replay.moments.resolve`` against the project on the hub. Raises
        ``MomentNotFound`` (naming the hub version when ``as_of`` is set)."""
        try:
            return resolve(self, when, now=now, cwd=self.cwd, require_events=require_events)
        except MomentNotFound as exc:
            if self.as_of is None:
                raise
            raise MomentNotFound(f"{exc} (on the hub as of version {self.as_of.hex()})") from exc

    def changes(self, moment: Moment) -> list[ChangeRow]:
        """The file changes ``moment`` selects, in apply order (see module doc)."""
        if moment.kind == "time":
            rows = [e.change for e in self.entries
                    if e.change is not None and (moment.until_ns is None or e.time_ns <= moment.until_ns)]
            rows.sort(key=lambda r: (r.time_ns, r.order))
            return rows
        return [e.change for e in self.entries if e.change is not None and e.position <= moment.until]

    def select(self, query: LogQuery) -> list[LogEntry]:
        """Entries matching ``query`` (same filters and meaning as ``LocalHistory.select``),
        ordered by event time, ties by hub position. Raises ``MomentNotFound``."""
        lower = self._bound(query.since, upper=False) if query.since else None
        upper = self._bound(query.until, upper=True) if query.until else None
        commit = query.commit.lower() if query.commit else None
        entries = []
        for e in self.entries:
            ev = e.record.event
            if ((query.path is None or _on_path(e, query.path))
                    and (query.agent_id is None or ev.agent_id == query.agent_id)
                    and (query.kind is None or ev.kind == query.kind)
                    and (commit is None or e.commit.startswith(commit))
                    and (query.session_id is None or ev.session_id == query.session_id)
                    and (query.trace_id is None or ev.trace_id == query.trace_id)
                    and (query.caused_by is None or ev.caused_by == query.caused_by)
                    and _within(e, lower, upper)):
                entries.append(e)
        entries.sort(key=lambda e: (e.time_ns, e.position), reverse=query.descending)
        if query.limit:
            entries = entries[:query.limit]
        return [hub_entry(e) for e in entries]

    def get(self, event_id: str) -> LogEntry:
        """The project's event with that id on the hub. Raises ``EventNotFound``."""
        for e in self.entries:
            if e.event_id == event_id:
                return hub_entry(e)
        raise EventNotFound(f"no event {event_id!r} in project {self.project_id!r} on the hub")

    def _bound(self, when: str, *, upper: bool) -> tuple[str, int | bytes]:
        """A ``since``/``until`` bound: ("time", ns) or ("position", hub position)."""
        moment = self.resolve(when)
        if moment.kind == "time":
            return ("time", moment.time_ns)
        return ("position", moment.until if upper else moment.since)


def _on_path(e: HubEntry, path: str) -> bool:
    """True when the entry changes ``path`` (or its rename source), or anything below
    it when ``path`` ends with '/'."""
    if e.change is None:
        return False
    names = (e.change.path, e.change.previous_path)
    if path.endswith("/"):
        return any(n.startswith(path) for n in names if n)
    return path in names


def _within(e: HubEntry, lower, upper) -> bool:
    for bound, is_upper in ((lower, False), (upper, True)):
        if bound is None:
            continue
        value = e.time_ns if bound[0] == "time" else e.position
        if (value > bound[1]) if is_upper else (value < bound[1]):
            return False
    return True


def hub_entry(entry: HubEntry) -> LogEntry:
    """The ``LogEntry`` of an event read from the hub."""
    return LogEntry("hub", entry.record.event, entry.time_ns, entry.position, hub_position=entry.position)


def hub_source(hub: HubClient, project_id: str, *, as_of: bytes | str | None = None) -> HubHistory:
    """The project on the hub as of ``as_of``, as a ``replay.history.History``."""
    return HubHistory(hub, project_id, as_of=as_of)


def resolve_hub_project(hub: HubClient, project_id: str | None) -> str:
    """The project to read from the hub: ``project_id`` if the hub has it, else the
    tenant's only project. Raises ``ProjectNotFound``/``AmbiguousProject`` listing choices."""
    from ledger.projects import pick_project

    return pick_project(hub.projects(), project_id, tenant_id=hub.tenant_id, where="the hub",
                        empty_hint="run `ledger sync` first")


def log_rows(history: HubHistory, *, limit: int | None = 50) -> Iterator[dict]:
    """JSON-ready rows (``replay.views.entry_dict``) of the project's newest ``limit`` events."""
    from replay.views import entry_dict

    for entry in history.select(LogQuery(limit=limit)):
        yield entry_dict(entry)


def open_hub_history(hub: HubClient, project_id: str | None = None, *, as_of: str | bytes | None = None) -> HubHistory:
    """The ``HubHistory`` of ``project_id`` on ``hub`` (the tenant's only project on the
    hub when None; ``resolve_hub_project``), as of hub version ``as_of``."""
    return HubHistory(hub, resolve_hub_project(hub, project_id), as_of=as_of)
