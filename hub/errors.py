"""Errors of the team hub (its FoundationDB layer and its clients). Every one says what
to do next.

All derive from ``HubFailure``, itself a ``schemas.errors.ContextLedgerError`` (the
project's root exception), so the CLI prints them as one clean line. FoundationDB driver
errors (``fdb.FDBError``) are converted at the boundary (``hub.connection``) with the
cause chained.
"""

from __future__ import annotations

from schemas.errors import ContextLedgerError

__all__ = [
    "HubFailure",
    "HubNotConfigured",
    "HubUnavailable",
    "HubError",
    "HubBlobMissing",
    "HubEventNotFound",
    "TenantMismatch",
    "HubConflict",
    "HubAuthError",
]


class HubFailure(ContextLedgerError):
    """Base class of every hub error."""


class HubNotConfigured(HubFailure):
    """No hub was configured (no cluster file: setting, FDB_CLUSTER_FILE or --cluster-file)."""


class HubUnavailable(HubFailure):
    """The hub could not be reached or did not answer in time (retry later; the outbox keeps
    every event). Also raised when the FoundationDB client library is not installed."""


class HubError(HubFailure):
    """The hub refused an operation or holds data this version cannot read."""


class HubBlobMissing(HubError, LookupError):
    """A content blob named by an event is not (completely) on the hub."""


class HubEventNotFound(HubError, LookupError):
    """No event with that id (or cut) is on the hub."""


class TenantMismatch(HubFailure, ValueError):
    """An operation named a tenant other than the hub object's configured tenant."""


class HubConflict(HubError):
    """Event ids already on the hub with *different* content (``event_ids`` lists them).
    Nothing of the batch was written; the ids must be resolved, never overwritten."""

    def __init__(self, message: str, event_ids: list[str]) -> None:
        super().__init__(message)
        self.event_ids = list(event_ids)


class HubAuthError(HubFailure):
    """The gateway refused the token (missing, malformed, unknown, revoked, expired) or
    its scope does not allow the operation (``reason`` says which). Get a new token from
    the hub's operator (`ledger hub token create`)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class HubChainRefused(HubError):
    """The hub refused a laptop's hash chain (links that do not follow the head it holds,
    a checkpoint that does not verify, another key for a registered ledger); nothing of
    the request was stored. The message says which seq and why: run ``ledger verify``
    on the laptop, then ``ledger verify --source hub``."""
