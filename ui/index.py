"""The UI's in-memory index of a project's events: what the timeline needs, per event,
in a few dozen bytes, so that zooming and filtering 100,000 events takes milliseconds.

One row per event (a tuple; see the ``R_*`` positions): time, recording order, id,
kind, agent, session, path (and rename source), a lowercased search text, the span's
start and end, ``caused_by`` and a short label. Rows are kept sorted by (time, order).

Built once per history and kept up to date by ``refresh``:

* the local ledger: from ``Ledger.event_rows`` (the lean bulk read path the ingestor
  uses), decoding each body with the generated protobuf module (a few microseconds per
  event, no pydantic), and then only rows after the last ``seq`` seen — polling
  ``Ledger.max_seq()`` is one indexed SQL aggregate;
* any other ``History`` (the hub): from ``History.select``.

The JSON of an event shown to people is never built here: the API reads the few
events on screen through the history (``History.get``) and ``replay.views``.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from typing import Iterable

from replay.history import History, LocalHistory, LogQuery
from replay.views import first_line
from google.protobuf.message import DecodeError

from schemas import events_pb2

#: Positions in an index row.
R_TIME, R_ORDER, R_ID, R_KIND, R_AGENT, R_SESSION, R_PATH, R_PREV, R_TEXT, R_START, R_END, R_CAUSE, R_LABEL, R_TRACE = range(14)
KINDS = ("decision", "state_change", "message", "signal", "span")
_BATCH = 20_000
_LABEL_CHARS = 90
_NS = 1_000_000_000


@dataclass(frozen=True)
class Filters:
    """Timeline filters (all optional, combined with AND). ``path``: that path or its
    rename source, everything below it when it ends with '/'; ``text``: a
    case-insensitive substring of the event's texts, ids, agent, session and paths."""

    agent: str | None = None
    session: str | None = None
    kind: str | None = None
    path: str | None = None
    text: str | None = None

    def __bool__(self) -> bool:
        return any((self.agent, self.session, self.kind, self.path, self.text))

    def match(self, row: tuple) -> bool:
        if self.kind and row[R_KIND] != self.kind:
            return False
        if self.agent and row[R_AGENT] != self.agent:
            return False
        if self.session and row[R_SESSION] != self.session:
            return False
        if self.path:
            p = self.path
            if p.endswith("/"):
                if not (row[R_PATH].startswith(p) or row[R_PREV].startswith(p)):
                    return False
            elif p != row[R_PATH] and p != row[R_PREV]:
                return False
        return not self.text or self.text.lower() in row[R_TEXT]


def _row(time_ns, order, event_id, kind, agent, session, path, prev, texts, start, end, cause, label, commit,
         trace):
    search = "\n".join((event_id, agent, session, path, prev, commit, *texts)).lower()
    return (time_ns, order, event_id, kind, agent, session, path, prev, search, start, end, cause,
            first_line(label, _LABEL_CHARS) if label else "", trace)


def _ts(ts) -> int:
    return ts.seconds * _NS + ts.nanos


def row_from_proto(msg, order) -> tuple:
    """The index row of a decoded ``events_pb2.SwarmEvent``."""
    kind = msg.WhichOneof("payload") or ""
    t = _ts(msg.timestamp)
    start = end = t
    path = prev = ""
    texts: tuple[str, ...] = ()
    if kind == "state_change":
        sc = msg.state_change
        path, prev = sc.target_resource, sc.previous_resource
        op = events_pb2.Operation.Name(sc.operation).removeprefix("OPERATION_").lower()
        label = f"{op} {prev} -> {path}" if prev else f"{op} {path}"
    elif kind == "decision":
        d = msg.decision
        texts = (d.rationale, d.input_trigger, *d.rejected_alternatives)
        label = d.rationale
        if msg.HasField("vote"):  # a vote (ledger approve/reject): say on what
            verdict = events_pb2.Verdict.Name(msg.vote.verdict).removeprefix("VERDICT_").lower()
            label = f"{verdict} {msg.vote.target_event_id[:18]}: {d.rationale}"
    elif kind == "message":
        m = msg.message
        texts = (m.sender, m.content, *m.recipients)
        label = f"{m.sender}: {m.content}"
    elif kind == "signal":
        s = msg.signal
        texts = (s.status, s.detail)
        label = f"{s.status} {s.detail}"
    else:
        sp = msg.span
        start, end = _ts(sp.start_time) or t, _ts(sp.end_time) or t
        texts = (sp.name,)
        label = sp.name
    return _row(t, order, msg.event_id, kind, msg.agent_id, msg.session_id, path, prev, texts,
                start, end, msg.caused_by, label, msg.related_commit_hash, msg.trace_id)


def row_from_entry(entry) -> tuple:
    """The index row of a ``replay.history.LogEntry`` (any history)."""
    msg = events_pb2.SwarmEvent()
    msg.ParseFromString(entry.event.to_bytes())
    return row_from_proto(msg, entry.order)


