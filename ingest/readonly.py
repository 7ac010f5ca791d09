"""Sandboxed, read-only SQL against the analytics database (``ledger sql``, ``ledger audit``).

Every query runs for ONE tenant in the sandbox of ``ingest.sandbox``: the engine (a reader
engine or user that may only SELECT the tenant's rows of ``swarm_events``, readonly, with
time/memory/result-row limits) and ClickHouse's parser (one statement; every table, table
function and function it names is checked against allow-lists; the normalised text is
what runs). See docs/analytics.md for what each layer stops.

``open_query`` streams a result (rows read block by block); ``run_readonly`` returns it
whole. Both can first bring the analytics up to date from the local ledger
(``refresh=ledger``: an incremental ingest of the tenant, see ``ingest.ingestor.catch_up``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from ingest.client import Analytics, connect
from ingest.sandbox import Limits, check_query


@dataclass
class QueryResult:
    """Columns (names and ClickHouse type names) and rows (tuples) of a query;
    ``refreshed``: the ``IngestStats`` of the ingest run first, if any."""

    columns: list[str]
    types: list[str]
    rows: list[tuple]
    refreshed: Any = None

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


@dataclass
class StreamedResult:
    """A query result being read: ``columns``, ``types``, ``rows`` (an iterator of tuples;
    a limit hit mid-stream raises ``QueryLimitExceeded`` from it) and ``refreshed``."""

    columns: list[str]
    types: list[str]
    rows: Iterator[tuple]
    refreshed: Any = None
    normalized: str = field(default="", repr=False)


def execute_readonly(ch: Analytics, sql: str, parameters: Mapping[str, Any] | None = None,
                     *, precheck: bool = True) -> QueryResult:
    """Run one query on a sandboxed handle (``connect(url, readonly=True, tenant=...)``).

    ``precheck=False`` skips the parser layer and runs ``sql`` as given (tests use it to
    prove the engine alone refuses). Raises ``SqlRefused``/``WriteRefused``/
    ``QueryLimitExceeded``/``QueryError``.
    """
    text = check_query(ch, sql, parameters) if precheck else sql
    result = ch.query(text, parameters)
    return QueryResult(list(result.column_names), [t.name for t in result.column_types],
                       [tuple(r) for r in result.result_rows])


@contextlib.contextmanager
def open_query(url: str, sql: str, parameters: Mapping[str, Any] | None = None, *, tenant: str,
               limits: Limits | None = None, refresh=None) -> Iterator[StreamedResult]:
    """Stream one sandboxed query of ``tenant`` (``{name:Type}`` parameters from
    ``parameters``); tables resolve in the ``analytics`` database.

    ``refresh``: a ``ledger.Ledger`` to ingest the tenant's new local events from first
    (``ingest.ingestor.catch_up``); None skips it. The embedded database stays locked
    while the result is read. Raises ``SqlRefused``, ``WriteRefused``,
    ``QueryLimitExceeded``, ``QueryError``, ``AnalyticsUnavailable``/``AnalyticsBusy``.
    """
    refreshed = None
    if refresh is not None:
        from ingest.ingestor import catch_up

        refreshed = catch_up(url, refresh, tenant)
    with connect(url, readonly=True, tenant=tenant, limits=limits) as ch:
        normalized = check_query(ch, sql, parameters)
        with ch.stream(normalized, parameters) as (columns, types, rows):
            yield StreamedResult(columns, types, rows, refreshed, normalized)


def run_readonly(url: str, sql: str, parameters: Mapping[str, Any] | None = None, *, tenant: str,
                 limits: Limits | None = None, refresh=None) -> QueryResult:
    """``open_query`` read whole into a ``QueryResult``."""
    with open_query(url, sql, parameters, tenant=tenant, limits=limits, refresh=refresh) as result:
        return QueryResult(result.columns, result.types, list(result.rows), result.refreshed)
