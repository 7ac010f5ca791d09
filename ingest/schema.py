"""Schema migrations of the analytics database (plain SQL files in ``ingest/sql/``).

Each file ``NNNN_name.sql`` is one migration: statements separated by ``;`` at the end of
a line, every one idempotent (``IF NOT EXISTS``) so that a crash between running a file
and recording it only re-runs harmless statements. Applied versions are recorded in
``analytics.schema_migrations``. Files are never edited once shipped; a schema change is
a new file. The same files initialise a ClickHouse server (infrastructure/clickhouse).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import AnalyticsSchemaError, QueryError

#: Folder of the DDL files.
SQL_DIR = Path(__file__).resolve().parent / "sql"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One DDL file: its version number, name and statements."""

    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(text: str) -> list[str]:
    """Split SQL text into statements at ``;`` ending a line; ``--`` comment lines dropped."""
    statements, current = [], []
    for line in text.splitlines():
        if line.strip().startswith("--"):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(current).strip().rstrip(";").strip()
            if stmt:
                statements.append(stmt)
            current = []
    rest = "\n".join(current).strip()
    if rest:
        statements.append(rest)
    return statements


def migrations() -> list[Migration]:
    """Every migration file, in version order."""
    found = []
    for path in sorted(SQL_DIR.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise AnalyticsSchemaError(f"{path}: migration files are named NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), tuple(split_statements(path.read_text()))))
    return found


def applied_versions(analytics) -> set[int]:
    """Versions recorded in ``analytics.schema_migrations`` (empty if it does not exist)."""
    rows = analytics.query(
        "SELECT count() FROM system.tables WHERE database = 'analytics' AND name = 'schema_migrations'",
        what="read the migrations table").result_rows
    if not rows[0][0]:
        return set()
    return {r[0] for r in analytics.query("SELECT DISTINCT version FROM analytics.schema_migrations",
                                          what="read the migrations table").result_rows}


def migrate(analytics) -> list[int]:
    """Apply every migration not yet recorded; returns the versions applied now.

    Raises ``AnalyticsSchemaError`` when the database has a version this code does not
    know (written by a newer context-ledger) or a statement fails.
    """
    known = migrations()
    done = applied_versions(analytics)
    newest = max(m.version for m in known)
    unknown = sorted(v for v in done if v > newest)
    if unknown:
        raise AnalyticsSchemaError(
            f"the analytics database has schema version {unknown[-1]}, newer than this "
            f"context-ledger knows ({newest}); upgrade context-ledger"
        )
    applied = []
    for migration in known:
        if migration.version in done:
            continue
        for stmt in migration.statements:
            try:
                analytics.command(stmt, what=f"migration {migration.version:04d}_{migration.name}")
            except QueryError as exc:
                raise AnalyticsSchemaError(str(exc)) from exc
        analytics.insert("schema_migrations", [(migration.version, migration.name)],
                         ["version", "name"], what="record a migration")
        applied.append(migration.version)
    return applied
