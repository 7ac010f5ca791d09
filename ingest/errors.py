"""Errors of the ClickHouse ingestor and the SQL audits.

Every error derives from ``ledger.errors.LedgerError`` (the CLI prints it as one line)
and says what to do next. Driver errors (clickhouse-connect, chdb) are converted at the
boundary (``ingest.client``) with the cause chained.
"""

from __future__ import annotations

from ledger.errors import LedgerError

__all__ = [
    "AnalyticsError",
    "AnalyticsUnavailable",
    "AnalyticsBusy",
    "AnalyticsSchemaError",
    "QueryError",
    "SqlRefused",
    "WriteRefused",
    "QueryLimitExceeded",
    "SourceError",
    "IngestError",
]


class AnalyticsError(LedgerError):
    """Base class of every analytics (ClickHouse) error."""


class AnalyticsUnavailable(AnalyticsError):
    """The ClickHouse server or the embedded chdb engine cannot be opened or reached."""


class AnalyticsBusy(AnalyticsUnavailable):
    """The embedded (chdb) analytics database is open in another process.

    chdb runs ClickHouse inside one process; its data directory serves one process at a
    time. Wait for the other process, stop it, or use a ClickHouse server.
    """


class AnalyticsSchemaError(AnalyticsError):
    """The analytics database schema is newer than this code, or a migration failed."""


class QueryError(AnalyticsError):
    """ClickHouse refused or failed a query (syntax, unknown column, ...)."""


class SqlRefused(QueryError):
    """A query was refused by the SQL sandbox (``ingest.sandbox``): it would write, read
    outside the analytics tables (files, URLs, other servers, dictionaries), change a
    setting or limit, or reach another tenant's rows."""


class WriteRefused(SqlRefused):
    """A query that would change data was refused (``ledger sql`` is read-only)."""


class QueryLimitExceeded(QueryError):
    """A query hit a resource limit of ``ledger sql`` (time, memory, result rows); the
    message names the setting that raises it."""


class SourceError(AnalyticsError):
    """The event source (local ledger or hub) could not be read."""


class IngestError(AnalyticsError):
    """Ingesting failed; the checkpoint is intact, so re-running resumes safely."""
