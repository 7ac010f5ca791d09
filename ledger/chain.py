"""The hash chain of a local ledger: every event commits to its predecessor.

Each stored event row carries two 32-byte values (migration ``m010_hash_chain``):

* ``body_sha256``: SHA-256 of the stored body (the serialized event exactly as written,
  i.e. after the write policies: redaction, encryption). Erasure by crypto-shredding
  destroys a key and leaves the body (ciphertext) as it is, so the chain stays valid;
* ``chain``: ``link(previous chain, body_sha256)`` = SHA-256 of ``previous || digest``.
  The first event's predecessor is ``genesis(ledger_id)``, so a chain belongs to one
  ledger.

The order is the recording order (``seq``). The link is computed in the ledger's one
write path (``Ledger._insert`` and the group commit's multi-row inserts) inside the write
transaction, from the head read in that transaction, so concurrent writers (threads,
processes) extend one chain. Events removed on purpose (retention, ``projects rm``)
leave their ``(seq, event_id, body_sha256, chain)`` in ``chain_removed``: the chain
runs through them and still verifies. Signed checkpoints over (seq, head) are in
``ledger.checkpoints``; verification in ``ledger.verify``.

No I/O here beyond the connection given.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Sequence

#: Domain separation of the genesis value (changing it would break every chain).
GENESIS_LABEL = b"context-ledger chain v1\0"

_sha256 = hashlib.sha256


def genesis(ledger_id: str) -> bytes:
    """The predecessor of a ledger's first event: SHA-256 of the label and the ledger id."""
    return _sha256(GENESIS_LABEL + ledger_id.encode()).digest()


def digest(body: bytes) -> bytes:
    """SHA-256 (32 raw bytes) of a stored event body."""
    return _sha256(body).digest()


def link(previous: bytes, body_digest: bytes) -> bytes:
    """The chain value of an event: SHA-256 of its predecessor's chain value and its
    body digest (both 32 bytes)."""
    return _sha256(previous + body_digest).digest()


# A row written around the write path (chain NULL) is skipped: the next event links over
# it, and verification names it as inserted.
# One statement for both tables (each side is one b-tree descent from the end).
_HEAD = (
    "SELECT seq, chain FROM (SELECT seq, chain FROM events WHERE chain IS NOT NULL ORDER BY seq DESC LIMIT 1) "
    "UNION ALL SELECT * FROM (SELECT seq, chain FROM chain_removed ORDER BY seq DESC LIMIT 1)"
)


def head(conn: sqlite3.Connection, ledger_id: str) -> tuple[int, bytes]:
    """``(seq, chain)`` of the newest link: the newest event, or a newer removed one;
    ``(0, genesis)`` for an empty ledger. Call inside the write transaction."""
    rows = conn.execute(_HEAD).fetchall()
    if not rows:
        return 0, genesis(ledger_id)
    row = max(rows)
    return row[0], bytes(row[1])


def seal_rows(conn: sqlite3.Connection, ledger_id: str, rows: Sequence[tuple]) -> tuple[list[tuple], int]:
    """Fill the chain value (the last element) of buffered event rows about to be
    inserted in this order (``ledger.rows.event_row`` tuples; their ``body_sha256`` is
    the element before). Returns ``(rows, seq of the head before them)``."""
    head_seq, value = head(conn, ledger_id)
    out = []
    for row in rows:
        value = _sha256(value + row[-2]).digest()
        out.append(row[:-1] + (value,))
    return out, head_seq


def rechain(conn: sqlite3.Connection, ledger_id: str, after_seq: int) -> int:
    """Recompute the chain of every link after ``after_seq`` (events and removed ones,
    in seq order) from the stored digests, updating the rows that differ. Used after a
    legitimate rewrite (a group insert that skipped rows, ``projects rename``); it does
    NOT recompute digests, so a tampered body still shows. Returns the rows updated."""
    previous = None
    if after_seq > 0:
        row = conn.execute(
            "SELECT chain FROM (SELECT seq, chain FROM events WHERE seq <= ?1 UNION ALL "
            "SELECT seq, chain FROM chain_removed WHERE seq <= ?1) ORDER BY seq DESC LIMIT 1",
            (after_seq,)).fetchone()
        previous = bytes(row[0]) if row is not None and row[0] is not None else None
    if previous is None:
        previous = genesis(ledger_id)
    rows = conn.execute(
        "SELECT seq, body_sha256, chain, 0 FROM events WHERE seq > ?1 UNION ALL "
        "SELECT seq, body_sha256, chain, 1 FROM chain_removed WHERE seq > ?1 ORDER BY seq",
        (after_seq,)).fetchall()
    updated = 0
    for seq, body_digest, stored, removed in rows:
        value = link(previous, bytes(body_digest))
        if stored is None or bytes(stored) != value:
            table = "chain_removed" if removed else "events"
            conn.execute(f"UPDATE {table} SET chain = ? WHERE seq = ?", (value, seq))
            updated += 1
        previous = value
    return updated


def remember_removed(conn: sqlite3.Connection, where: str, params: Sequence, *, reason: str, removed_ns: int) -> int:
    """Before deleting the event rows selected by ``where`` (SQL over ``events``), keep
    their links in ``chain_removed`` so the chain still verifies. Returns the count."""
    return conn.execute(
        "INSERT OR IGNORE INTO chain_removed (seq, event_id, body_sha256, chain, tenant_id, project_id, kind, "
        "removed_ns, reason) "
        f"SELECT seq, event_id, body_sha256, chain, tenant_id, project_id, kind, ?, ? FROM events WHERE {where}",
        (removed_ns, reason, *params)).rowcount


def links_after(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[tuple]:
    """Links after ``after_seq`` in seq order, at most ``limit``: ``(seq, event_id,
    tenant_id, project_id, body_sha256, chain, removed, synced, refused)`` (what the
    syncer sends the hub; ``synced``: the event has a hub position, ``refused``: the hub
    refused it)."""
    return conn.execute(
        "SELECT seq, event_id, tenant_id, project_id, body_sha256, chain, 0, hub_versionstamp IS NOT NULL, "
        "sync_error IS NOT NULL FROM events WHERE seq > ?1 UNION ALL "
        "SELECT seq, event_id, tenant_id, project_id, body_sha256, chain, 1, 0, 0 FROM chain_removed "
        "WHERE seq > ?1 ORDER BY seq LIMIT ?2", (after_seq, limit)).fetchall()
