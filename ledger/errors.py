"""Errors of the local ledger. Every one says what to do next.

``LedgerError`` is the base; driver errors (``sqlite3.Error``) are converted to
``StoreError`` at the boundary with the cause chained.
"""

from schemas.errors import ContentTooLarge, ContextLedgerError, EventTooLarge, InvalidEvent, SchemaError, UnknownSchemaVersion

__all__ = [
    "LedgerError",
    "ConfigError",
    "StoreError",
    "EventNotFound",
    "BlobNotFound",
    "MissingContent",
    "DuplicateEventId",
    "ProjectNotFound",
    "AmbiguousProject",
    "MomentNotFound",
    "CorruptEvent",
    "VoteRefused",
    "ChainBroken",
    "InvalidEvent",
    "ContentTooLarge",
    "EventTooLarge",
    "UnknownSchemaVersion",
    "SchemaError",
]


class LedgerError(ContextLedgerError):
    """Base class of every error of the local ledger library."""


class ConfigError(LedgerError):
    """The configuration (ledger.toml or LEDGER_* variables) is invalid."""


class StoreError(LedgerError):
    """SQLite failed (disk full, locked for too long, corrupt file); the cause is chained."""


class EventNotFound(LedgerError, LookupError):
    """No event has that id (or id prefix)."""


class BlobNotFound(LedgerError, LookupError):
    """No content with that SHA-256 is in the blob store."""


class MissingContent(LedgerError, ValueError):
    """A file state change names content (new_state_hash) that was not supplied or stored."""


class DuplicateEventId(LedgerError, ValueError):
    """An event id already exists with different content (ids are idempotency keys)."""


class ProjectNotFound(LedgerError, LookupError):
    """The ledger has no events for that tenant/project."""


class AmbiguousProject(LedgerError, ValueError):
    """Several projects exist and none was chosen."""


class MomentNotFound(LedgerError, ValueError):
    """A --at value could not be understood as a time, event id or commit."""


class CorruptEvent(LedgerError, ValueError):
    """A stored event cannot be read back: its body does not decode, has a schema version
    this code does not know, or names another id, tenant or project than its row (the
    file was altered, or written by a newer version). Reported by seq and id; readers
    skip it instead of failing."""


class VoteRefused(LedgerError, ValueError):
    """A vote (``ledger approve``/``ledger reject``) cannot be recorded: its target is not
    a file change or a decision, is itself a vote, or a rejection has no reason."""


class ChainBroken(LedgerError):
    """The hash chain does not verify (or a proof cannot be read); the message names the
    first problem. Run ``ledger verify`` to see every problem."""