class EventIndex:
    """A project's events as sorted index rows (see the module docstring). Thread-safe:
    ``refresh`` may run in a poller thread while requests read."""

    def __init__(self, history: History):
        self.history = history
        self.rows: list[tuple] = []
        self.times: list[int] = []
        self.last_seq = 0
        self.unreadable = 0  # stored events whose body could not be decoded
        self.version = 0  # bumps whenever rows are added
        self._summary: dict | None = None
        self.answers: dict = {}  # ui.timeline's cache of answers
        self._lock = threading.Lock()
        self._local = isinstance(history, LocalHistory)
        self.refresh()

    # ---------------------------------------------------------------- loading
    def _new_local_rows(self) -> list[tuple]:
        lg = self.history.ledger
        if lg.max_seq() <= self.last_seq:
            return []
        tenant, project = self.history.tenant, self.history.project
        out = []
        while True:
            batch = lg.event_rows(self.last_seq, _BATCH, tenant_id=tenant)
            if not batch:
                break
            for record in batch:  # (seq, body, ...): the first two are all the index needs
                msg = events_pb2.SwarmEvent()
                try:
                    msg.ParseFromString(record[1])
                except DecodeError:
                    self.unreadable += 1  # a corrupt stored event: `ledger log` reports it
                    continue
                if msg.project_id == project:
                    out.append(row_from_proto(msg, record[0]))
            self.last_seq = batch[-1][0]
        return out

    def refresh(self) -> int:
        """Add events recorded since the last call; returns how many were added."""
        if self._local:
            new = self._new_local_rows()
        elif self.rows:
            return 0  # a hub history is a snapshot (``replay.hub.HubHistory`` reads the hub once)
        else:
            new = [row_from_entry(e) for e in self.history.select(LogQuery(limit=None, descending=False))]
        if not new:
            return 0
        with self._lock:
            rows = self.rows
            if not rows or (new[0][R_TIME], new[0][R_ORDER]) >= (rows[-1][R_TIME], rows[-1][R_ORDER]) \
                    and all((a[R_TIME], a[R_ORDER]) <= (b[R_TIME], b[R_ORDER]) for a, b in zip(new, new[1:])):
                rows = rows + new
            else:
                rows = sorted(rows + new, key=lambda r: (r[R_TIME], r[R_ORDER]))
            self.rows, self.times = rows, [r[R_TIME] for r in rows]
            self.version += 1
        return len(new)

    # ---------------------------------------------------------------- queries
    def snapshot(self) -> tuple[list[tuple], list[int]]:
        with self._lock:
            return self.rows, self.times

    def between(self, start_ns: int | None, end_ns: int | None) -> list[tuple]:
        """Rows with ``start_ns <= time <= end_ns`` (None: unbounded), in time order."""
        rows, times = self.snapshot()
        lo = 0 if start_ns is None else bisect.bisect_left(times, start_ns)
        hi = len(rows) if end_ns is None else bisect.bisect_right(times, end_ns)
        return rows[lo:hi]

    def matching(self, *, caused_by: str | None = None, kind: str | None = None, trace_id: str | None = None,
                 session_id: str | None = None, limit: int = 1000) -> list[str]:
        """Ids of the events (time order) with these links: the changes a decision caused,
        the spans of a trace or a session. (From memory: a scan of the index is a few
        milliseconds, and needs no SQL index on those columns.)"""
        rows, _ = self.snapshot()
        out = []
        for r in rows:
            if ((caused_by is None or r[R_CAUSE] == caused_by) and (kind is None or r[R_KIND] == kind)
                    and (trace_id is None or r[R_TRACE] == trace_id)
                    and (session_id is None or r[R_SESSION] == session_id)):
                out.append(r[R_ID])
                if len(out) >= limit:
                    break
        return out

    def summary(self) -> dict:
        """Counts and ranges for the page header and the filter menus (computed once
        per version of the index)."""
        cached = self._summary
        if cached is not None and cached["version"] == self.version:
            return cached
        self._summary = self._summarize()
        return self._summary

    def _summarize(self) -> dict:
        rows, _ = self.snapshot()
        agents: dict[str, int] = {}
        sessions: dict[str, list] = {}
        kinds = dict.fromkeys(KINDS, 0)
        for r in rows:
            agents[r[R_AGENT]] = agents.get(r[R_AGENT], 0) + 1
            kinds[r[R_KIND]] = kinds.get(r[R_KIND], 0) + 1
            add_session(sessions, r)
        return {
            "events": len(rows),
            "first_ns": rows[0][R_TIME] if rows else None,
            "last_ns": rows[-1][R_TIME] if rows else None,
            "kinds": kinds,
            "agents": sorted(({"agent": a, "events": n} for a, n in agents.items()), key=lambda x: -x["events"]),
            "sessions": len(sessions),
            "version": self.version,
        }


def add_session(sessions: dict[str, list], row: tuple) -> None:
    """Count ``row`` in ``sessions``: ``{session: [agent, first_ns, last_ns, events]}``
    (rows come in time order)."""
    s = sessions.get(row[R_SESSION])
    if s is None:
        sessions[row[R_SESSION]] = [row[R_AGENT], row[R_TIME], row[R_TIME], 1]
    else:
        s[2] = row[R_TIME]
        s[3] += 1
