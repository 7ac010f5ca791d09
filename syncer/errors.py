"""Errors of the syncer and the hub. Every one says what to do next.

All derive from ``ledger.errors.LedgerError`` so the CLI prints them as one clean line.
FoundationDB driver errors (``fdb.FDBError``) are converted at the boundary
(``hub.hub``) with the cause chained.
"""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = [
    "SyncError",
    "HubNotConfigured",
    "HubUnavailable",
    "HubError",
    "HubBlobMissing",
    "HubEventNotFound",
    "TenantMismatch",
    "EventRefused",
    "SyncerAlreadyRunning",
    "SyncerNotRunning",
    "DaemonError",
]


class SyncError(LedgerError):
    """Base class of the syncer's and hub's errors."""


class HubNotConfigured(SyncError):
    """No FoundationDB cluster file was given (setting, FDB_CLUSTER_FILE or --cluster-file)."""


class HubUnavailable(SyncError):
    """The hub could not be reached or did not answer in time (retry later; the outbox keeps
    every event). Also raised when the FoundationDB client library is not installed."""


class HubError(SyncError):
    """The hub refused an operation or holds data this version cannot read."""


class HubBlobMissing(HubError, LookupError):
    """A content blob named by an event is not (completely) on the hub."""


class HubEventNotFound(HubError, LookupError):
    """No event with that id (or cut) is on the hub."""


class TenantMismatch(SyncError, ValueError):
    """An operation named a tenant other than the hub object's configured tenant."""


class EventRefused(SyncError, ValueError):
    """An event cannot be sent to the hub (too large for any transaction, key too long,
    another tenant). It stays in the local ledger, marked with the reason."""


class DaemonError(SyncError):
    """The background syncer could not be started, stopped or inspected."""


class SyncerAlreadyRunning(DaemonError):
    """Another syncer holds this ledger's lock file."""


class SyncerNotRunning(DaemonError):
    """No background syncer is running for this ledger."""
