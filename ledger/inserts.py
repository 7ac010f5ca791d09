"""The insert step of the ``Ledger``: one prepared event into the open write
transaction, with the content it names, its hash-chain link, the record-time checks
(symlinks) and the ``path_state`` projection; the chain's checkpoints.

A mixin of ``ledger.store.Ledger`` (like ``ledger.reads``): ``append_prepared``,
``record_with_state`` and the group commit call it inside their transactions. What one
transaction learns is carried from event to event in a ``ledger.batchstate.BatchState``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import TYPE_CHECKING, Mapping, Sequence

from ledger import blobs as blobstore
from ledger import chain, checkpoints, keys
from ledger.batchstate import BatchState
from ledger.changes import content_hash, is_file_change, projected_change
from ledger.errors import DuplicateEventId, InvalidEvent, MissingContent
from ledger.records import Appended
from ledger.rows import INSERT_SQL, event_row
from schemas.enums import FileMode, Operation
from schemas.paths import check_symlink

if TYPE_CHECKING:
    from schemas import SwarmEvent

__all__ = ["LedgerInserts"]


class LedgerInserts:
    """The insert step of ``ledger.store.Ledger`` (uses its ``ledger_id``, ``path`` and
    group committer)."""

    def _insert(
        self, conn: sqlite3.Connection, event: SwarmEvent, body: bytes, blobs: Mapping[str, bytes],
        state: BatchState | None = None,
    ) -> Appended:
        """Insert one prepared event (inside the caller's transaction) with the content it
        names. ``state`` carries what earlier inserts of the same transaction learned
        (``ledger.batchstate``); None for a lone insert."""
        state = state if state is not None else BatchState(self.ledger_id)
        digest = content_hash(event)
        if digest is not None:
            data = blobs.get(digest)
            if data is not None:
                previous = event.state_change.previous_state_hash or None
                if previous is not None and not state.owns(conn, event.tenant_id, previous):
                    previous = None  # a delta base is only ever content this tenant stored
                blobstore.put(conn, data, digest, previous=previous,
                              previous_data=blobs.get(previous) if previous else None)
                state.own(conn, event.tenant_id, digest)
            elif not state.owns(conn, event.tenant_id, digest) or not blobstore.exists(conn, digest):
                raise MissingContent(
                    f"event {event.event_id}: content {digest} of "
                    f"{event.state_change.target_resource!r} is not in the blob store; pass its bytes"
                )
        if is_file_change(event):
            self._check_file_change(conn, event, blobs, state)
        row = event_row(event, body, time.time_ns())
        head_seq, previous = state.head(conn)
        link = chain.link(previous, row[-2])
        cur = conn.execute(INSERT_SQL, row[:-1] + (link,))
        if cur.rowcount == 0:
            row = conn.execute(
                "SELECT seq, body FROM events WHERE event_id = ?", (event.event_id,)
            ).fetchone()
            if bytes(row[1]) != body:
                raise DuplicateEventId(
                    f"event id {event.event_id} already exists with different content; "
                    "event ids are idempotency keys: make a new id for a new event"
                )
            return Appended(seq=row[0], event_id=event.event_id, inserted=False)
        seq = cur.lastrowid
        state.moved(seq, link)
        if is_file_change(event):
            self._project_path_state(conn, event, seq, state)
        if checkpoints.due(head_seq, seq):
            self._write_checkpoint(conn)
        if self._group is not None:  # lets group-mode submit() see this uncommitted id
            self._group.note(event.event_id, body)
        return Appended(seq=seq, event_id=event.event_id, inserted=True)

    # ------------------------------------------------------------------ hash chain
    def _seal_rows(self, conn: sqlite3.Connection, rows: Sequence[tuple]) -> tuple[list[tuple], int]:
        """Group commit: chain buffered rows about to be inserted (``ledger.chain``)."""
        return chain.seal_rows(conn, self.ledger_id, rows)

    def _sealed_rows(self, conn: sqlite3.Connection, head_seq: int, rows: Sequence[tuple], inserted: int) -> None:
        """Group commit, after the insert: repair the links if some rows were skipped
        (ids stored meanwhile by another process), write a checkpoint when due."""
        if inserted != len(rows):
            chain.rechain(conn, self.ledger_id, head_seq)
        if inserted and checkpoints.due(head_seq, head_seq + inserted):
            self._write_checkpoint(conn)

    def _write_checkpoint(self, conn: sqlite3.Connection) -> "checkpoints.Checkpoint | None":
        """Sign and store a checkpoint of the current head (inside the write). A key that
        cannot be read or made costs the checkpoint, never the write (logged)."""
        seq, head = chain.head(conn, self.ledger_id)
        if seq == 0:
            return None
        try:
            cp = checkpoints.sign(self.path, self.ledger_id, seq, head)
        except (OSError, ValueError) as exc:
            logging.getLogger(__name__).warning(
                "ledger %s: checkpoint at seq %d not signed: %s (check %s)", self.path, seq, exc,
                keys.key_path(self.path))
            return None
        checkpoints.store(conn, cp)
        return cp

    def checkpoint(self) -> "checkpoints.Checkpoint | None":
        """Sign a checkpoint of the chain's head now (``ledger.checkpoints``); None for an
        empty ledger. Raises ``StoreError``."""
        with self.write_transaction() as conn:
            return self._write_checkpoint(conn)

    def _check_file_change(self, conn: sqlite3.Connection, event: SwarmEvent,
                           blobs: Mapping[str, bytes], state: BatchState) -> None:
        """Refuse, at record time, what replay would refuse later (so one event can never
        block a project's history): a symlink whose target is empty, has a NUL or is too
        long, or has a name git refuses (``schemas.paths.check_symlink``); and a change of
        a path below a path that is a symlink at that moment (writing through it could
        leave the work tree). Raises ``InvalidEvent``."""
        sc = event.state_change
        if sc.file_mode == FileMode.SYMLINK and sc.operation != Operation.DELETE:
            target = blobs.get(sc.new_state_hash)
            if target is None:
                target = blobstore.get(conn, sc.new_state_hash)
            try:
                check_symlink(sc.target_resource, target)
            except ValueError as exc:
                raise InvalidEvent(f"event {event.event_id}: {exc}") from None
        for path in (sc.target_resource, sc.previous_resource):
            below = state.symlink_above(conn, event.tenant_id, event.project_id, path)
            if below is not None:
                raise InvalidEvent(
                    f"event {event.event_id}: {path!r} is below {below!r}, which is a symlink at this "
                    "moment; a change through a symlink could write outside the work tree (record the "
                    "symlink's delete first)")

    @staticmethod
    def _project_path_state(conn: sqlite3.Connection, event: SwarmEvent, seq: int, batch: BatchState) -> None:
        """Move the ``path_state`` projection by one file change (``ledger.changes.projected``)."""
        key = (event.tenant_id, event.project_id)
        for path, state in projected_change(event.state_change):
            batch.projected(*key, path, None if state is None else state[1])
            if state is None:
                conn.execute(
                    "DELETE FROM path_state WHERE tenant_id=? AND project_id=? AND path=?", (*key, path))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO path_state (tenant_id, project_id, path, hash, mode, seq) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (*key, path, state[0], state[1], seq))
