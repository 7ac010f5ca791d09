"""Plain records returned by the ledger's queries (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydantic loads on the first decode: read-only commands (replay) skip it
    from schemas import SwarmEvent


@dataclass(frozen=True)
class Appended:
    """Result of appending one event: its local ``seq`` and whether it was new.

    ``inserted`` is False when the same event (same id, same bytes) was already
    in the ledger: appends are idempotent on ``event_id``.
    """

    seq: int
    event_id: str
    inserted: bool


@dataclass(frozen=True)
class Prepared:
    """Events that went through the write pipeline (``ledger.policies``), serialized and
    checked, with the contents they name: what ``Ledger.append_prepared`` writes.

    ``items`` is ``((event, body), ...)`` in append order (``body``: the event's
    protobuf bytes); ``blobs`` maps SHA-256 hex to bytes (every key checked). Made by
    ``Ledger.prepare_many``; a producer may prepare the next batch while this one is
    written (``nervous_system.gitimport.writer``)."""

    items: tuple
    blobs: dict


@dataclass(frozen=True)
class StoredEvent:
    """An event as stored: local sequence, local receive time (ns), outbox state, body;
    ``shared_from``: where it was imported from (another ledger, a bundle), None when it
    was recorded here."""

    seq: int
    event_id: str
    time_ns: int
    recorded_ns: int
    tenant_id: str
    project_id: str
    kind: str
    body: bytes = field(repr=False)
    hub_versionstamp: bytes | None = None
    sync_error: str | None = None
    shared_from: str | None = None

    @cached_property
    def event(self) -> SwarmEvent:
        """The decoded, validated event. Raises ``CorruptEvent`` (naming the seq and id)
        when the body does not decode or disagrees with its row."""
        from ledger.errors import CorruptEvent
        from schemas import event_from_bytes
        from schemas.errors import SchemaError

        try:
            event = event_from_bytes(self.body)
        except SchemaError as exc:
            raise CorruptEvent(f"stored event seq {self.seq} ({self.event_id}) cannot be read: {exc}") from exc
        if (event.event_id, event.tenant_id, event.project_id) != (self.event_id, self.tenant_id, self.project_id):
            raise CorruptEvent(
                f"stored event seq {self.seq} ({self.event_id}) is corrupt: its body is event {event.event_id} "
                f"of {event.tenant_id}/{event.project_id}, its row says {self.tenant_id}/{self.project_id}")
        if b"sealed:v1:" not in self.body:  # no sealed text (ledger.erasure): as stored
            return event
        from ledger.erasure import unseal_stored

        return unseal_stored(event)


@dataclass(frozen=True)
class PathState:
    """Current content of one path in a projection: SHA-256 hex and file mode name."""

    path: str
    hash: str
    mode: str


@dataclass(frozen=True)
class ChangeRow:
    """One file state change, reduced to what replay needs.

    ``order`` is the tie-breaker after ``time_ns``: the local ``seq`` for the
    local ledger, the 12-byte hub position (10-byte versionstamp + 2-byte index in the transaction) for the hub. Hashes are SHA-256 hex
    ("" where there is no content); modes are FileMode names ("regular",
    "executable", "symlink", "" where unknown).
    """

    event_id: str
    time_ns: int
    order: int | bytes
    operation: str
    path: str
    previous_path: str
    previous_hash: str
    new_hash: str
    mode: str
    previous_mode: str
    commit_hash: str = ""


@dataclass(frozen=True)
class ProjectSummary:
    """Events of one tenant/project: count and time range (ns)."""

    tenant_id: str
    project_id: str
    events: int
    first_ns: int
    last_ns: int
