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

``hub_source(...)`` wraps it as a ``replay.ReplaySource`` so ``ledger replay``/``diff``
read from the hub with the same materializer as the local ledger.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Iterator

from ledger.errors import MomentNotFound
from replay.moments import Moment
from ledger.records import ChangeRow
from schemas import SwarmEvent, format_timestamp_ns
from hub.errors import HubError
from hub.protocol import HubClient, HubRecord

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_HEX = re.compile(r"^[0-9a-f]{4,40}$")
_ID_PREFIX = re.compile(r"^[0-9a-f]{8}[0-9a-f-]{0,28}$")


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
    sc = event.state_change
    if sc is None or sc.target_type.value != "file":
        return None
    return ChangeRow(
        event_id=event.event_id, time_ns=event.timestamp, order=position,
        operation=sc.operation.value, path=sc.target_resource,
        previous_path=sc.previous_resource or "", prev_hash=sc.previous_state_hash or "",
        new_hash=sc.new_state_hash or "", mode=sc.file_mode.value,
        prev_mode=sc.previous_file_mode.value, commit_hash=event.related_commit_hash or "",
    )


class HubHistory:
    """A project's history on the hub as of hub version ``as_of`` (see module doc),
    read once (a bounded scan of the versionstamped log) and kept in memory."""

    def __init__(self, hub: HubClient, project_id: str, *, as_of: bytes | str | None = None) -> None:
        self.hub = hub
        self.project_id = project_id
        self.as_of = parse_version(as_of)
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

    # -- cuts --------------------------------------------------------------------------
    def changes_until_time(self, until_ns: int | None) -> list[ChangeRow]:
        """File changes with ``time_ns <= until_ns`` (None: all), in event-time order, ties by hub position."""
        rows = [e.change for e in self.entries
                if e.change is not None and (until_ns is None or e.time_ns <= until_ns)]
        rows.sort(key=lambda r: (r.time_ns, r.order))
        return rows

    def changes_until_position(self, position: bytes) -> list[ChangeRow]:
        """File changes at hub positions <= ``position`` (12 bytes), in hub order."""
        return [e.change for e in self.entries if e.change is not None and e.position <= position]

    def event_entry(self, key: str) -> HubEntry:
        """The entry of a full event id or a unique prefix (8+ characters)."""
        key = key.lower()
        found = [e for e in self.entries if e.event_id == key] or \
            ([e for e in self.entries if e.event_id.startswith(key)] if len(key) >= 8 else [])
        if not found:
            raise MomentNotFound(
                f"no event {key} on the hub for project {self.project_id!r}"
                + (" at that hub version" if self.as_of else "")
                + " (has the laptop that recorded it synced? `ledger sync status` there)"
            )
        if len({e.event_id for e in found}) > 1:
            raise MomentNotFound(f"event id prefix {key!r} is ambiguous on the hub: give more characters")
        return found[0]

    def commit_entries(self, prefix: str) -> tuple[str, list[HubEntry]] | None:
        """``(commit, entries)`` of the one recorded commit starting with ``prefix``, else None."""
        commits = {e.commit for e in self.entries if e.commit and e.commit.startswith(prefix)}
        if not commits:
            return None
        if len(commits) > 1:
            names = ", ".join(sorted(c[:12] for c in commits)[:8])
            raise MomentNotFound(f"{prefix!r} matches {len(commits)} recorded commits ({names}); give more hex digits")
        commit = commits.pop()
        return commit, [e for e in self.entries if e.commit == commit]

    # -- moments (the forms of `ledger replay --at`) -------------------------------------
    def resolve(self, when: str, now: dt.datetime | None = None) -> Moment:
        """Resolve WHEN like ``replay.moments.resolve_moment`` does for the local ledger:
        full event id, commit hash prefix, event id prefix, then an ISO-8601 or relative
        time. Event and commit moments carry the event id / commit; ``changes`` maps
        them to hub positions. Raises ``MomentNotFound``."""
        text = when.strip()
        if not text:
            raise MomentNotFound("--at is empty: give a time, an event id or a commit hash")
        low = text.lower()
        if _UUID.match(low):
            e = self.event_entry(low)
            return Moment("event", text, e.time_ns, event_id=e.event_id)
        if _HEX.match(low):
            found = self.commit_entries(low)
            if found is not None:
                commit, entries = found
                return Moment("commit", text, max(e.time_ns for e in entries), commit=commit)
        if _ID_PREFIX.match(low):
            try:
                e = self.event_entry(low)
                return Moment("event", text, e.time_ns, event_id=e.event_id)
            except MomentNotFound as exc:
                if "ambiguous" in str(exc):
                    raise
        ns = parse_time_ns(text, now)
        if ns is None:
            raise MomentNotFound(
                f"cannot understand {text!r} as a moment on the hub: give an ISO-8601 time, a "
                "relative time ('2 hours ago'), an event id or a recorded commit hash"
            )
        return Moment("time", text, ns, until_ns=ns)

    def changes(self, moment: Moment) -> list[ChangeRow]:
        """The file changes ``moment`` selects, in apply order (see module doc)."""
        if moment.kind == "time":
            return self.changes_until_time(moment.until_ns)
        if moment.kind == "event":
            return self.changes_until_position(self.event_entry(moment.event_id).position)
        if moment.kind == "commit":
            found = self.commit_entries(moment.commit)
            if found is None:
                raise MomentNotFound(f"commit {moment.commit} is not on the hub")
            return self.changes_until_position(max(e.position for e in found[1]))
        raise MomentNotFound(f"unknown moment kind {moment.kind!r}")

    def select(
        self,
        *,
        path: str | None = None,
        agent_id: str | None = None,
        kind: str | None = None,
        commit: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
        descending: bool = True,
    ) -> list[HubEntry]:
        """Entries for ``ledger log --source hub`` with the same filters as ``Ledger.events``:
        ``path`` (a change's path or rename source; everything below it when it ends with
        '/'), agent, kind, commit-hash prefix, and ``since``/``until`` WHEN values (a time
        bounds event time; an event or commit bounds hub position). Ordered by event time,
        ties by hub position; newest first unless ``descending`` is False.
        Raises ``MomentNotFound`` for a WHEN the hub cannot resolve."""
        def on_path(e: HubEntry) -> bool:
            if e.change is None:
                return False
            names = (e.change.path, e.change.previous_path)
            if path.endswith("/"):
                return any(n.startswith(path) for n in names if n)
            return path in names

        def bound(when: str, upper: bool):
            moment = self.resolve(when)
            if moment.kind == "time":
                return ("time", moment.time_ns)
            if moment.kind == "commit":
                _, entries = self.commit_entries(moment.commit)
                positions = [e.position for e in entries]
                return ("position", max(positions) if upper else min(positions))
            return ("position", self.event_entry(moment.event_id).position)

        lower_bound = bound(since, upper=False) if since else None
        upper_bound = bound(until, upper=True) if until else None

        def within(e: HubEntry) -> bool:
            for b, upper in ((lower_bound, False), (upper_bound, True)):
                if b is None:
                    continue
                value = e.time_ns if b[0] == "time" else e.position
                if (value > b[1]) if upper else (value < b[1]):
                    return False
            return True

        entries = [
            e for e in self.entries
            if (path is None or on_path(e))
            and (agent_id is None or e.record.event.agent_id == agent_id)
            and (kind is None or e.record.event.kind == kind)
            and (commit is None or e.commit.startswith(commit))
            and within(e)
        ]
        entries.sort(key=lambda e: (e.time_ns, e.position), reverse=descending)
        return entries[:limit] if limit else entries

    def log(self, *, limit: int | None = None, descending: bool = True, order: str = "time") -> list[HubEntry]:
        """Entries for ``ledger log --source hub``: by event time (ties by hub position)
        or by hub order (``order="hub"``), newest first unless ``descending`` is False."""
        entries = list(self.entries)
        if order == "time":
            entries.sort(key=lambda e: (e.time_ns, e.position))
        if descending:
            entries.reverse()
        return entries[:limit] if limit is not None else entries


