"""Replay snapshots: the replayed tree of a project at a point of its history, kept so
replay cost is bounded by the size of the tree, not the length of the history.

An event-sourcing snapshot, never the source of truth: a snapshot holds what replaying
the project's file changes with ``seq <= snapshot.seq`` in recording order gives — the
tree ``{path: (sha256_hex, mode)}`` and the conflicts met on the way — and can be
thrown away at any time (``drop``): replay then reads events, and
``replay.snapshots.refresh`` rebuilds it. This module stores and loads them; which
tree a snapshot holds, and when one is made, is the read side's business
(``replay.snapshots``).

Stored per row (table ``replay_snapshots``, migration m014): tenant, project, ``seq``,
``changes`` (file changes applied), ``entries`` (paths in the tree), ``max_time_ns``
(latest event time among those changes), ``time_ordered`` (1 when those changes are
in event-time order, so the snapshot can also start a replay *by time*),
``state_changes`` (the project's state-change events with ``seq <= S`` when it was
saved), ``checksum`` (SHA-256 hex of the payload) and ``data``: one zstd frame of the
payload::

    {"format": 1, "conflicts": [...]} "\\n" path NUL sha256 NUL mode NUL path ...

A snapshot is written in one transaction (all or nothing). On load the checksum, the
payload's shape and the events it stands for are verified: the project must still hold
exactly ``state_changes`` state changes with ``seq <= S`` (one count on a covering
index), so events removed since (retention, ``ledger projects rm``) or moved into or
out of the project (``ledger projects mv``) make it unusable. A damaged or stale
snapshot is reported as ``None`` (the caller ignores it, and may ``drop`` it) rather
than ever producing a wrong tree. Not detected: a stored change *rewritten* in place
with other hashes (nothing in the ledger does that; code that would must ``drop``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass, field

from ledger import codec
from ledger.faults import crash_point

__all__ = ["SnapshotInfo", "Snapshot", "encode_tree", "decode_tree", "LedgerSnapshots"]

FORMAT = 1


@dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot's metadata (see the module docstring)."""

    tenant_id: str
    project_id: str
    seq: int
    changes: int
    entries: int
    max_time_ns: int
    time_ordered: bool
    state_changes: int = -1


@dataclass
class Snapshot:
    """A loaded snapshot: ``info``, the ``tree`` ``{path: (sha256_hex, mode)}`` and the
    ``conflicts`` met building it (dicts of ``replay.materialize.Conflict`` fields)."""

    info: SnapshotInfo
    tree: dict[str, tuple[str, str]]
    conflicts: list[dict] = field(default_factory=list)


def encode_tree(tree: dict[str, tuple[str, str]], conflicts: list[dict]) -> bytes:
    """The payload of a snapshot (uncompressed; see the module docstring)."""
    header = json.dumps({"format": FORMAT, "conflicts": conflicts}, separators=(",", ":")).encode()
    parts = []
    for path in sorted(tree):
        digest, mode = tree[path]
        parts += (path, digest, mode)
    return header + b"\n" + "\0".join(parts).encode("utf-8", "surrogateescape")


def decode_tree(payload: bytes) -> tuple[dict[str, tuple[str, str]], list[dict]]:
    """Inverse of ``encode_tree``. Raises ``ValueError`` when the payload is malformed."""
    header, _, body = payload.partition(b"\n")
    meta = json.loads(header)
    if meta.get("format") != FORMAT:
        raise ValueError(f"unknown snapshot format {meta.get('format')!r}")
    fields = body.decode("utf-8", "surrogateescape").split("\0") if body else []
    if len(fields) % 3:
        raise ValueError("truncated snapshot payload")
    tree = {fields[i]: (fields[i + 1], fields[i + 2]) for i in range(0, len(fields), 3)}
    return tree, list(meta.get("conflicts") or [])


_COLUMNS = "tenant_id, project_id, seq, changes, entries, max_time_ns, time_ordered, state_changes"
_COUNT_SQL = ("SELECT count(*) FROM events WHERE tenant_id = ? AND project_id = ? AND kind = 'state_change' "
              "AND seq <= ?")  # covering index events_kind (tenant_id, project_id, kind, rowid)


def _info(row) -> SnapshotInfo:
    return SnapshotInfo(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7])


