"""Errors of the agent SDK. Nothing is dropped silently: a failed record raises."""

from ledger.errors import LedgerError


class RecorderError(LedgerError):
    """Base class of SDK errors."""


class InvalidRecord(RecorderError, ValueError):
    """The arguments do not make a valid event; the message says which and why."""


class RecordFailed(RecorderError):
    """The ledger could not store the event (disk, lock); the cause is chained."""
