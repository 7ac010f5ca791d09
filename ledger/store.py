"""The local ledger: an append-only event log and blob store in one SQLite file.

SQLite runs in WAL mode. In the default ``full`` durability every append commits with
``synchronous=FULL`` before returning, so a ``kill -9`` (or power loss) right after a
record call loses nothing. Writers take the write lock up front (``BEGIN IMMEDIATE``) and
wait up to ``busy_timeout`` seconds for it, so many threads and processes can append
concurrently without ``database is locked`` failures.

Each thread gets its own connection; a ``Ledger`` may be shared between threads.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import sqlite_utils

from ledger import blobs as blobstore
from ledger.errors import (
    DuplicateEventId,
    EventNotFound,
    EventTooLarge,
    InvalidEvent,
    MissingContent,
    StoreError,
)
from ledger.changes import content_hash, is_file_change, projected_change
from ledger.migrations import migrate
from ledger.projects import pick_project
from ledger.records import Appended, ChangeRow, PathState, ProjectSummary, StoredEvent
from schemas import MAX_EVENT_BYTES, SwarmEvent

#: Seconds a writer waits for the SQLite write lock before failing.
DEFAULT_BUSY_TIMEOUT_S = 60.0

_EVENT_COLUMNS = (
    "seq, event_id, time_ns, recorded_ns, tenant_id, project_id, kind, body, "
    "hub_versionstamp, sync_error"
)


def _row_to_stored(row: sqlite3.Row | tuple) -> StoredEvent:
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
    )


def event_columns(event: SwarmEvent, body: bytes, recorded_ns: int) -> dict:
    """The indexed columns of an event row (what queries filter on)."""
    sc = event.state_change
    cols = {
        "event_id": event.event_id,
        "time_ns": event.timestamp,
        "recorded_ns": recorded_ns,
        "tenant_id": event.tenant_id,
        "project_id": event.project_id,
        "session_id": event.session_id,
        "agent_id": event.agent_id,
        "agent_role": event.agent_role.value,
        "kind": event.kind,
        "target_type": None,
        "target_path": None,
        "previous_path": None,
        "operation": None,
        "prev_hash": None,
        "new_hash": None,
        "file_mode": None,
        "prev_mode": None,
        "commit_hash": event.related_commit_hash or None,
        "trace_id": event.trace_id,
        "span_id": event.span_id,
        "caused_by": event.caused_by,
        "body": body,
        "body_bytes": len(body),
    }
    if sc is not None:
        cols.update(
            target_type=sc.target_type.value,
            target_path=sc.target_resource,
            previous_path=sc.previous_resource or None,
            operation=sc.operation.value,
            prev_hash=sc.previous_state_hash,
            new_hash=sc.new_state_hash,
            file_mode=sc.file_mode.value,
            prev_mode=sc.previous_file_mode.value,
        )
    return cols


_INSERT_COLUMNS = (
    "event_id", "time_ns", "recorded_ns", "tenant_id", "project_id", "session_id",
    "agent_id", "agent_role", "kind", "target_type", "target_path", "previous_path",
    "operation", "prev_hash", "new_hash", "file_mode", "prev_mode", "commit_hash",
    "trace_id", "span_id", "caused_by", "body", "body_bytes",
)
_INSERT_SQL = (
    f"INSERT INTO events ({', '.join(_INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _INSERT_COLUMNS)}) ON CONFLICT(event_id) DO NOTHING"
)
_BODY_SQL = "SELECT body FROM events WHERE event_id = ?"


def _insert_rows_sql(rows: int) -> str:
    """``_INSERT_SQL`` for ``rows`` rows in one statement (group commit writes)."""
    values = "(" + ", ".join("?" for _ in _INSERT_COLUMNS) + ")"
    return (
        f"INSERT INTO events ({', '.join(_INSERT_COLUMNS)}) VALUES "
        + ", ".join([values] * rows) + " ON CONFLICT(event_id) DO NOTHING"
    )


def event_row(event: SwarmEvent, body: bytes, recorded_ns: int) -> tuple:
    """The values of ``_INSERT_COLUMNS`` for an event (same as ``event_columns``, as a
    tuple in insert order; element 0 is the event id)."""
    sc = event.state_change
    if sc is None:
        return (
            event.event_id, event.timestamp, recorded_ns, event.tenant_id, event.project_id,
            event.session_id, event.agent_id, event.agent_role.value, event.kind,
            None, None, None, None, None, None, None, None,
            event.related_commit_hash or None, event.trace_id, event.span_id, event.caused_by,
            body, len(body),
        )
    return (
        event.event_id, event.timestamp, recorded_ns, event.tenant_id, event.project_id,
        event.session_id, event.agent_id, event.agent_role.value, "state_change",
        sc.target_type.value, sc.target_resource, sc.previous_resource or None,
        sc.operation.value, sc.previous_state_hash, sc.new_state_hash, sc.file_mode.value,
        sc.previous_file_mode.value,
        event.related_commit_hash or None, event.trace_id, event.span_id, event.caused_by,
        body, len(body),
    )


class _ThreadState(threading.local):
    """Per-thread state of a ``Ledger`` (class defaults: reading an unset one costs no
    AttributeError on the hot path)."""

    conn: sqlite3.Connection | None = None
    group_conn: sqlite3.Connection | None = None  # inside a group-commit write


def _not_stored(event_id: str) -> None:
    return None


class Ledger:
    """The local ledger at ``path`` (created and migrated on open).

    ``durability``: ``"full"`` fsyncs each commit (SQLite ``synchronous=FULL``);
    ``"normal"`` uses ``synchronous=NORMAL`` (WAL: survives a process crash, may lose
    the last commits on power loss); ``"group"`` batches the writes of all threads into
    shared transactions committed at most ``group_window_s`` seconds (or
    ``group_max_events`` writes) later, see ``ledger.groupcommit``: call ``flush()``
    for a durability point. Raises ``StoreError`` if the file cannot be opened.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        durability: str = "full",
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        group_window_s: float | None = None,
        group_max_events: int | None = None,
    ) -> None:
        self.path = Path(path)
        if durability not in ("full", "normal", "group"):
            raise ValueError(f"durability must be 'full', 'normal' or 'group', not {durability!r}")
        self.durability = durability
        self.busy_timeout_s = busy_timeout_s
        self._local = _ThreadState()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._group = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the ledger directory {self.path.parent}: {exc}") from exc
        with self._converted("migrate"):
            migrate(sqlite_utils.Database(self._conn()))
        if durability == "group":
            from ledger.groupcommit import DEFAULT_MAX_EVENTS, DEFAULT_WINDOW_S, GroupCommitter

            self._group = GroupCommitter(
                self._connect,
                window_s=DEFAULT_WINDOW_S if group_window_s is None else group_window_s,
                max_events=DEFAULT_MAX_EVENTS if group_max_events is None else group_max_events,
                describe=f"ledger {self.path}",
                insert_sql=_insert_rows_sql,
                lookup_sql=_BODY_SQL,
                body_index=_INSERT_COLUMNS.index("body"),
            )
        self.ledger_id = self._ensure_ledger_id()

    # ------------------------------------------------------------------ plumbing
    def _conn(self) -> sqlite3.Connection:
        override = getattr(self._local, "group_conn", None)
        if override is not None:  # inside a group-commit write: read your own writes
            return override
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        """Open one configured connection (WAL, busy timeout, synchronous). The group
        commit connection is shared by threads (serialized by its lock)."""
        try:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None,
                check_same_thread=self.durability != "group",
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"{self.path}: SQLite refused WAL mode (got {mode})")
            sync = "NORMAL" if self.durability == "normal" else "FULL"
            conn.execute(f"PRAGMA synchronous = {sync}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open ledger {self.path}: {exc}") from exc
        with self._conns_lock:
            self._all_conns.append(conn)
        return conn

    @contextlib.contextmanager
    def _converted(self, what: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._store_error(what, exc) from exc

    def _store_error(self, what: str, exc: sqlite3.Error) -> StoreError:
        hint = ""
        if "locked" in str(exc) or "busy" in str(exc):
            hint = f" (another process held the write lock for over {self.busy_timeout_s:.0f}s)"
        elif "disk" in str(exc) or "full" in str(exc):
            hint = " (free disk space and retry)"
        return StoreError(f"ledger {self.path}: {what} failed: {exc}{hint}")

    @contextlib.contextmanager
    def write_transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``); rolls back on error.

        Yields the thread's connection. Nested use joins the outer transaction.
        In ``group`` durability the write joins the open group (see ``flush()``).
        """
        if self._group is not None:
            if getattr(self._local, "group_conn", None) is not None:
                yield self._local.group_conn  # nested: already inside the group write
                return
            with self._group.transaction() as conn:
                self._local.group_conn = conn
                try:
                    yield conn
                finally:
                    self._local.group_conn = None
            return
        conn = self._conn()
        if conn.in_transaction:
            yield conn
            return
        with self._converted("write"):
            conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            with self._converted("commit"):
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def flush(self) -> None:
        """Make every write made before this call durable (``group`` durability commits
        the open group; in other modes writes are already committed on return).
        Raises ``StoreError`` if a group failed to commit."""
        if self._group is not None:
            self._group.flush()

    def close(self) -> None:
        """Flush, then close every connection this object opened (safe to call twice)."""
        if self._group is not None:
            self._group.close()
        with self._conns_lock:
            for conn in self._all_conns:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all_conns.clear()
        self._local = _ThreadState()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _ensure_ledger_id(self) -> str:
        row = self._conn().execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchone()
        if row:  # the common case: no write lock needed to open an existing ledger
            return row[0]
        with self.write_transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'ledger_id'").fetchone()
            if row:
                return row[0]
            value = str(uuid.uuid4())
            conn.execute("INSERT INTO meta (key, value) VALUES ('ledger_id', ?)", (value,))
            return value

    # ------------------------------------------------------------------ writes
    def append(self, event: SwarmEvent, blobs: Mapping[str, bytes] | None = None) -> Appended:
        """Append one event (and the content it names) atomically; durable on return.

        ``blobs`` maps SHA-256 hex to bytes. A file state change whose ``new_state_hash``
        is neither in ``blobs`` nor already stored raises ``MissingContent``. Appending
        an event whose id exists with the same bytes is a no-op (``inserted=False``);
        with different bytes it raises ``DuplicateEventId``. Raises ``EventTooLarge``
        over ``MAX_EVENT_BYTES`` and ``StoreError`` on SQLite failure.
        """
        return self.append_many([event], blobs)[0]

    def append_many(
        self, events: Sequence[SwarmEvent], blobs: Mapping[str, bytes] | None = None
    ) -> list[Appended]:
        """Append events in order in ONE transaction: all are written or none.

        Same rules as ``append``.
        """
        prepared = [self._prepare(e) for e in events]
        blobs = dict(blobs or {})
        for digest, data in blobs.items():
            if blobstore.sha256_hex(data) != digest:
                raise InvalidEvent(f"content given for {digest} hashes to {blobstore.sha256_hex(data)}")
        group = self._group
        if (
            group is not None and len(prepared) == 1 and not is_file_change(prepared[0][0])
            and getattr(self._local, "group_conn", None) is None
        ):  # one INSERT is atomic by itself: join the group without a savepoint
            event, body = prepared[0]
            with self._converted("append"):
                return [group.run(lambda conn: self._insert(conn, event, body, blobs))]
        with self.write_transaction() as conn:
            return [self._insert(conn, e, body, blobs) for e, body in prepared]

    def submit(
        self, event: SwarmEvent, blobs: Mapping[str, bytes] | None = None, *, new_id: bool = False
    ) -> bool:
        """Append one event without waiting for its ``seq``: True if it was new, False
        if the same event (same id, same bytes) is already in the ledger.

        Same checks and errors as ``append``, raised here in the caller. In ``group``
        durability an event that touches no file state (all but file state changes,
        given without ``blobs``) is checked now — its size (``EventTooLarge``) and its
        id against the ledger and the open group (``DuplicateEventId`` with different
        bytes) — then buffered and written with its group (multi-row ``INSERT``):
        durable after ``flush()``; a failed group commit is raised (``StoreError``) by
        the next write or ``flush()`` (see ``ledger.groupcommit``). Otherwise this is
        ``append`` (durable on return in ``full`` durability).

        ``new_id=True`` says the caller made ``event.event_id`` itself just now with
        ``schemas.new_event_id()`` (a UUIDv7 with 74 random or counter bits: no stored
        event can have it), so the lookup of the id among committed events is skipped;
        the open group is still checked, and a clash found at commit would be reported
        like a commit failure (nothing is overwritten).
        """
        group = self._group
        if (
            group is None or blobs or is_file_change(event)
            or getattr(self._local, "group_conn", None) is not None
        ):
            return self.append(event, blobs).inserted
        body = event.to_bytes()
        if len(body) > MAX_EVENT_BYTES:
            self._prepare(event)  # raises EventTooLarge
        try:
            existing = group.buffer(
                event.event_id, body, event_row(event, body, time.time_ns()),
                _not_stored if new_id else self._stored_body,
            )
        except sqlite3.Error as exc:
            raise self._store_error("append", exc) from exc
        if existing is None:
            return True
        if existing != body:
            raise DuplicateEventId(
                f"event id {event.event_id} already exists with different content; "
                "event ids are idempotency keys: make a new id for a new event"
            )
        return False

    def _stored_body(self, event_id: str) -> bytes | None:
        row = self._conn().execute(_BODY_SQL, (event_id,)).fetchone()
        return bytes(row[0]) if row is not None else None

    @staticmethod
    def _prepare(event: SwarmEvent) -> tuple[SwarmEvent, bytes]:
        body = event.to_bytes()
        if len(body) > MAX_EVENT_BYTES:
            raise EventTooLarge(
                f"event {event.event_id}: {len(body):,} bytes serialized exceeds the "
                f"{MAX_EVENT_BYTES:,}-byte limit; store large content as a file change "
                "(content goes to the blob store) or shorten diff_patch/message text"
            )
        return event, body

    def _insert(
        self, conn: sqlite3.Connection, event: SwarmEvent, body: bytes, blobs: Mapping[str, bytes]
    ) -> Appended:
        digest = content_hash(event)
        if digest is not None:
            data = blobs.get(digest)
            if data is not None:
                blobstore.put(conn, data, digest)
            elif not blobstore.exists(conn, digest):
                raise MissingContent(
                    f"event {event.event_id}: content {digest} of "
                    f"{event.state_change.target_resource!r} is not in the blob store; pass its bytes"
                )
        cur = conn.execute(_INSERT_SQL, event_row(event, body, time.time_ns()))
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
        if is_file_change(event):
            self._project_path_state(conn, event, seq)
        if self._group is not None:  # lets group-mode submit() see this uncommitted id
            self._group.note(event.event_id, body)
        return Appended(seq=seq, event_id=event.event_id, inserted=True)

    @staticmethod
    def _project_path_state(conn: sqlite3.Connection, event: SwarmEvent, seq: int) -> None:
        """Move the ``path_state`` projection by one file change (``ledger.changes.projected``)."""
        key = (event.tenant_id, event.project_id)
        for path, state in projected_change(event.state_change):
            if state is None:
                conn.execute(
                    "DELETE FROM path_state WHERE tenant_id=? AND project_id=? AND path=?", (*key, path))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO path_state (tenant_id, project_id, path, hash, mode, seq) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (*key, path, state[0], state[1], seq))

    def record_with_state(
        self,
        tenant_id: str,
        project_id: str,
        paths: Sequence[str],
        build: Callable[[dict[str, PathState | None]], tuple[SwarmEvent, Mapping[str, bytes]]],
    ) -> Appended:
        """Read the current state of ``paths`` and append what ``build`` makes of it,
        in one write transaction (no other writer can change those paths in between).

        ``build`` gets ``{path: PathState | None}`` and returns ``(event, blobs)``.
        """
        with self.write_transaction() as conn:
            states = {p: self._path_state(conn, tenant_id, project_id, p) for p in paths}
            event, blobs = build(states)
            prepared, body = self._prepare(event)
            for digest, data in blobs.items():
                if blobstore.sha256_hex(data) != digest:
                    raise InvalidEvent(f"content given for {digest} hashes differently")
            return self._insert(conn, prepared, body, blobs)

    def put_blob(self, data: bytes) -> str:
        """Store content (once per SHA-256); returns its SHA-256 hex."""
        with self.write_transaction() as conn:
            return blobstore.put(conn, data)

    def put_blobs(self, blobs: Mapping[str, bytes]) -> int:
        """Store contents ahead of the events that name them, in one transaction
        (``{sha256_hex: bytes}``; each is checked against its key). An orphan blob is
        harmless; this lets a producer bound the memory of a huge batch. Returns the
        number of blobs that were new. Raises ``InvalidEvent`` when a content does not
        hash to its key, ``StoreError`` on SQLite failure."""
        for digest, data in blobs.items():
            if blobstore.sha256_hex(data) != digest:
                raise InvalidEvent(f"content given for {digest} hashes to {blobstore.sha256_hex(data)}")
        new = 0
        with self.write_transaction() as conn:
            for digest, data in blobs.items():
                if not blobstore.exists(conn, digest):
                    blobstore.put(conn, data, digest)
                    new += 1
        return new

    # ------------------------------------------------------------------ reads
    def get_blob(self, digest: str) -> bytes:
        """Content by SHA-256 hex. Raises ``BlobNotFound``; ``StoreError`` if corrupt."""
        with self._converted("read blob"):
            return blobstore.get(self._conn(), digest)

    def has_blob(self, digest: str) -> bool:
        """True if content with that SHA-256 hex is stored."""
        with self._converted("read blob"):
            return blobstore.exists(self._conn(), digest)

    def _path_state(self, conn, tenant_id: str, project_id: str, path: str) -> PathState | None:
        row = conn.execute(
            "SELECT hash, mode FROM path_state WHERE tenant_id=? AND project_id=? AND path=?",
            (tenant_id, project_id, path),
        ).fetchone()
        return PathState(path=path, hash=row[0], mode=row[1]) if row else None

    def path_state(self, tenant_id: str, project_id: str, path: str) -> PathState | None:
        """The current (last recorded) content hash and mode of ``path``, or None."""
        with self._converted("read"):
            return self._path_state(self._conn(), tenant_id, project_id, path)

    def current_tree(self, tenant_id: str, project_id: str) -> dict[str, PathState]:
        """Every path of the recording-order projection: ``{path: PathState}``."""
        with self._converted("read"):
            rows = self._conn().execute(
                "SELECT path, hash, mode FROM path_state WHERE tenant_id=? AND project_id=?",
                (tenant_id, project_id),
            )
            return {r[0]: PathState(path=r[0], hash=r[1], mode=r[2]) for r in rows}

    def get(self, event_id: str, *, tenant_id: str | None = None) -> StoredEvent:
        """The event with that id, or a unique id prefix (8+ characters).

        With ``tenant_id``, an event of another tenant is treated as absent (tenant
        isolation: callers acting for a tenant never read another's events).
        Raises ``EventNotFound`` (also when a prefix matches several events).
        """
        conn = self._conn()
        with self._converted("read"):
            row = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id = ?", (event_id,)
            ).fetchone()
            if row is None and len(event_id) >= 8:
                rows = conn.execute(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id >= ? AND event_id < ? LIMIT 2",
                    (event_id, event_id + "\uffff"),
                ).fetchall()
                if len(rows) > 1:
                    raise EventNotFound(f"event id prefix {event_id!r} is ambiguous: give more characters")
                row = rows[0] if rows else None
        if row is None or (tenant_id is not None and row[4] != tenant_id):
            raise EventNotFound(f"no event {event_id!r} in {self.path} (see `ledger log`)")
        return _row_to_stored(row)

    def events(
        self,
        *,
        tenant_id: str | None = None,
        project_id: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        path: str | None = None,
        agent_id: str | None = None,
        kind: str | None = None,
        commit: str | None = None,
        session_id: str | None = None,
        after_seq: int | None = None,
        until_seq: int | None = None,
        limit: int | None = None,
        order: str = "time",
        descending: bool = False,
    ) -> Iterator[StoredEvent]:
        """Query events; every filter is optional and they combine with AND.

        Times are int nanoseconds since the epoch (``since_ns`` inclusive, ``until_ns``
        inclusive). ``path`` matches a state change's path or its rename source, or
        everything under it when it ends with '/'. ``commit`` matches a commit-hash prefix.
        ``order``: ``"time"`` (event time, then seq) or ``"seq"`` (recording order).
        """
        where, params = [], []

        def add(clause: str, *values) -> None:
            where.append(clause)
            params.extend(values)

        if tenant_id is not None:
            add("tenant_id = ?", tenant_id)
        if project_id is not None:
            add("project_id = ?", project_id)
        if since_ns is not None:
            add("time_ns >= ?", since_ns)
        if until_ns is not None:
            add("time_ns <= ?", until_ns)
        if path is not None:
            if path.endswith("/"):
                add("(substr(target_path, 1, ?) = ? OR substr(previous_path, 1, ?) = ?)",
                    len(path), path, len(path), path)
            else:
                add("(target_path = ? OR previous_path = ?)", path, path)
        if agent_id is not None:
            add("agent_id = ?", agent_id)
        if kind is not None:
            add("kind = ?", kind)
        if commit is not None:
            add("commit_hash >= ? AND commit_hash < ?", commit, commit + "g")
        if session_id is not None:
            add("session_id = ?", session_id)
        if after_seq is not None:
            add("seq > ?", after_seq)
        if until_seq is not None:
            add("seq <= ?", until_seq)
        direction = "DESC" if descending else "ASC"
        order_by = f"time_ns {direction}, seq {direction}" if order == "time" else f"seq {direction}"
        sql = f"SELECT {_EVENT_COLUMNS} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order_by}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._converted("query"):
            cursor = self._conn().execute(sql, params)
            while True:
                rows = cursor.fetchmany(1000)
                if not rows:
                    break
                for row in rows:
                    yield _row_to_stored(row)

    def changes(
        self,
        tenant_id: str,
        project_id: str,
        *,
        until_ns: int | None = None,
        until_seq: int | None = None,
        order: str = "time",
    ) -> Iterator[ChangeRow]:
        """File state changes of a project reduced to replay's needs, in ``order``:
        ``"time"`` (event time, ties by seq) or ``"seq"`` (recording order).

        ``until_ns``/``until_seq`` are inclusive cut-offs.
        """
        where = ["tenant_id = ?", "project_id = ?", "kind = 'state_change'", "target_type = 'file'"]
        params: list = [tenant_id, project_id]
        if until_ns is not None:
            where.append("time_ns <= ?")
            params.append(until_ns)
        if until_seq is not None:
            where.append("seq <= ?")
            params.append(until_seq)
        order_by = "time_ns, seq" if order == "time" else "seq"
        sql = (
            "SELECT event_id, time_ns, seq, operation, target_path, previous_path, prev_hash, "
            "new_hash, file_mode, prev_mode, commit_hash FROM events WHERE "
            + " AND ".join(where)
            + f" ORDER BY {order_by}"
        )
        with self._converted("query"):
            cursor = self._conn().execute(sql, params)
            while True:
                rows = cursor.fetchmany(2000)
                if not rows:
                    break
                for r in rows:
                    yield ChangeRow(
                        event_id=r[0], time_ns=r[1], order=r[2], operation=r[3], path=r[4],
                        previous_path=r[5] or "", prev_hash=r[6] or "", new_hash=r[7] or "",
                        mode=r[8] or "", prev_mode=r[9] or "", commit_hash=r[10] or "",
                    )

    def projects(self) -> list[ProjectSummary]:
        """Every tenant/project in the ledger with its event count and time range."""
        with self._converted("query"):
            rows = self._conn().execute(
                "SELECT tenant_id, project_id, count(*), min(time_ns), max(time_ns) "
                "FROM events GROUP BY tenant_id, project_id ORDER BY tenant_id, project_id"
            ).fetchall()
        return [ProjectSummary(*r) for r in rows]

    def resolve_project(self, tenant_id: str, project_id: str | None) -> str:
        """The project to use: ``project_id`` if it has events, else the tenant's only one.

        Raises ``ProjectNotFound`` or ``AmbiguousProject`` (listing the choices).
        """
        names = [p.project_id for p in self.projects() if p.tenant_id == tenant_id]
        return pick_project(names, project_id, tenant_id=tenant_id, where=str(self.path),
                            empty_hint="record some first (`ledger import git REPO` or the nervous_system SDK)")

    def commits(self, tenant_id: str, project_id: str, prefix: str) -> list[tuple[str, int, int]]:
        """Commits recorded in events whose hash starts with ``prefix``:
        ``[(commit_hash, last_seq, last_time_ns)]`` (one row per distinct commit)."""
        with self._converted("query"):
            return [
                tuple(r)
                for r in self._conn().execute(
                    "SELECT commit_hash, max(seq), max(time_ns) FROM events "
                    "WHERE tenant_id=? AND project_id=? AND commit_hash >= ? AND commit_hash < ? "
                    "GROUP BY commit_hash",
                    (tenant_id, project_id, prefix, prefix + "g"),
                )
            ]

    def count(self, **filters) -> int:
        """Number of events matching the same filters as ``events`` (tenant_id, project_id, kind)."""
        where, params = [], []
        for col in ("tenant_id", "project_id", "kind", "agent_id"):
            if filters.get(col) is not None:
                where.append(f"{col} = ?")
                params.append(filters[col])
        sql = "SELECT count(*) FROM events" + (" WHERE " + " AND ".join(where) if where else "")
        with self._converted("query"):
            return self._conn().execute(sql, params).fetchone()[0]

    def max_seq(self) -> int:
        """Highest local sequence number (0 when empty)."""
        with self._converted("query"):
            return self._conn().execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]

    def event_rows(self, after_seq: int = 0, limit: int = 10_000) -> list[tuple[int, bytes, bytes | None, int]]:
        """The lean read path for bulk consumers (the analytics ingestor): up to ``limit``
        events with ``seq > after_seq`` in recording order, as plain tuples
        ``(seq, body, hub_versionstamp or None, recorded_ns)`` — ``body`` the stored
        protobuf bytes, ``recorded_ns`` int nanoseconds. No ``StoredEvent`` objects are
        built (several times cheaper per event than ``events()``). Raises ``StoreError``.
        """
        with self._converted("query"):
            return self._conn().execute(
                "SELECT seq, body, hub_versionstamp, recorded_ns FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, int(limit)),
            ).fetchall()

    # ------------------------------------------------------------------ outbox
    def pending(self, limit: int = 1000, *, after_seq: int = 0, include_refused: bool = False) -> list[StoredEvent]:
        """Unsynced events (no hub versionstamp) in recording order, oldest first.

        Events the hub refused (``sync_error`` set) are skipped unless ``include_refused``.
        """
        sql = (
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE hub_versionstamp IS NULL AND seq > ?"
            + ("" if include_refused else " AND sync_error IS NULL")
            + " ORDER BY seq LIMIT ?"
        )
        with self._converted("query"):
            return [_row_to_stored(r) for r in self._conn().execute(sql, (after_seq, limit))]

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

    # ------------------------------------------------------------------ checkpoints
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


def open_ledger(settings=None, **overrides) -> Ledger:
    """Open (and migrate) the ledger named by settings (see ``ledger.config``)."""
    from ledger.config import load_settings

    settings = settings or load_settings(**overrides)
    return Ledger(settings.ledger_path, durability=settings.durability)

