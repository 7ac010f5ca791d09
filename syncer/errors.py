"""Errors of the syncer (the laptop's outbox forwarding) and its daemon. Every one says
what to do next.

All derive from ``SyncError``, a ``schemas.errors.ContextLedgerError`` (the project's root
exception), so the CLI prints them as one clean line. The hub's own errors
(``HubUnavailable``, ``HubError``, ...) live in ``hub.errors``.
"""

from __future__ import annotations

from schemas.errors import ContextLedgerError

__all__ = [
    "SyncError",
    "EventRefused",
    "SyncerAlreadyRunning",
    "SyncerNotRunning",
    "DaemonError",
]


class SyncError(ContextLedgerError):
    """Base class of the syncer's errors."""


class EventRefused(SyncError, ValueError):
    """An event cannot be sent to the hub (too large for any transaction, key too long,
    another tenant). It stays in the local ledger, marked with the reason."""


class DaemonError(SyncError):
    """The background syncer could not be started, stopped or inspected."""


class SyncerAlreadyRunning(DaemonError):
    """Another syncer holds this ledger's lock file."""


class SyncerNotRunning(DaemonError):
    """No background syncer is running for this ledger."""
