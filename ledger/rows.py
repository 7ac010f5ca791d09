"""How an event is stored: the columns of its ``events`` row (what queries filter on)
and the SQL that writes and reads them. No I/O here."""

from __future__ import annotations

import sqlite3
from hashlib import sha256 as _sha256
from typing import TYPE_CHECKING

from ledger.records import StoredEvent

if TYPE_CHECKING:
    from schemas import SwarmEvent

EVENT_COLUMNS = (
    "seq, event_id, time_ns, recorded_ns, tenant_id, project_id, kind, body, "
    "hub_versionstamp, sync_error, shared_from"
)


def row_to_stored(row: sqlite3.Row | tuple) -> StoredEvent:
    return StoredEvent(
        seq=row[0],
        event_id=row[1],
        time_ns=row[2],
        recorded_ns=row[3],
        tenant_id=row[4],
        project_id=row[5],
        kind=row[6],
        body=bytes(row[7]),
        hub_versionstamp=bytes(row[8]) if row[8] is not None else None,
        sync_error=row[9],
        shared_from=row[10],
    )


INSERT_COLUMNS = (
    "event_id", "time_ns", "recorded_ns", "tenant_id", "project_id", "session_id",
    "agent_id", "agent_role", "kind", "target_type", "target_path", "previous_path",
    "operation", "prev_hash", "new_hash", "file_mode", "prev_mode", "commit_hash",
    "trace_id", "span_id", "caused_by", "body", "body_bytes", "vote_target", "body_sha256", "chain",
)
INSERT_SQL = (
    f"INSERT INTO events ({', '.join(INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in INSERT_COLUMNS)}) ON CONFLICT(event_id) DO NOTHING"
)
BODY_SQL = "SELECT body FROM events WHERE event_id = ?"


def insert_rows_sql(rows: int) -> str:
    """``INSERT_SQL`` for ``rows`` rows in one statement (group commit writes)."""
    values = "(" + ", ".join("?" for _ in INSERT_COLUMNS) + ")"
    return (
        f"INSERT INTO events ({', '.join(INSERT_COLUMNS)}) VALUES "
        + ", ".join([values] * rows) + " ON CONFLICT(event_id) DO NOTHING"
    )


def event_row(event: SwarmEvent, body: bytes, recorded_ns: int) -> tuple:
    """The values of ``INSERT_COLUMNS`` for an event, in insert order (element 0 is the
    event id): the indexed columns queries filter on, the body, its size in bytes, its
    SHA-256 (32 bytes) and the chain value (``None`` here: the write transaction fills
    it in, ``ledger.chain``)."""
    sc = event.state_change
    if sc is None:
        return (
            event.event_id, event.timestamp, recorded_ns, event.tenant_id, event.project_id,
            event.session_id, event.agent_id, event.agent_role.value, event.kind,
            None, None, None, None, None, None, None, None,
            event.related_commit_hash or None, event.trace_id, event.span_id, event.caused_by,
            body, len(body), event.vote.target_event_id if event.vote is not None else None,
            _sha256(body).digest(), None,
        )
    return (
        event.event_id, event.timestamp, recorded_ns, event.tenant_id, event.project_id,
        event.session_id, event.agent_id, event.agent_role.value, "state_change",
        sc.target_type.value, sc.target_resource, sc.previous_resource or None,
        sc.operation.value, sc.previous_state_hash, sc.new_state_hash, sc.file_mode.value,
        sc.previous_file_mode.value,
        event.related_commit_hash or None, event.trace_id, event.span_id, event.caused_by,
        body, len(body), None, _sha256(body).digest(), None,
    )


def event_columns(event: SwarmEvent, body: bytes, recorded_ns: int) -> dict:
    """The indexed columns of an event row (what queries filter on), by column name:
    ``event_row`` as a dict."""
    return dict(zip(INSERT_COLUMNS, event_row(event, body, recorded_ns)))
