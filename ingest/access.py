"""A ClickHouse SERVER's access control for Context Ledger: one reader user per tenant.

On a server the boundary of a tenant's SQL is the server's own access control, not this
code: the tenant's reader user (``ledger_reader_<tenant>``) has the settings profile
``ledger_reader_profile`` (readonly, limits with constraints, infrastructure/clickhouse/
users.d/ledger.xml), the grants ``SELECT ON analytics.swarm_events`` and
``analytics.schema_migrations`` only (no source privileges such as FILE, URL, REMOTE, S3,
no CREATE TEMPORARY TABLE: table functions are refused), and a row policy
``tenant_id = '<tenant>'`` on ``swarm_events``. ``ledger sql`` then connects with that
user's URL (``LEDGER_CLICKHOUSE_URL=http://ledger_reader_acme:...@host:8123``).

Why not one reader with ``tenant_id = getSetting('SQL_ledger_tenant')``: a setting is
chosen by the client, so whoever holds the reader's password could read any tenant; a
user per tenant ties the tenant to the credentials, like the hub's gateway tokens.

``python -m ingest.access TENANT`` prints the DDL (run it as an admin with
clickhouse-client --multiquery); the password is read from ``LEDGER_READER_PASSWORD`` and
only its SHA-256 is printed.
"""

from __future__ import annotations

import hashlib
import os
import sys

from ingest.sandbox import READER_TABLES, tenant_condition

#: The server's settings profile of every tenant reader (users.d/ledger.xml).
READER_PROFILE = "ledger_reader_profile"


def quote_identifier(name: str) -> str:
    """A ClickHouse identifier in backquotes (backslash and backquote escaped)."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def reader_user(tenant: str) -> str:
    """The reader user of a tenant: ``ledger_reader_<tenant>``."""
    return f"ledger_reader_{tenant}"


def tenant_reader_ddl(tenant: str, password: str, *, database: str = "analytics") -> list[str]:
    """The statements creating ``tenant``'s reader user, its grants and row policy (all
    idempotent). ``password`` is stored as its SHA-256 only."""
    condition = tenant_condition(tenant)
    user = quote_identifier(reader_user(tenant))
    digest = hashlib.sha256(password.encode()).hexdigest()
    statements = [
        f"CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_hash BY '{digest}' "
        f"DEFAULT DATABASE {database} SETTINGS PROFILE '{READER_PROFILE}'",
        f"REVOKE ALL ON *.* FROM {user}",
    ]
    statements += [f"GRANT SELECT ON {database}.{table} TO {user}" for table in READER_TABLES]
    statements.append(f"CREATE ROW POLICY OR REPLACE {quote_identifier('tenant_' + tenant)} ON "
                      f"{database}.swarm_events AS permissive FOR SELECT USING {condition} TO {user}")
    return statements


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not os.environ.get("LEDGER_READER_PASSWORD"):
        print("usage: LEDGER_READER_PASSWORD=... python -m ingest.access TENANT", file=sys.stderr)
        return 2
    for statement in tenant_reader_ddl(args[0], os.environ["LEDGER_READER_PASSWORD"]):
        print(statement + ";")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
