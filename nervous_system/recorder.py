"""The agent SDK: a ``Recorder`` bound to one tenant, project, agent and session.

Every call builds a ``SwarmEvent``, validates it and appends it to the local ledger
before returning its event id: durable on return (see ``ledger.store``), or in
``group`` durability checked on return and durable after ``flush()`` / the group window
(see ``ledger.groupcommit``). Errors are typed (``InvalidRecord``, ``RecordFailed``);
nothing is dropped silently.

Example::

    from nervous_system import Recorder
    rec = Recorder("/tmp/ledger.db", project_id="web", agent_id="coder-1", agent_role="coder")
    why = rec.decision("split the parser", confidence=0.8, rejected_alternatives=["regex"])
    rec.file_change("src/parser.py", b"def parse(): ...\\n")   # caused_by=why
    rec.file_change("old.txt", None)                           # a delete
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ledger import Ledger, PathState
from ledger.changes import UNKNOWN, file_state_change
from ledger.errors import BlobNotFound, LedgerError, StoreError
from nervous_system.errors import InvalidRecord, RecordFailed
from schemas import (
    MAX_CONTENT_BYTES,
    AgentDecision,
    AgentMessage,
    SwarmEvent,
    SystemSignal,
    check_relative_path,
    new_event_id,
)
from schemas.errors import SchemaError
from schemas.ids import COMMIT_HEX_RE, UUID7_RE

#: A valid placeholder id for the envelope template (never recorded).
_TEMPLATE_ID = "00000000-0000-7000-8000-000000000000"

#: Hooks called with each event just before it is appended (used by the
#: OpenTelemetry integration to add trace/span ids). A hook returns the event
#: (possibly a modified copy).
EventHook = Callable[[SwarmEvent], SwarmEvent]
#: Hooks called after an event was appended (in the caller's thread and context).
AfterHook = Callable[[SwarmEvent], None]


def register_hooks(
    *, before: EventHook | None = None, after: AfterHook | None = None
) -> Callable[[], None]:
    """Register process-wide hooks run by every ``Recorder``. Registering the same
    callable again is a no-op.

    Returns a function that unregisters them. Global hooks run before a recorder's own
    hooks (``Recorder.add_hooks``).
    """
    if before is not None and before not in Recorder.before_append:
        Recorder.before_append.append(before)
    if after is not None and after not in Recorder.after_append:
        Recorder.after_append.append(after)

    def unregister() -> None:
        if before is not None and before in Recorder.before_append:
            Recorder.before_append.remove(before)
        if after is not None and after in Recorder.after_append:
            Recorder.after_append.remove(after)

    return unregister


class Recorder:
    """Records an agent's decisions, file changes, messages and signals.

    Arguments: ``ledger`` is a ``Ledger`` or a path to the SQLite file (default: the
    configured ledger); ``tenant_id`` defaults to the configured tenant; ``session_id``
    (one agent run) defaults to a new UUIDv7; ``clock`` returns int nanoseconds since
    the epoch. Thread-safe.

    Hooks: the class-level lists ``Recorder.before_append``/``after_append`` are the
    process-wide hooks (see ``register_hooks``); ``add_hooks`` adds hooks to one
    recorder only.
    """

    before_append: list[EventHook] = []
    after_append: list[AfterHook] = []

    def __init__(
        self,
        ledger: Ledger | str | os.PathLike | None = None,
        *,
        project_id: str,
        agent_id: str,
        tenant_id: str | None = None,
        agent_role: str = "other",
        session_id: str | None = None,
        user_id: str = "",
        clock: Callable[[], int] = time.time_ns,
        link_spans: bool = True,
        root: str | os.PathLike | None = None,
    ) -> None:
        #: True when this recorder opened its ledger (and so closes it); a lent
        #: ``Ledger`` stays open for its owner.
        self.owns_ledger = not isinstance(ledger, Ledger)
        if isinstance(ledger, Ledger):
            self.ledger = ledger
        else:
            from ledger.config import load_settings

            from ledger.policies import default_policies

            settings = load_settings()
            self.ledger = Ledger(
                Path(ledger) if ledger is not None else settings.ledger_path,
                durability=settings.durability, policies=default_policies(settings),
            )
            if tenant_id is None:
                tenant_id = settings.tenant
        self.tenant_id = tenant_id or "default"
        self.project_id = project_id
        self.agent_id = agent_id
        self.agent_role = agent_role
        self.session_id = session_id or new_event_id()
        self.user_id = user_id
        self.clock = clock
        self._lock = threading.Lock()
        self._last_decision: str = ""
        self._own_before: list[EventHook] = []
        self._own_after: list[AfterHook] = []
        self._template: tuple[tuple, dict | None] = ((), None)
        self._root = root
        self._root_looked_up = root is not None
        self._baselined: set[str] = set()
        if link_spans:
            from nervous_system import otel

            self.add_hooks(before=otel.link_to_current_span, after=otel.mirror_as_span_event)

    def add_hooks(self, *, before: EventHook | None = None, after: AfterHook | None = None) -> None:
        """Add hooks run for this recorder's events only (after the global hooks)."""
        if before is not None:
            self._own_before.append(before)
        if after is not None:
            self._own_after.append(after)

    # ------------------------------------------------------------ envelope
    def _envelope(self, *, caused_by: str = "", commit: str = "", **payload: Any) -> SwarmEvent:
        """A new event of this recorder with one payload (an already validated model).

        The fields that are the same for every event of the recorder (tenant, project,
        user, session, agent, role) are validated once, into a template; each event is
        a copy of it with the per-event fields, checked here with the same rules as
        ``SwarmEvent``'s validators. Anything else (a clock that does not return int
        nanoseconds, a bad ``caused_by``/``commit``) goes through full validation, which
        raises ``InvalidRecord`` with pydantic's message.
        """
        event_id = new_event_id()
        timestamp = self.clock()
        caused_by = caused_by or ""
        commit = commit or ""
        identity = self._identity()
        if (
            identity is not None
            and type(timestamp) is int
            and (not caused_by or UUID7_RE.fullmatch(caused_by))
            and (not commit or COMMIT_HEX_RE.match(commit))
        ):
            # Every field is valid already (identity checked once, the rest just above;
            # payloads are validated models): construct without re-validating.
            return SwarmEvent.model_construct(
                event_id=event_id, timestamp=timestamp, caused_by=caused_by,
                related_commit_hash=commit, **identity, **payload)
        try:
            return SwarmEvent(
                event_id=event_id,
                timestamp=timestamp,
                tenant_id=self.tenant_id,
                project_id=self.project_id,
                user_id=self.user_id,
                session_id=self.session_id,
                agent_id=self.agent_id,
                agent_role=self.agent_role,
                caused_by=caused_by,
                related_commit_hash=commit,
                **payload,
            )
        except (SchemaError, ValueError) as exc:
            raise InvalidRecord(f"cannot record: {exc}") from exc

    def _identity(self) -> dict | None:
        """The validated fields shared by every event of this recorder (tenant, project,
        user, session, agent, role, schema version and the empty trace ids), checked once
        by building a template event and kept until one of them is reassigned; None if
        they are invalid (full validation of each event then reports why)."""
        key = (self.tenant_id, self.project_id, self.user_id, self.session_id, self.agent_id,
               self.agent_role)
        cached_key, identity = self._template
        if cached_key == key:
            return identity
        try:
            template = SwarmEvent(
                event_id=_TEMPLATE_ID, timestamp=0, tenant_id=key[0], project_id=key[1],
                user_id=key[2], session_id=key[3], agent_id=key[4], agent_role=key[5],
                decision=AgentDecision(),
            )
        except (SchemaError, ValueError):
            identity = None
        else:
            identity = template.model_dump(
                include={"schema_version", "tenant_id", "project_id", "user_id", "session_id",
                         "agent_id", "agent_role", "trace_id", "span_id"})
        self._template = (key, identity)
        return identity

    def _hooked(self, event: SwarmEvent) -> SwarmEvent:
        for hooks in (Recorder.before_append, self._own_before):
            for hook in tuple(hooks) if hooks else ():
                event = hook(event)
        return event

    def _after(self, event: SwarmEvent) -> None:
        for hooks in (Recorder.after_append, self._own_after):
            for hook in tuple(hooks) if hooks else ():
                hook(event)

    def record(self, event: SwarmEvent, blobs: Mapping[str, bytes] | None = None) -> str:
        """Append a ready-made event (hooks applied); returns its event id.

        Durable on return in ``full`` durability; in ``group`` durability the event is
        checked now (errors raise here) and durable after ``flush()`` or within the
        group window (``Ledger.submit``, ``ledger.groupcommit``). The event is validated
        again as a whole (it may have been built without validation, e.g. with
        ``model_construct``). Raises ``InvalidRecord`` or ``RecordFailed``.
        """
        if not isinstance(event, SwarmEvent):
            raise InvalidRecord(f"record() takes a SwarmEvent, not {type(event).__name__}")
        try:
            event = SwarmEvent.model_validate(event.model_dump())
        except (SchemaError, ValueError) as exc:
            raise InvalidRecord(f"cannot record event: {exc}") from exc
        return self._record(event, blobs, None)

    def _record(self, event: SwarmEvent, blobs: Mapping[str, bytes] | None, made_id: str | None) -> str:
        """``record``; ``made_id`` is the id this recorder just generated for ``event``
        (if the hooks keep it, the ledger need not look it up among stored events)."""
        if Recorder.before_append or self._own_before:
            event = self._hooked(event)
        try:
            self.ledger.submit(event, blobs, new_id=made_id is not None and event.event_id == made_id)
        except StoreError as exc:
            raise RecordFailed(f"event {event.event_id} was not recorded: {exc}") from exc
        except (LedgerError, SchemaError) as exc:
            raise InvalidRecord(str(exc)) from exc
        if Recorder.after_append or self._own_after:
            self._after(event)
        return event.event_id

    # ------------------------------------------------------------ payloads
    def decision(
        self,
        rationale: str,
        *,
        input_trigger: str = "",
        rejected_alternatives: Iterable[str] = (),
        memory_ids: Iterable[str] = (),
        confidence: float = 0.0,
        context_hash: str = "",
        commit: str = "",
    ) -> str:
        """Record an ``AgentDecision``; later file changes of this recorder link to it
        through ``caused_by``. ``confidence`` is 0.0-1.0; 0.0 (the default) means "not
        given" and audits do not judge such decisions. Returns the event id."""
        if not 0.0 <= confidence <= 1.0:
            raise InvalidRecord(f"confidence must be between 0.0 and 1.0, got {confidence}")
        event = self._envelope(
            commit=commit,
            decision=AgentDecision(
                context_hash=context_hash,
                input_trigger=input_trigger,
                rationale=rationale,
                rejected_alternatives=list(rejected_alternatives),
                memory_ids=list(memory_ids),
                confidence_score=confidence,
            ),
        )
        event_id = self._record(event, None, event.event_id)
        self._last_decision = event_id  # one attribute store: atomic
        return event_id

    def file_change(
        self,
        path: str,
        new_bytes: bytes | None,
        *,
        mode: str | None = None,
        previous_path: str | None = None,
        caused_by: str | None = None,
        commit: str = "",
        is_reversible: bool = True,
    ) -> str:
        """Record a ``StateChange`` of the file at ``path`` (relative, '/'-separated).

        ``new_bytes`` is the whole new content, ``None`` for a delete; for a symlink it is
        the link target. ``mode``: "regular", "executable" or "symlink" (default: the
        file's current mode, else regular). ``previous_path`` makes it a rename (with
        ``new_bytes=None`` the content moves unchanged). The previous hash and mode come
        from the ledger's current state of the path, read in the same transaction as
        the append. ``caused_by`` defaults to this recorder's last decision.
        Returns the event id; raises ``InvalidRecord`` (bad path, delete of a file the
        ledger does not know) or ``RecordFailed``.
        """
        try:
            check_relative_path(path)
            if previous_path is not None:
                check_relative_path(previous_path)
        except ValueError as exc:
            raise InvalidRecord(f"cannot record file change: {exc}") from exc
        if new_bytes is not None and not isinstance(new_bytes, (bytes, bytearray, memoryview)):
            raise InvalidRecord(f"new_bytes must be bytes or None, not {type(new_bytes).__name__}")
        if new_bytes is not None and len(new_bytes) > MAX_CONTENT_BYTES:
            raise InvalidRecord(f"cannot record {path!r}: {len(new_bytes):,} bytes of content is over the "
                                f"{MAX_CONTENT_BYTES:,}-byte limit of one file version")
        with self._lock:
            cause = self._last_decision if caused_by is None else caused_by
        self._baseline(previous_path or path, None if previous_path else new_bytes)
        paths = [path] + ([previous_path] if previous_path else [])
        holder: dict[str, SwarmEvent] = {}

        def build(states: dict[str, PathState | None]) -> tuple[SwarmEvent, dict[str, bytes]]:
            before = states.get(previous_path) if previous_path else states[path]
            old: bytes | None | object = None
            if before is not None and before.hash:
                try:
                    old = self.ledger.get_blob(before.hash, tenant_id=self.tenant_id)
                except BlobNotFound:  # withheld (a secret file, ledger.secret_files): no diff
                    old = UNKNOWN
            content = None if new_bytes is None else bytes(new_bytes)
            if previous_path and content is None and before is not None:
                if old is UNKNOWN:
                    raise InvalidRecord(
                        f"cannot rename {previous_path!r} without its bytes: its content was withheld "
                        "(a secret file, recorded by hash only); pass new_bytes")
                content = old  # a pure rename: the content moves unchanged
            change = file_state_change(
                path, content, before=before, old_bytes=old if before is None or before.hash else UNKNOWN,
                new_mode=mode, previous_path=previous_path, is_reversible=is_reversible)
            event = self._hooked(self._envelope(caused_by=cause, commit=commit, state_change=change))
            holder["event"] = event
            return event, ({change.new_state_hash: content} if content is not None else {})

        try:
            self.ledger.record_with_state(self.tenant_id, self.project_id, paths, build)
        except StoreError as exc:
            raise RecordFailed(f"file change of {path!r} was not recorded: {exc}") from exc
        except (RecordFailed, InvalidRecord):
            raise
        except (LedgerError, SchemaError, ValueError) as exc:
            raise InvalidRecord(f"cannot record file change of {path!r}: {exc}") from exc
        event = holder["event"]
        self._after(event)
        return event.event_id

    def _work_tree(self) -> Path | None:
        """The project's work tree: ``root``, else the registered root of the project."""
        if not self._root_looked_up:
            self._root_looked_up = True
            try:
                info = self.ledger.project_info(self.tenant_id, self.project_id)
            except LedgerError:
                info = None
            self._root = info.root if info is not None else None
        return Path(self._root) if self._root else None

    def _baseline(self, path: str, new_bytes: bytes | None) -> None:
        """Before the first change of a path the ledger has no state for, record the state
        it had in the repository (``nervous_system.baseline``), once per path."""
        if path in self._baselined:
            return
        self._baselined.add(path)
        root = self._work_tree()
        if root is None or self.ledger.path_state(self.tenant_id, self.project_id, path) is not None:
            return
        from nervous_system.baseline import BASELINE_AGENT, baseline_state

        found = baseline_state(root, path, None if new_bytes is None else bytes(new_bytes))
        if found is None:
            return
        content, mode = found
        recorder = Recorder(self.ledger, project_id=self.project_id, agent_id=BASELINE_AGENT,
                            tenant_id=self.tenant_id, agent_role="operator", session_id=self.session_id,
                            user_id=self.user_id, clock=self.clock, link_spans=False, root=root)
        recorder._baselined.add(path)
        why = recorder.decision(f"{path} as it was in the repository before the agent's first recorded change",
                                input_trigger="baseline", confidence=1.0)
        recorder.file_change(path, content, mode=mode, caused_by=why)

    def approve(self, event_id: str, *, reason: str = "") -> str:
        """Record this agent's approval of ``event_id`` (a file change, or a decision:
        then of every change it caused) as a vote (``ledger.approvals``); who voted is
        this recorder's user and agent. ``event_id`` may be a unique prefix. An agent's
        approval of its own change does not count in audits (docs/trust.md). Does not
        become the ``caused_by`` of later changes. Returns the vote's event id; raises
        ``InvalidRecord`` (unknown event, not a change or decision) or ``RecordFailed``."""
        return self._vote(event_id, "approve", reason)

    def reject(self, event_id: str, *, reason: str) -> str:
        """Record this agent's rejection of ``event_id`` (see ``approve``); ``reason`` is
        required. A later rejection wins over an earlier approval. Returns the vote's id."""
        return self._vote(event_id, "reject", reason)

    def _vote(self, event_id: str, verdict: str, reason: str) -> str:
        from ledger.approvals import build_vote

        try:
            target = self.ledger.get(event_id.strip().lower(), tenant_id=self.tenant_id).event
            vote = build_vote(target, verdict, reason=reason, event_id=new_event_id(), timestamp=self.clock(),
                              user_id=self.user_id, agent_id=self.agent_id, agent_role=self.agent_role,
                              session_id=self.session_id)
        except StoreError as exc:
            raise RecordFailed(f"cannot {verdict} {event_id!r}: {exc}") from exc
        except (LedgerError, SchemaError) as exc:
            raise InvalidRecord(f"cannot {verdict} {event_id!r}: {exc}") from exc
        return self._record(vote, None, vote.event_id)

    def message(self, content: str, *, recipients: Iterable[str] = (), sender: str | None = None) -> str:
        """Record an ``AgentMessage`` (agent-to-agent talk). Returns the event id."""
        event = self._envelope(message=AgentMessage(
            sender=sender or self.agent_id, recipients=list(recipients), content=content))
        return self._record(event, None, event.event_id)

    def signal(
        self,
        status: str,
        *,
        cpu_load_percent: float = 0.0,
        memory_usage_mb: float = 0.0,
        detail: str = "",
    ) -> str:
        """Record a ``SystemSignal`` (health: status, CPU percent, memory in MB)."""
        try:
            payload = SystemSignal(status=status, cpu_load_percent=cpu_load_percent,
                                   memory_usage_mb=memory_usage_mb, detail=detail)
        except ValueError as exc:
            raise InvalidRecord(f"cannot record signal: {exc}") from exc
        event = self._envelope(signal=payload)
        return self._record(event, None, event.event_id)

    def flush(self) -> None:
        """Return when every event recorded so far is durable (matters in ``group``
        durability; see ``ledger.groupcommit``). Raises ``RecordFailed`` if a group
        commit failed."""
        try:
            self.ledger.flush()
        except StoreError as exc:
            raise RecordFailed(f"flush failed: {exc}") from exc

    def close(self) -> None:
        """Close the ledger if this recorder opened it (``owns_ledger``); a ``Ledger``
        lent to the recorder stays open for its owner. Safe to call twice."""
        if self.owns_ledger:
            self.ledger.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
