"""Multi-row INSERT statements for buffered event rows (the group commit's writer).

One ``INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING`` of many rows is one step
for SQLite: it runs without the GIL, so other threads keep working while it inserts.
Statements are made for row counts that are powers of two up to ``chunk`` rows (bounded
by SQLite's host-parameter limit), so few distinct statements get compiled.
"""

from __future__ import annotations

import itertools
import sqlite3
from typing import Callable, Sequence

#: Most buffered rows written by one multi-row INSERT statement.
MAX_ROWS_PER_STATEMENT = 256


class MultiRowInserter:
    """Writes rows (tuples whose element 0 is the key — the event id — and element
    ``body_index`` the serialized body) with ``insert_sql(n)``, an INSERT of ``n`` rows
    that skips conflicting keys; ``lookup_sql`` (one ``?``, the key) selects the stored
    body of a key. ``variable_limit``: SQLite's SQLITE_LIMIT_VARIABLE_NUMBER."""

    def __init__(self, insert_sql: Callable[[int], str], lookup_sql: str, body_index: int,
                 variable_limit: int) -> None:
        self._insert_sql = insert_sql
        self._lookup_sql = lookup_sql
        self._body_index = body_index
        self._statements: dict[int, str] = {}
        width = insert_sql(1).count("?")
        #: Rows per statement at most.
        self.chunk = max(1, min(MAX_ROWS_PER_STATEMENT, variable_limit // max(1, width)))

    def insert(self, conn: sqlite3.Connection, rows: Sequence[tuple]) -> int:
        """Insert ``rows`` in order; returns how many were inserted (rows whose key is
        already stored are skipped). Raises ``sqlite3.Error``."""
        inserted = 0
        start, total, chunk = 0, len(rows), self.chunk
        chain = itertools.chain.from_iterable
        while start < total:
            n = min(chunk, total - start)
            if n < chunk:
                n = 1 << (n.bit_length() - 1)
            sql = self._statements.get(n)
            if sql is None:
                sql = self._statements[n] = self._insert_sql(n)
            inserted += conn.execute(sql, list(chain(rows[start:start + n]))).rowcount
            start += n
        return inserted

    def refused(self, conn: sqlite3.Connection, rows: Sequence[tuple]) -> list[str]:
        """Keys of ``rows`` that are stored with a different body (or not at all) after
        an insert skipped some: the same bytes is an idempotent repeat, not a refusal."""
        out = []
        for row in rows:
            found = conn.execute(self._lookup_sql, (row[0],)).fetchone()
            if found is None or bytes(found[0]) != row[self._body_index]:
                out.append(row[0])
        return out