class LedgerSnapshots:
    """Snapshot storage of the ``Ledger`` (a mixin of ``ledger.store.Ledger``)."""

    def snapshots(self, tenant_id: str, project_id: str) -> list[SnapshotInfo]:
        """Every stored snapshot of a project, by ``seq``."""
        with self._converted("read snapshots"):
            rows = self._conn().execute(
                f"SELECT {_COLUMNS} FROM replay_snapshots WHERE tenant_id = ? AND project_id = ? ORDER BY seq",
                (tenant_id, project_id)).fetchall()
        return [_info(r) for r in rows]

    def load_snapshot(self, info: SnapshotInfo) -> Snapshot | None:
        """The snapshot ``info`` names, verified (checksum and shape), or None when it
        is gone or damaged (never a wrong tree). Raises ``StoreError`` on SQLite failure."""
        with self._converted("read snapshot"):
            conn = self._conn()
            row = conn.execute(
                "SELECT checksum, data, state_changes FROM replay_snapshots "
                "WHERE tenant_id = ? AND project_id = ? AND seq = ?",
                (info.tenant_id, info.project_id, info.seq)).fetchone()
            if row is None or conn.execute(_COUNT_SQL, (info.tenant_id, info.project_id, info.seq)).fetchone()[0] != row[2]:
                return None  # gone, or the events it stands for changed since
        try:
            payload = codec.decompress(row[1])
            if hashlib.sha256(payload).hexdigest() != row[0]:
                return None
            tree, conflicts = decode_tree(payload)
        except Exception:  # a damaged frame or payload: the snapshot is not usable
            return None
        if len(tree) != info.entries:
            return None
        return Snapshot(info, tree, conflicts)

    def save_snapshot(self, info: SnapshotInfo, tree: dict[str, tuple[str, str]],
                      conflicts: list[dict]) -> None:
        """Store one snapshot in its own transaction (replacing one at the same
        ``seq``). Raises ``StoreError`` on SQLite failure (a read-only ledger, say)."""
        payload = encode_tree(tree, conflicts)
        data = codec.compress(payload)
        with self.write_transaction() as conn:
            state_changes = conn.execute(_COUNT_SQL, (info.tenant_id, info.project_id, info.seq)).fetchone()[0]
            conn.execute(
                "INSERT OR REPLACE INTO replay_snapshots (tenant_id, project_id, seq, changes, entries, "
                "max_time_ns, time_ordered, state_changes, checksum, data, created_ns) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (info.tenant_id, info.project_id, info.seq, info.changes, len(tree), info.max_time_ns,
                 int(info.time_ordered), state_changes, hashlib.sha256(payload).hexdigest(), data,
                 time.time_ns()))
            crash_point("snapshots.before_commit")  # the row is written, not committed

    def drop_snapshots(self, tenant_id: str, project_id: str, *, seq: int | None = None) -> int:
        """Remove a project's snapshots (only the one at ``seq`` when given); returns how
        many. Anything that rewrites stored file changes must call this (replay then
        reads events and ``replay.snapshots.refresh`` rebuilds them)."""
        where, params = "tenant_id = ? AND project_id = ?", [tenant_id, project_id]
        if seq is not None:
            where += " AND seq = ?"
            params.append(seq)
        with self.write_transaction() as conn:
            return conn.execute(f"DELETE FROM replay_snapshots WHERE {where}", params).rowcount

    def _time_safe(self, conn: sqlite3.Connection, info: SnapshotInfo) -> bool:
        """True when no event recorded after the snapshot sorts before its last change
        in event-time order (so the snapshot is a prefix of the time-ordered history)."""
        return conn.execute(
            "SELECT 1 FROM events WHERE tenant_id = ? AND project_id = ? AND time_ns < ? AND seq > ? LIMIT 1",
            (info.tenant_id, info.project_id, info.max_time_ns, info.seq)).fetchone() is None

    def usable_snapshots(self, tenant_id: str, project_id: str, *, until_seq: int | None = None,
                         until_ns: int | None = None) -> list[SnapshotInfo]:
        """Snapshots that may start a replay, nearest first: for a moment in recording
        order, those with ``seq <= until_seq``; for a moment in time, those whose
        changes are in time order, all at or before ``until_ns``, with no event recorded
        later that sorts before them (checked now: later appends may break that)."""
        if until_ns is None:
            sql = (f"SELECT {_COLUMNS} FROM replay_snapshots WHERE tenant_id = ? AND project_id = ?"
                   + (" AND seq <= ?" if until_seq is not None else "") + " ORDER BY seq DESC")
            params = [tenant_id, project_id] + ([until_seq] if until_seq is not None else [])
            with self._converted("read snapshots"):
                return [_info(r) for r in self._conn().execute(sql, params).fetchall()]
        with self._converted("read snapshots"):
            conn = self._conn()
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM replay_snapshots WHERE tenant_id = ? AND project_id = ? "
                "AND time_ordered = 1 AND max_time_ns <= ? ORDER BY seq DESC LIMIT 4",
                (tenant_id, project_id, until_ns)).fetchall()
            return [i for i in map(_info, rows) if self._time_safe(conn, i)]
