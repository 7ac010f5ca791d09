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
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, Sequence


from ledger import blobs as blobstore
from ledger import owners
from ledger.batchstate import BatchState
from ledger.errors import (
    DuplicateEventId,
    ContentTooLarge,
    EventTooLarge,
    InvalidEvent,
    StoreError,
)
from ledger.changes import content_hash, is_file_change
from ledger.inserts import LedgerInserts
from ledger.migrations import migrate
from ledger.policies import Pipeline, WritePolicy, default_policies
from ledger.outbox import LedgerOutbox
from ledger.reads import LedgerReads
from ledger.registry import LedgerRegistry
from ledger.snapshots import LedgerSnapshots
from ledger.records import Appended, PathState, Prepared
from ledger.rows import BODY_SQL, INSERT_COLUMNS, event_row, insert_rows_sql
from schemas.limits import MAX_CONTENT_BYTES, MAX_EVENT_BYTES

if TYPE_CHECKING:  # pydantic loads on the first write or decode, not on open
    from ledger.config import Settings
    from schemas import SwarmEvent

#: Seconds a writer waits for the SQLite write lock before failing.
DEFAULT_BUSY_TIMEOUT_S = 60.0
#: A bulk append (at least ``BULK_EVENTS`` events in one transaction, e.g. ``ledger
#: import git``) gives its thread's connection a page cache of ``BULK_CACHE_KIB`` KiB
#: instead of SQLite's default 2 MiB: its inserts land all over the indexes of random
#: keys (event ids, SHA-256 hashes), and on git/git's 119k events the larger cache cut
#: the import from 121 to 112 s. Other connections keep the default.
BULK_EVENTS = 1000
BULK_CACHE_KIB = 64 * 1024


def _check_contents(blobs: Mapping[str, bytes]) -> None:
    """Refuse content that does not hash to the SHA-256 hex it is given under."""
    for digest, data in blobs.items():
        actual = blobstore.sha256_hex(data)
        if actual != digest:
            raise InvalidEvent(f"content given for {digest} hashes to {actual}")


class _ThreadState(threading.local):
    """Per-thread state of a ``Ledger`` (class defaults: reading an unset one costs no
    AttributeError on the hot path)."""

    conn: sqlite3.Connection | None = None
    group_conn: sqlite3.Connection | None = None  # inside a group-commit write
    bulk_cache: bool = False  # this thread's connection has the bulk page cache (BULK_CACHE_KIB)


def _not_stored(event_id: str) -> None:
    return None


