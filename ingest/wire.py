"""How the ingestor hands a batch of rows to clickhouse-connect (the "wire form").

``WireFormat(ch)`` reads the ``swarm_events`` column types once; ``encode(rows)`` turns
row tuples (``ingest.rows.COLUMNS`` order) into ``(column names, ColumnData)`` for
``Analytics.insert`` (``client.insert(..., column_oriented=True, column_type_names=...)``):

* **column-oriented** — one tuple per column (``zip(*rows)``, done in the ingestor's
  read-ahead thread);
* **explicit types** — clickhouse-connect needs no ``DESCRIBE TABLE`` per INSERT;
  ``LowCardinality(String)`` columns are sent as plain ``String``: ClickHouse converts
  Native-format columns to the table's types on insert
  (``input_format_native_allow_types_conversion``, on by default since 23.x), so the
  dictionaries are built in C++ rather than by clickhouse-connect in Python;
* **all-default columns left out** — a column whose every value in the batch is its
  type's zero (``''``, ``0``, ``false``, ``[]``: e.g. the span columns of a batch without
  spans) is not sent; ClickHouse fills in exactly that value, because such a column has
  no ``DEFAULT`` expression (checked: columns with one, and Float columns, are always
  sent).

The rows stored are identical to inserting every column as it is.
"""

from __future__ import annotations

from typing import Sequence

from ingest.client import DATABASE, Analytics, ColumnData
from ingest.errors import AnalyticsSchemaError
from ingest.rows import COLUMNS

_TABLE = "swarm_events"


class WireFormat:
    """The wire form of ``analytics.swarm_events`` rows for one open database.

    Raises ``AnalyticsSchemaError`` if the table lacks a column of ``COLUMNS``.
    """

    def __init__(self, ch: Analytics, columns: Sequence[str] = COLUMNS) -> None:
        rows = ch.query(
            "SELECT name, type, default_kind FROM system.columns WHERE database = {d:String} AND table = {t:String}",
            {"d": DATABASE, "t": _TABLE}, what=f"read the {_TABLE} columns").result_rows
        found = {name: (ctype, default_kind) for name, ctype, default_kind in rows}
        missing = [c for c in columns if c not in found]
        if missing:
            raise AnalyticsSchemaError(
                f"{DATABASE}.{_TABLE} lacks the columns {', '.join(missing)}: the schema migrations of this "
                "context-ledger did not run on it (connect with migrate=True, e.g. `ledger ingest`)")
        self.names = tuple(columns)
        self.types = tuple("String" if found[c][0] == "LowCardinality(String)" else found[c][0] for c in columns)
        # Columns that may be left out when all-default: no DEFAULT expression, and not
        # Float (-0.0 is falsy too but is not the default +0.0).
        self._optional = frozenset(i for i, c in enumerate(columns)
                                   if not found[c][1] and not found[c][0].startswith("Float"))

    def encode(self, rows: Sequence[tuple]) -> tuple[list[str], ColumnData]:
        """``(column names, ColumnData)`` of ``rows`` (non-empty) for
        ``Analytics.insert``, all-default columns left out."""
        names, types, data = [], [], []
        optional = self._optional
        for i, column in enumerate(zip(*rows)):
            # every value of these types is falsy exactly when it is the type's zero
            if i in optional and not any(column):
                continue
            names.append(self.names[i])
            types.append(self.types[i])
            data.append(column)
        return names, ColumnData(data, types)
