"""Which tenant may use which content: the blob store is shared by every tenant of a
ledger file (content is stored once per SHA-256), but a tenant may only reference, read
or learn of content it stored itself. Without this, tenant A could record a change
naming tenant B's SHA-256 (learned from SQL or an error) and replay B's bytes, and an
unknown hash would be an existence oracle.

A tenant owns content when one of its events was recorded with those bytes (or it
stored them ahead of its events). Functions take a connection inside the caller's
transaction.
"""

from __future__ import annotations

import sqlite3


def own(conn: sqlite3.Connection, tenant_id: str, digest: str) -> None:
    """Record that ``tenant_id`` has the content ``digest`` (idempotent)."""
    conn.execute("INSERT OR IGNORE INTO blob_owners (tenant_id, hash) VALUES (?, ?)", (tenant_id, digest))


def owns(conn: sqlite3.Connection, tenant_id: str, digest: str) -> bool:
    """True when ``tenant_id`` stored the content ``digest`` itself."""
    return conn.execute("SELECT 1 FROM blob_owners WHERE tenant_id = ? AND hash = ?",
                        (tenant_id, digest)).fetchone() is not None
