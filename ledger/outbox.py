"""The outbox and bookkeeping side of the ``Ledger``: unsynced events for the syncer,
their hub positions or refusals, consumers' checkpoints and the file's metadata.

A mixin of ``ledger.store.Ledger``.
"""

from __future__ import annotations

import time
from typing import Iterable

from ledger.records import StoredEvent
from ledger.rows import EVENT_COLUMNS, row_to_stored


class LedgerOutbox:
    """Outbox, checkpoints and metadata of the local ledger (see ``ledger.store.Ledger``)."""

    def pending(self, limit: int = 1000, *, after_seq: int = 0, include_refused: bool = False) -> list[StoredEvent]:
        """Unsynced events (no hub versionstamp) in recording order, oldest first.

        Events the hub refused (``sync_error`` set) are skipped unless ``include_refused``.
        """
        sql = (
            f"SELECT {EVENT_COLUMNS} FROM events WHERE hub_versionstamp IS NULL AND seq > ?"
            + ("" if include_refused else " AND sync_error IS NULL")
            + " ORDER BY seq LIMIT ?"
        )
        with self._converted("query"):
            return [row_to_stored(r) for r in self._conn().execute(sql, (after_seq, limit))]

    def mark_synced(self, synced: Iterable[tuple[int, bytes]]) -> None:
        """Record ``(seq, hub_versionstamp)`` pairs in one transaction (clears sync_error)."""
        now = time.time_ns()
        with self.write_transaction() as conn:
            conn.executemany(
                "UPDATE events SET hub_versionstamp = ?, synced_ns = ?, sync_error = NULL WHERE seq = ?",
                [(bytes(vs), now, seq) for seq, vs in synced],
            )

    def mark_sync_error(self, seq: int, message: str) -> None:
        """Record why the hub refused an event; it stays pending and visible in status."""
        with self.write_transaction() as conn:
            conn.execute("UPDATE events SET sync_error = ? WHERE seq = ?", (message, seq))

    def outbox_status(self) -> dict:
        """``{"pending": n, "refused": n, "oldest_pending_ns": ns|None, "synced": n}``."""
        with self._converted("query"):
            conn = self._conn()
            pending, oldest = conn.execute(
                "SELECT count(*), min(recorded_ns) FROM events WHERE hub_versionstamp IS NULL"
            ).fetchone()
            refused = conn.execute(
                "SELECT count(*) FROM events WHERE hub_versionstamp IS NULL AND sync_error IS NOT NULL"
            ).fetchone()[0]
            synced = conn.execute(
                "SELECT count(*) FROM events WHERE hub_versionstamp IS NOT NULL"
            ).fetchone()[0]
        return {"pending": pending, "refused": refused, "oldest_pending_ns": oldest, "synced": synced}

    def get_checkpoint(self, name: str) -> str | None:
        """A consumer's saved position, or None."""
        with self._converted("query"):
            row = self._conn().execute(
                "SELECT value FROM checkpoints WHERE name = ?", (name,)
            ).fetchone()
        return row[0] if row else None

    def set_checkpoint(self, name: str, value: str) -> None:
        """Save a consumer's position (durable on return)."""
        with self.write_transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO checkpoints (name, value, updated_ns) VALUES (?, ?, ?)",
                (name, value, time.time_ns()),
            )

    def get_meta(self, key: str) -> str | None:
        """A metadata value of this ledger file, or None."""
        with self._converted("query"):
            row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a metadata value of this ledger file."""
        with self.write_transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
