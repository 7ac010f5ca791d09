"""The write policy pipeline: what every event goes through before it is stored.

The ledger has ONE write step (``Ledger._prepare``, used by ``append``, ``append_many``,
``submit`` and ``record_with_state``); every producer — the SDK, JSON Lines, git import,
``exec``, span capture, OTLP receiving, the agent hooks — reaches it. Before an event
is serialized and stored, the ledger runs its pipeline: an ordered list of
``WritePolicy`` objects, each of which may return a changed event and changed blobs
(redaction of secrets in text, withholding the content of secret files, encryption of
payloads) or refuse it by raising an ``InvalidEvent``/``LedgerError`` (nothing of the
batch is written then).

Rules a policy must keep (the ledger relies on them):

* the event id, tenant, project and payload kind are unchanged (ids are idempotency keys:
  the same input must give the same stored event, so a policy is deterministic);
* a policy may remove blobs from the mapping only if it also makes the event say so
  (the store refuses a change whose content is neither given nor stored);
* no I/O outside the ledger file (policies run inside the write path of every tool call).

Example::

    class Upper:
        name = "upper"
        def apply(self, event, blobs):
            if event.message is not None:
                event = event.model_copy(update={"message": event.message.model_copy(
                    update={"content": event.message.content.upper()})})
            return event, blobs

    lg = Ledger(path, policies=[Upper()])
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence, runtime_checkable

from schemas import SwarmEvent
from schemas.errors import InvalidEvent

__all__ = ["WritePolicy", "Pipeline"]


@runtime_checkable
class WritePolicy(Protocol):
    """One step of the write pipeline.

    ``name``: a short identifier (shown in errors). ``apply(event, blobs)`` returns
    ``(event, blobs)``; ``blobs`` maps SHA-256 hex to bytes (may be empty). Raise
    ``schemas.errors.InvalidEvent`` (or a ``LedgerError``) to refuse the event.
    """

    name: str

    def apply(self, event: SwarmEvent, blobs: Mapping[str, bytes]) -> tuple[SwarmEvent, Mapping[str, bytes]]:
        ...


class Pipeline:
    """An ordered, immutable sequence of ``WritePolicy`` steps (empty: events pass as given)."""

    __slots__ = ("steps",)

    def __init__(self, steps: Sequence[WritePolicy] = ()) -> None:
        for step in steps:
            if not isinstance(step, WritePolicy):
                raise TypeError(f"{step!r} is not a WritePolicy (needs .name and .apply(event, blobs))")
        self.steps: tuple[WritePolicy, ...] = tuple(steps)

    def __bool__(self) -> bool:
        return bool(self.steps)

    def __repr__(self) -> str:
        return f"Pipeline({[s.name for s in self.steps]})"

    def run(self, event: SwarmEvent, blobs: Mapping[str, bytes]) -> tuple[SwarmEvent, Mapping[str, bytes]]:
        """Run every step in order. Raises ``InvalidEvent`` when a step changes what it
        must keep (id, tenant, project, kind) or returns something that is not an event."""
        for step in self.steps:
            changed, blobs = step.apply(event, blobs)
            if not isinstance(changed, SwarmEvent):
                raise InvalidEvent(f"write policy {step.name!r} returned {type(changed).__name__}, not an event")
            if (changed.event_id, changed.tenant_id, changed.project_id, changed.kind) != (
                    event.event_id, event.tenant_id, event.project_id, event.kind):
                raise InvalidEvent(
                    f"write policy {step.name!r} changed the identity of event {event.event_id} "
                    "(id, tenant, project and kind must stay as given)")
            event = changed
        return event, blobs
