"""Read-only SQL against the analytics database (``ledger sql``).

Two guards, both in the ENGINE, none by matching strings in the user's text:

1. The session runs with ClickHouse's ``readonly`` setting (``readonly=1`` on chdb,
   ``2`` on a server): ClickHouse itself refuses INSERT, DROP, ALTER, CREATE, TRUNCATE,
   OPTIMIZE, table functions that write or read files and URLs (chdb), and any attempt to
   turn the setting off (``SET readonly=0``, ``SETTINGS readonly=0``).
2. Before running, the text is parsed by ClickHouse's own parser
   (``formatQuerySingleLine``), which refuses several statements at once ("Multi-statements
   are not allowed") — chdb would otherwise run ``SELECT 1; DROP ...`` as two statements —
   and gives the statement's normalized form, whose kind must be a query (SELECT/WITH,
   SHOW, DESCRIBE, EXPLAIN, EXISTS) without ``INTO OUTFILE``. This also refuses SYSTEM,
   KILL and UNDROP, which ClickHouse's readonly mode lets through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ingest.client import Analytics, connect
from ingest.errors import QueryError, WriteRefused

#: Statement kinds ``ledger sql`` runs (first keyword of the engine-normalized query).
QUERY_KINDS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS")


@dataclass
class QueryResult:
    """Columns (names and ClickHouse type names) and rows (tuples) of a query."""

    columns: list[str]
    types: list[str]
    rows: list[tuple]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def check_query(ch: Analytics, sql: str) -> str:
    """Parse ``sql`` with ClickHouse's parser; return its normalized single-line form.

    Raises ``WriteRefused`` for several statements or a statement that is not a query,
    ``QueryError`` for a syntax error.
    """
    try:
        normalized = ch.query("SELECT formatQuerySingleLine({q:String})", {"q": sql},
                              what="parse the query").result_rows[0][0]
    except QueryError as exc:
        if "Multi-statements are not allowed" in str(exc):
            raise WriteRefused(
                "`ledger sql` runs ONE read-only statement; several statements separated by ';' "
                "are refused"
            ) from exc
        raise
    kind = normalized.split(None, 1)[0].upper() if normalized.strip() else ""
    kind = kind.lstrip("(")
    if kind not in QUERY_KINDS:
        raise WriteRefused(
            f"`ledger sql` is read-only: a {kind or 'empty'} statement is refused; use SELECT, "
            "WITH, SHOW, DESCRIBE, EXPLAIN or EXISTS (data is loaded by `ledger ingest`)"
        )
    if " INTO OUTFILE " in f" {normalized.upper()} ":
        raise WriteRefused("`ledger sql` is read-only and does not write files: drop INTO OUTFILE and use --format csv > FILE")
    return normalized


def execute_readonly(ch: Analytics, sql: str, parameters: Mapping[str, Any] | None = None,
                     *, precheck: bool = True) -> QueryResult:
    """Run one query on a read-only handle (``connect(url, readonly=True)``).

    ``precheck=False`` skips guard 2 (tests use it to prove guard 1 alone refuses writes).
    Raises ``WriteRefused``/``QueryError``.
    """
    if precheck:
        check_query(ch, sql)
    result = ch.query(sql, parameters)
    return QueryResult(list(result.column_names),
                       [t.name for t in result.column_types], [tuple(r) for r in result.result_rows])


def run_readonly(url: str, sql: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
    """Open ``url`` read-only, run ``sql`` (one query, ``{name:Type}`` parameters from
    ``parameters``) and close. Tables resolve in the ``analytics`` database.
    Raises ``WriteRefused``, ``QueryError``, ``AnalyticsUnavailable``/``AnalyticsBusy``."""
    with connect(url, readonly=True) as ch:
        return execute_readonly(ch, sql, parameters)
