"""What one append transaction has learned, so the events of a batch do not ask SQLite
the same questions again (``Ledger.append_prepared``).

Inside ONE write transaction on one connection nothing else changes the ledger, so
three answers can be carried from event to event instead of re-read:

* the hash chain's head (``ledger.chain.head``): read once, then moved by each insert;
* which contents the tenant owns (``ledger.owners``): a positive answer stays true
  (ownership is only removed by erasure and retention, never inside an append);
* in a bulk transaction, the symlinks of a project's ``path_state`` (for the "no change
  below a symlink" rule of ``Ledger._check_file_change``): read once per project, then
  moved by every file change the transaction projects
  (``ledger.changes.projected_change``), exactly as the ``path_state`` rows are. A
  small transaction looks each path's parents up by key instead.

A ``BatchState`` lives for one transaction and must be dropped with it (a rolled-back
transaction leaves nothing to carry). No I/O beyond the connection given.
"""

from __future__ import annotations

import sqlite3

from ledger import chain, owners

__all__ = ["BatchState"]


class BatchState:
    """Answers carried through one append transaction of the ledger ``ledger_id``."""

    def __init__(self, ledger_id: str, *, bulk: bool = False) -> None:
        self.ledger_id = ledger_id
        self.bulk = bulk  # many events: read the project's symlinks once (``symlink_above``)
        self._head: tuple[int, bytes] | None = None
        self._owned: set[tuple[str, str]] = set()
        self._symlinks: dict[tuple[str, str], set[str]] = {}

    # -- hash chain
    def head(self, conn: sqlite3.Connection) -> tuple[int, bytes]:
        """``(seq, chain)`` of the newest link (``ledger.chain.head``), read on first use."""
        if self._head is None:
            self._head = chain.head(conn, self.ledger_id)
        return self._head

    def moved(self, seq: int, link: bytes) -> None:
        """An event was inserted at ``seq`` with chain value ``link``: the new head."""
        self._head = (seq, link)

    # -- content ownership
    def owns(self, conn: sqlite3.Connection, tenant_id: str, digest: str) -> bool:
        """``ledger.owners.owns``, remembered once true."""
        key = (tenant_id, digest)
        if key in self._owned:
            return True
        if owners.owns(conn, tenant_id, digest):
            self._owned.add(key)
            return True
        return False

    def own(self, conn: sqlite3.Connection, tenant_id: str, digest: str) -> None:
        """``ledger.owners.own`` unless already known owned."""
        key = (tenant_id, digest)
        if key not in self._owned:
            owners.own(conn, tenant_id, digest)
            self._owned.add(key)

    # -- symlinks of path_state
    def symlink_above(self, conn: sqlite3.Connection, tenant_id: str, project_id: str, path: str) -> str | None:
        """A parent directory of ``path`` that is a symlink in the project's
        ``path_state`` now, or None. A bulk transaction reads the project's symlinks once
        and moves them with ``projected``; otherwise each call looks its parents up by the
        primary key (a lone append on the hook path never reads the whole project)."""
        parents = [path[:i] for i, c in enumerate(path) if c == "/"]
        if not parents:
            return None
        key = (tenant_id, project_id)
        found = self._symlinks.get(key)
        if found is None and self.bulk:
            found = {row[0] for row in conn.execute(
                "SELECT path FROM path_state WHERE tenant_id = ? AND project_id = ? AND mode = 'symlink'", key)}
            self._symlinks[key] = found
        if found is not None:
            return next((p for p in parents if p in found), None)
        row = conn.execute(
            "SELECT path FROM path_state WHERE tenant_id = ? AND project_id = ? AND mode = 'symlink' "
            f"AND path IN ({', '.join('?' * len(parents))}) LIMIT 1", (*key, *parents)).fetchone()
        return None if row is None else row[0]

    def projected(self, tenant_id: str, project_id: str, path: str, mode: str | None) -> None:
        """``path`` of the project got ``mode`` in ``path_state`` (None: removed)."""
        found = self._symlinks.get((tenant_id, project_id))
        if found is None:
            return  # not read: a later read sees this change in path_state itself
        if mode == "symlink":
            found.add(path)
        else:
            found.discard(path)
