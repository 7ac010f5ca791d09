"""Errors of git import. Every one says what went wrong and what to do; a git or
attribute failure keeps its cause chained (``raise ... from``)."""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = ["GitImportError", "InvalidGitPath", "GitAttributesError"]


class GitImportError(LedgerError):
    """git failed, the repository or revision is unusable, or its history cannot be imported."""


class InvalidGitPath(GitImportError, ValueError):
    """A path in the history is not valid UTF-8 (or not a valid relative path)."""


class GitAttributesError(GitImportError):
    """git failed while reading attributes or archiving files (the message has git's error)."""
