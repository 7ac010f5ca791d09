"""Histories: one filterable, replayable source of a project's events per origin.

A ``History`` (the protocol below) is what ``replay``, ``restore``, ``diff``, ``log``,
``blame`` and the UI read from. Two origins implement it: ``LocalHistory`` (this
laptop's SQLite ledger) and ``replay.hub.HubHistory`` (every laptop's events on the team
hub). Both resolve WHEN with the same rules (``replay.moments``), select file changes
for a moment in the same order, and answer ``select`` with the same ``LogEntry`` shape,
so ``ledger log --json`` prints one JSON shape whatever the origin
(``replay.views.entry_dict``).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Protocol

from ledger.errors import CorruptEvent
from ledger.records import ChangeRow, StoredEvent
from ledger.store import Ledger
from replay.moments import CommitRef, EventRef, Moment, resolve

if TYPE_CHECKING:
    from schemas import SwarmEvent

__all__ = ["History", "LogQuery", "LogEntry", "LocalHistory"]


@dataclass(frozen=True)
class LogQuery:
    """Filters of ``History.select`` (all optional, combined with AND).

    ``path``: a change's path or rename source (everything below it when it ends with
    '/'); ``agent_id``, ``kind``, ``session_id``, ``trace_id``: exact; ``commit``: a
    commit-hash prefix; ``since``/``until``: WHEN texts (a time bounds event time; an
    event or commit bounds recording order); ``limit``: at most this many (None: all);
    ``descending``: newest first.
    """

    path: str | None = None
    agent_id: str | None = None
    kind: str | None = None
    commit: str | None = None
    session_id: str | None = None
    trace_id: str | None = None
    caused_by: str | None = None
    since: str | None = None
    until: str | None = None
    limit: int | None = None
    descending: bool = True


@dataclass(frozen=True)
class LogEntry:
    """One event as a history holds it. ``order``: its position in recording order
    (local ``seq`` or 12-byte hub position). Local entries carry ``seq``,
    ``recorded_ns`` (when this laptop stored it) and the outbox state
    (``hub_position`` once synced, ``sync_error`` if the hub refused it); hub entries
    carry ``hub_position``."""

    origin: str
    event: SwarmEvent | None
    time_ns: int
    order: int | bytes
    seq: int | None = None
    recorded_ns: int | None = None
    hub_position: bytes | None = None
    sync_error: str | None = None
    #: Why the stored event could not be read (``event`` is then None): listings show
    #: such rows by id instead of failing.
    error: str | None = None
    stored_id: str = ""
    #: Where a local event was imported from (another ledger, a bundle), else None.
    shared_from: str | None = None

    @property
    def event_id(self) -> str:
        return self.event.event_id if self.event is not None else self.stored_id


class History(Protocol):
    """A project's history at one origin (see the module docstring).

    ``name``: "local" or "hub"; ``verify``: whether the materializer must check content
    hashes (False when ``read_blob`` already does). Errors: ``MomentNotFound`` from
    ``resolve``; ``read_blob`` raises ``ledger.BlobNotFound`` (or the hub's equivalent).
    """

    name: str
    tenant: str
    project: str
    verify: bool

    def resolve(self, when: str, *, now: dt.datetime | None = None,
                require_events: bool = False) -> Moment: ...

    def changes(self, moment: Moment) -> Iterable[ChangeRow]: ...

    def read_blob(self, digest: str) -> bytes: ...

    def withheld(self, digest: str) -> str | None: ...

    def select(self, query: LogQuery) -> list[LogEntry]: ...

    def get(self, event_id: str) -> LogEntry: ...

    def rationale_of(self, event_id: str) -> str | None: ...


def local_entry(stored: StoredEvent) -> LogEntry:
    """The ``LogEntry`` of an event of the local ledger (with ``error`` set, and no
    event, when its stored body cannot be read: ``ledger.errors.CorruptEvent``)."""
    try:
        event, error = stored.event, None
    except CorruptEvent as exc:
        event, error = None, str(exc)
    return LogEntry("local", event, stored.time_ns, stored.seq, seq=stored.seq,
                    recorded_ns=stored.recorded_ns, hub_position=stored.hub_versionstamp,
                    sync_error=stored.sync_error, error=error, stored_id=stored.event_id,
                    shared_from=stored.shared_from)


class LocalHistory:
    """A project of the local ledger as a ``History``."""

    name = "local"
    verify = False  # Ledger.get_blob checks the SHA-256 of what it returns

    def __init__(self, ledger: Ledger, tenant: str, project: str, *, cwd: str | os.PathLike | None = None):
        self.ledger = ledger
        self.tenant = tenant
        self.project = project
        self.cwd = cwd

    # -- replay.moments.Resolvable
    def find_events(self, prefix: str, limit: int) -> list[EventRef]:
        return [EventRef(s.event_id, s.time_ns, s.seq) for s in self.ledger.find_events(
            prefix, tenant_id=self.tenant, project_id=self.project, limit=limit)]

    def find_commits(self, prefix: str, limit: int) -> list[CommitRef]:
        found = self.ledger.commits(self.tenant, self.project, prefix)[:limit]
        out = []
        for commit, last_seq, last_ns in found:
            first = next(self.ledger.events(tenant_id=self.tenant, project_id=self.project,
                                            commit=commit, order="seq", limit=1))
            out.append(CommitRef(commit, last_ns, first.seq, last_seq))
        return out

    def first_time_ns(self) -> int | None:
        return self.ledger.first_time_ns(self.tenant, self.project)

    def other_project(self, event_id: str) -> str | None:
        found = self.ledger.find_events(event_id, tenant_id=self.tenant, limit=1)
        return found[0].project_id if found and found[0].event_id == event_id else None

    # -- History
    def resolve(self, when: str, *, now: dt.datetime | None = None, require_events: bool = False) -> Moment:
        """``replay.moments.resolve`` against this project."""
        return resolve(self, when, now=now, cwd=self.cwd, require_events=require_events)

    def changes(self, moment: Moment) -> Iterable[ChangeRow]:
        """The file changes ``moment`` selects, in the order to apply them: event time
        (ties by seq) for a time, recording order (seq) for an event or commit."""
        if moment.kind == "time":
            return self.ledger.changes(self.tenant, self.project, until_ns=moment.until_ns, order="time")
        return self.ledger.changes(self.tenant, self.project, until_seq=moment.until, order="seq")

    def plan(self, moment: Moment):
        """Where a replay of ``moment`` starts (the nearest replay snapshot) and the
        changes to apply after it: ``(replay.snapshots.Start, rows)`` (see
        ``replay.snapshots``; the same tree as ``build_tree(self.changes(moment))``)."""
        from replay.snapshots import plan

        return plan(self.ledger, self.tenant, self.project, moment)

    def read_blob(self, digest: str) -> bytes:
        return self.ledger.get_blob(digest, tenant_id=self.tenant)

    def withheld(self, digest: str) -> str | None:
        """Why content ``digest`` of this project is not stored (a change's
        ``content_withheld``, e.g. "secret-file"), or None."""
        return self.ledger.content_withheld(self.tenant, self.project, digest)

    def get(self, event_id: str) -> LogEntry:
        """The project's event with that id. Raises ``EventNotFound`` (also for an
        event of another tenant or project)."""
        from ledger.errors import EventNotFound

        stored = self.ledger.get(event_id, tenant_id=self.tenant)
        if stored.project_id != self.project:
            raise EventNotFound(f"event {event_id} belongs to project {stored.project_id!r}, "
                                f"not {self.project!r}")
        return local_entry(stored)

    def rationale_of(self, event_id: str) -> str | None:
        """The rationale of decision ``event_id`` of this tenant, or None."""
        found = self.ledger.find_events(event_id, tenant_id=self.tenant, limit=1)
        if not found or found[0].event_id != event_id or found[0].kind != "decision":
            return None
        try:
            return found[0].event.decision.rationale
        except CorruptEvent:
            return None

    def select(self, query: LogQuery) -> list[LogEntry]:
        """Events matching ``query``, by event time (ties by seq)."""
        filters: dict = {}
        for name, value in (("since", query.since), ("until", query.until)):
            if value is None:
                continue
            moment = self.resolve(value)
            if moment.kind == "time":
                filters["since_ns" if name == "since" else "until_ns"] = moment.until_ns
            elif name == "since":
                filters["after_seq"] = moment.since - 1
            else:
                filters["until_seq"] = moment.until
        rows = self.ledger.events(
            tenant_id=self.tenant, project_id=self.project, path=query.path, agent_id=query.agent_id,
            kind=query.kind, commit=query.commit.lower() if query.commit else None,
            session_id=query.session_id, trace_id=query.trace_id, caused_by=query.caused_by,
            limit=query.limit or None, descending=query.descending, **filters)
        return [local_entry(r) for r in rows]