def parse_time_ns(text: str, now: dt.datetime | None = None) -> int | None:
    """Nanoseconds of an RFC 3339 / ISO-8601 (naive = local time) / relative time, or None."""
    from schemas import parse_timestamp_ns

    try:
        return parse_timestamp_ns(text)
    except ValueError:
        pass
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

    def to_ns(value: dt.datetime) -> int:
        if value.tzinfo is None:
            value = value.astimezone()
        d = value - epoch
        return (d.days * 86400 + d.seconds) * 1_000_000_000 + d.microseconds * 1000

    try:
        return to_ns(dt.datetime.fromisoformat(text))
    except ValueError:
        pass
    if re.fullmatch(r"-?\d+", text.strip()):
        return None
    import dateparser

    base = (now or dt.datetime.now().astimezone()).astimezone().replace(tzinfo=None)
    parsed = dateparser.parse(text, settings={"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past",
                                              "RETURN_AS_TIMEZONE_AWARE": False})
    return None if parsed is None else to_ns(parsed)


def hub_source(hub: HubClient, project_id: str, *, as_of: bytes | str | None = None):
    """A ``replay.ReplaySource`` reading the project from the hub as of ``as_of``.

    ``read_blob`` reads hub blobs and verifies their SHA-256 (so ``verify=False``)."""
    from replay import ReplaySource

    history = HubHistory(hub, project_id, as_of=as_of)
    return ReplaySource(
        name="hub",
        tenant=hub.tenant_id,
        project=project_id,
        resolve=history.resolve,
        changes=history.changes,
        read_blob=lambda digest: hub.read_blob(project_id, digest),
        verify=False,
    )


