"""The project's root exception, and the errors raised while validating events.

``ContextLedgerError`` is the root of every error the project raises on purpose: each
package's ``errors.py`` derives from it (``ledger.errors.LedgerError``, the hub's,
the syncer's, the ingestor's, replay's), so a caller (the CLI, a script) can catch the
whole family in one clause. Validation errors derive from ``SchemaError`` (also a
``ValueError``).
"""


class ContextLedgerError(Exception):
    """Root of every Context Ledger error; the message says what went wrong and what to do."""


class SchemaError(ContextLedgerError, ValueError):
    """Base class for event validation errors."""


class InvalidEvent(SchemaError):
    """The event is malformed: the message names each bad field and why."""


class UnknownSchemaVersion(InvalidEvent):
    """The event's schema_version is newer (or older) than this code understands."""


class EventTooLarge(InvalidEvent):
    """The serialized event exceeds the size limit (the message gives both sizes in bytes)."""


class ContentTooLarge(InvalidEvent):
    """File content exceeds ``MAX_CONTENT_BYTES`` (the message gives both sizes in bytes)."""
