"""Errors of replay. All derive from ``ledger.errors.LedgerError`` so the CLI shows them
as one clear line; each says what to do next."""

from ledger.errors import LedgerError

__all__ = ["ReplayError", "UnsafePath", "OutputNotEmpty", "ConflictsFound", "InconsistentTree"]


class ReplayError(LedgerError):
    """Replay could not materialize the tree; nothing was written to the output directory."""


class UnsafePath(ReplayError, ValueError):
    """A change would write outside the output directory: an absolute path, a '..'
    component, or a path that goes through a symlink restored earlier in the replay."""


class OutputNotEmpty(ReplayError, FileExistsError):
    """The output directory exists and is not empty (use --force to replace it)."""


class ConflictsFound(ReplayError):
    """``--strict``: some change did not apply cleanly to the state before it.

    ``conflicts`` holds the ``Conflict`` records.
    """

    def __init__(self, message: str, conflicts: list) -> None:
        super().__init__(message)
        self.conflicts = conflicts


class InconsistentTree(ReplayError):
    """The recorded changes do not form a tree that can exist on disk."""