def resolve_hub_project(hub: HubClient, project_id: str | None) -> str:
    """The project to read from the hub: ``project_id`` if the hub has it, else the
    tenant's only project. Raises ``ProjectNotFound``/``AmbiguousProject`` listing choices."""
    from ledger.projects import pick_project

    return pick_project(hub.projects(), project_id, tenant_id=hub.tenant_id, where="the hub",
                        empty_hint="run `ledger sync` first")


def log_rows(history: HubHistory, *, limit: int | None = 50) -> Iterator[dict]:
    """JSON-ready rows for ``ledger log --source hub``: event fields plus ``hub_position``
    (24 hex digits), ``hub_versionstamp`` (20) and ``time`` (RFC 3339)."""
    for e in history.log(limit=limit):
        yield entry_dict(e)


def open_hub_history(hub: HubClient, project_id: str | None, as_of: bytes | str | None = None) -> HubHistory:
    """The ``HubHistory`` of ``project_id`` (None: the tenant's only project on the hub)
    as of hub version ``as_of``. Raises ``ProjectNotFound``/``AmbiguousProject``."""
    return HubHistory(hub, resolve_hub_project(hub, project_id), as_of=as_of)


def entry_dict(entry: HubEntry) -> dict:
    """JSON form of a hub entry: the event's fields plus ``hub_position`` (24 hex digits),
    ``hub_versionstamp`` (20) and ``time`` (RFC 3339)."""
    d = entry.record.event.to_dict()
    d["hub_position"] = entry.position.hex()
    d["hub_versionstamp"] = entry.position[:10].hex()
    d["time"] = format_timestamp_ns(entry.time_ns)
    return d


def open_hub_source(hub: HubClient, project_id: str | None, as_of: bytes | str | None = None):
    """The hub ``ReplaySource`` of ``project_id`` (None: the tenant's only project on the
    hub) as of hub version ``as_of`` (see ``hub_source``)."""
    return hub_source(hub, resolve_hub_project(hub, project_id), as_of=as_of)
