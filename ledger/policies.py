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

A ``Ledger`` opened without ``policies`` gets ``default_policies()``: redaction of secrets
in text (``ledger.redaction``) and withholding of secret files' content
(``ledger.secret_files``), on unless the ``redact`` setting is false. Pass
``policies=()`` for none (tests of raw storage, tools that copy already stored events).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Protocol, Sequence, runtime_checkable

from schemas.errors import InvalidEvent

if TYPE_CHECKING:
    from schemas import SwarmEvent

__all__ = ["WritePolicy", "Pipeline", "default_policies"]


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

    def withholds(self, path: str) -> bool:
        """True when a step withholds the content of file ``path`` (a secret file,
        ``ledger.secret_files``): producers that store content ahead of its events
        (``Ledger.put_blobs``) must not store it."""
        return any(getattr(step, "is_secret", None) is not None and step.is_secret(path) for step in self.steps)

    def run(self, event: SwarmEvent, blobs: Mapping[str, bytes]) -> tuple[SwarmEvent, Mapping[str, bytes]]:
        """Run every step in order. Raises ``InvalidEvent`` when a step changes what it
        must keep (id, tenant, project, kind) or returns something that is not an event."""
        for step in self.steps:
            changed, blobs = step.apply(event, blobs)
            if changed is event:  # the common case: nothing to check
                continue
            from schemas import SwarmEvent

            if not isinstance(changed, SwarmEvent):
                raise InvalidEvent(f"write policy {step.name!r} returned {type(changed).__name__}, not an event")
            if (changed.event_id, changed.tenant_id, changed.project_id, changed.kind) != (
                    event.event_id, event.tenant_id, event.project_id, event.kind):
                raise InvalidEvent(
                    f"write policy {step.name!r} changed the identity of event {event.event_id} "
                    "(id, tenant, project and kind must stay as given)")
            event = changed
        return event, blobs


_defaults_cache: dict[tuple, tuple[WritePolicy, ...]] = {}


def default_policies(settings=None) -> tuple[WritePolicy, ...]:
    """The pipeline of a ledger opened without explicit ``policies``: ``(RedactionPolicy,
    SecretFilesPolicy)`` configured by the settings ``redact``, ``redact_patterns``,
    ``redact_allow``, ``secret_files`` and ``secret_files_allow`` (``ledger.config``;
    loaded when ``settings`` is None), or ``()`` when ``redact`` is false. Built once per
    configuration. Raises ``ConfigError`` for invalid settings or a pattern that is not a
    regex (rule: issue 15, "Redaction before storage, on by default")."""
    if settings is None:
        from ledger.config import load_settings

        settings = load_settings()
    if not settings.redact:
        return ()
    key = (tuple(sorted(settings.redact_patterns.items())), tuple(settings.redact_allow),
           None if settings.secret_files is None else tuple(settings.secret_files),
           None if settings.secret_files_allow is None else tuple(settings.secret_files_allow))
    cached = _defaults_cache.get(key)
    if cached is None:
        from ledger.errors import ConfigError
        from ledger.redaction import RedactionPolicy
        from ledger.secret_files import SecretFilesPolicy

        try:
            redaction = RedactionPolicy(settings.redact_patterns, settings.redact_allow)
        except ValueError as exc:
            raise ConfigError(f"{exc}; fix redact_patterns/redact_allow in ledger.toml or LEDGER_REDACT_*") from exc
        cached = (redaction, SecretFilesPolicy(settings.secret_files, settings.secret_files_allow))
        _defaults_cache[key] = cached
    return cached