class Ledger(LedgerInserts, LedgerReads, LedgerOutbox, LedgerRegistry, LedgerSnapshots):
    """The local ledger at ``path`` (created and migrated on open).

    ``durability``: ``"full"`` fsyncs each commit (SQLite ``synchronous=FULL``);
    ``"normal"`` uses ``synchronous=NORMAL`` (WAL: survives a process crash, may lose
    the last commits on power loss); ``"group"`` batches the writes of all threads into
    shared transactions committed at most ``group_window_s`` seconds (or
    ``group_max_events`` writes) later, see ``ledger.groupcommit``: call ``flush()``
    for a durability point. ``policies``: the write pipeline every event goes through
    before it is stored (``ledger.policies``); None (the default) means
    ``ledger.policies.default_policies(settings)`` — redaction of secrets and withholding of
    secret files' content, per the ``redact*``/``secret_files*`` settings (``settings``:
    a ``ledger.config.Settings``, loaded when None) — and ``()`` means none. The pipeline
    is built on the first write (``pipeline``): a process that only reads (``ledger
    replay``, ``log``) never loads the settings or builds the secret detectors. Raises
    ``StoreError`` if the file cannot be opened; ``ConfigError`` for invalid redaction
    settings on the first write.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        durability: str = "full",
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        group_window_s: float | None = None,
        group_max_events: int | None = None,
        policies: Sequence[WritePolicy] | None = None,
        settings: "Settings | None" = None,
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
        self._policies = None if policies is None else tuple(policies)
        self._settings = settings
        self._pipeline: Pipeline | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the ledger directory {self.path.parent}: {exc}") from exc
        with self._converted("migrate"):
            migrate(self._conn())
        if durability == "group":
            from ledger.groupcommit import DEFAULT_MAX_EVENTS, DEFAULT_WINDOW_S, GroupCommitter

            self._group = GroupCommitter(
                self._connect,
                window_s=DEFAULT_WINDOW_S if group_window_s is None else group_window_s,
                max_events=DEFAULT_MAX_EVENTS if group_max_events is None else group_max_events,
                describe=f"ledger {self.path}",
                insert_sql=insert_rows_sql,
                lookup_sql=BODY_SQL,
                body_index=INSERT_COLUMNS.index("body"),
                seal=self._seal_rows,
                sealed=self._sealed_rows,
            )
        self.ledger_id = self._ensure_ledger_id()
        self._sealing = self._conn().execute("SELECT value FROM meta WHERE key = 'seal_text'").fetchone()
        if self._sealing is not None:
            from ledger import erasure

            erasure.register(self)

    @property
    def pipeline(self) -> Pipeline:
        """The write pipeline (``ledger.policies``), built on first use: the policies given
        to the constructor (else ``default_policies(settings)``), then ``SealText`` when
        this file seals texts (``ledger.erasure``). Raises ``ConfigError`` for invalid
        redaction settings."""
        if self._pipeline is None:
            steps = list(default_policies(self._settings) if self._policies is None else self._policies)
            if self._sealing is not None and self._sealing[0] in ("on", "content"):
                from ledger.erasure import SealText

                steps.append(SealText(self, content=self._sealing[0] == "content"))
            self._pipeline = Pipeline(steps)
        return self._pipeline

    @pipeline.setter
    def pipeline(self, value: Pipeline) -> None:
        self._pipeline = value

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
        is neither in ``blobs`` nor already stored raises ``MissingContent`` — unless the
        change says its content is withheld (``state_change.content_withheld``, set by the
        secret-file policy, ``ledger.secret_files``): then no content is needed and none
        is stored, even when given. Appending
        an event whose id exists with the same bytes is a no-op (``inserted=False``);
        with different bytes it raises ``DuplicateEventId``. Raises ``EventTooLarge``
        over ``MAX_EVENT_BYTES`` and ``StoreError`` on SQLite failure.
        """
        return self.append_many([event], blobs)[0]

    def append_many(
        self, events: Sequence[SwarmEvent], blobs: Mapping[str, bytes] | None = None
    ) -> list[Appended]:
        """Append events in order in ONE transaction: all are written or none.

        Same rules as ``append``. Equal to ``append_prepared(prepare_many(events, blobs))``.
        """
        return self.append_prepared(self.prepare_many(events, blobs))

    def prepare_many(
        self, events: Sequence[SwarmEvent], blobs: Mapping[str, bytes] | None = None
    ) -> Prepared:
        """The first half of ``append_many``, which writes nothing to the event log: every
        event through the write pipeline (redaction, secret files, sealing), serialized and
        size-checked, and every content checked against its SHA-256 key. Returns a
        ``Prepared`` for ``append_prepared``. Raises what ``append`` raises before writing
        (``ContentTooLarge``, ``EventTooLarge``, ``InvalidEvent``, a policy's error). Safe
        to call on one thread while another thread appends (each thread has its own
        SQLite connection)."""
        blobs = dict(blobs or {})
        items = []
        for e in events:
            event, body, blobs = self._prepare(e, blobs)
            items.append((event, body))
        _check_contents(blobs)
        return Prepared(items=tuple(items), blobs=blobs)

    def append_prepared(self, prepared: Prepared) -> list[Appended]:
        """The second half of ``append_many``: append what ``prepare_many`` returned, in
        order, in ONE transaction (all or nothing). Returns one ``Appended`` per event.
        Raises ``MissingContent``, ``DuplicateEventId``, ``InvalidEvent`` (a change below a
        symlink) and ``StoreError``."""
        items, blobs = prepared.items, prepared.blobs
        group = self._group
        if (
            group is not None and len(items) == 1 and not is_file_change(items[0][0])
            and getattr(self._local, "group_conn", None) is None
        ):  # one INSERT is atomic by itself: join the group without a savepoint
            event, body = items[0]
            with self._converted("append"):
                return [group.run(lambda conn: self._insert(conn, event, body, blobs))]
        with self.write_transaction() as conn:
            if len(items) >= BULK_EVENTS and not self._local.bulk_cache:
                conn.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")  # this connection, from now on
                self._local.bulk_cache = True
            # what this transaction learns, carried event to event
            state = BatchState(self.ledger_id, bulk=len(items) >= BULK_EVENTS)
            return [self._insert(conn, e, body, blobs, state) for e, body in items]

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
        event, body, _ = self._prepare(event, {})
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
        row = self._conn().execute(BODY_SQL, (event_id,)).fetchone()
        return bytes(row[0]) if row is not None else None

    def _prepare(
        self, event: SwarmEvent, blobs: Mapping[str, bytes]
    ) -> tuple[SwarmEvent, bytes, Mapping[str, bytes]]:
        """THE write step every event goes through: the policy pipeline
        (``ledger.policies``), then serialization and the size check. Returns
        ``(event, body, blobs)`` as they will be stored. Raises ``ContentTooLarge`` (the
        event's file content is over ``MAX_CONTENT_BYTES``), ``EventTooLarge`` and
        whatever a policy raises."""
        digest = content_hash(event)
        data = blobs.get(digest) if digest is not None else None
        if data is not None and len(data) > MAX_CONTENT_BYTES:
            raise ContentTooLarge(
                f"event {event.event_id}: the content of {event.state_change.target_resource!r} is "
                f"{len(data):,} bytes, over the {MAX_CONTENT_BYTES:,}-byte limit of one file version; "
                "keep such files out of the work tree the agent changes (or in .gitignore)")
        if self.pipeline:
            event, blobs = self.pipeline.run(event, blobs)
        body = event.to_bytes()
        if len(body) > MAX_EVENT_BYTES:
            raise EventTooLarge(
                f"event {event.event_id}: {len(body):,} bytes serialized exceeds the "
                f"{MAX_EVENT_BYTES:,}-byte limit; store large content as a file change "
                "(content goes to the blob store) or shorten diff_patch/message text"
            )
        return event, body, blobs

    def set_sealing(self, on: bool, *, content: bool = False) -> None:
        """Turn sealing of texts (``ledger.erasure``) on or off for this ledger file, and
        with ``content=True`` of file content too (``ledger.sealed_content``): kept in its
        meta table, so every process that opens it afterwards seals (this object too,
        from now on)."""
        from ledger import erasure

        value = ("content" if content else "on") if on else "off"
        with self.write_transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('seal_text', ?)", (value,))
        steps = [s for s in self.pipeline.steps if not isinstance(s, erasure.SealText)]
        self.pipeline = Pipeline([*steps, erasure.SealText(self, content=content)] if on else steps)
        erasure.register(self)

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
            prepared, body, blobs = self._prepare(event, blobs)
            _check_contents(blobs)
            return self._insert(conn, prepared, body, blobs)

    def put_blob(self, data: bytes, *, tenant_id: str) -> str:
        """Store content for ``tenant_id`` (once per SHA-256; ``ledger.owners``); returns
        its SHA-256 hex."""
        digest = blobstore.sha256_hex(data)
        self.put_blobs({digest: data}, tenant_id=tenant_id)
        return digest

    def put_blobs(self, blobs: Mapping[str, bytes], *, tenant_id: str) -> int:
        """Store contents for ``tenant_id`` ahead of the events that name them, in one
        transaction (``{sha256_hex: bytes}``; each is checked against its key). An orphan
        blob is harmless; this lets a producer bound the memory of a huge batch. Returns
        the number of blobs that were new. Raises ``InvalidEvent`` when a content does not
        hash to its key, ``StoreError`` on SQLite failure."""
        _check_contents(blobs)
        new = 0
        with self.write_transaction() as conn:
            for digest, data in blobs.items():
                if not blobstore.exists(conn, digest):
                    blobstore.put(conn, data, digest)
                    new += 1
                owners.own(conn, tenant_id, digest)
        return new


def open_ledger(settings=None, **overrides) -> Ledger:
    """Open (and migrate) the ledger named by settings (see ``ledger.config``)."""
    from ledger.config import load_settings

    settings = settings or load_settings(**overrides)
    return Ledger(settings.ledger_path, durability=settings.durability, settings=settings)

