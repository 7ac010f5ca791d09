"""Group commit: many appends share one SQLite transaction and one fsync.

Used by ``Ledger(path, durability="group")``. Writes from every thread of the process
go through ONE connection. Two kinds of writes join the open group:

* **Buffered rows** (``buffer()``, used by ``Ledger.submit`` for events that touch no
  file state: every ``Recorder.decision/message/signal``). The caller checks everything
  that can be wrong with the row in its own thread and gets the error there: the size
  (``EventTooLarge``) and the event id against the committed ledger, the open group and
  the group being committed (``DuplicateEventId`` with different bytes, a no-op with the
  same bytes). The row is then kept in memory; rows are written into the open
  transaction with multi-row ``INSERT`` statements (``DRAIN_ROWS`` at a time, by the
  writer that buffered them, if the connection is free; the rest when the group
  commits).
* **Transactional writes** (``transaction()``: file changes, ``append_many``, blobs,
  checkpoints...). They run on the shared connection inside the open transaction, each
  in its own ``SAVEPOINT``, so a failing write rolls back alone and raises in its caller;
  ``run()`` does the same for a write of ONE statement (atomic by itself, no savepoint).
  Buffered rows are written into the transaction first, so the log keeps the order of
  the calls and such a write sees everything appended before it.

The group commits (``synchronous=FULL``: one fsync for the whole group) when the first
of these happens:

* it has been open ``window_s`` seconds (default 0.010 s = 10 ms). A writer that
  appends to a group about to reach that age (1 ms before) commits it itself; the
  background committer thread commits, at the deadline, a group nobody appends to.
  (Keeping the busy path in the writer's thread avoids a thread switch and GIL
  hand-offs per group, which cost more CPU than they save on a busy machine.)
* it holds ``max_events`` writes (default 1000): the caller whose write filled it
  commits it before returning;
* someone calls ``flush()`` (or ``Ledger.flush()``/``close()``, or the process exits
  normally: an ``atexit`` hook flushes).

While one thread commits a group, other threads keep buffering rows for the next.

**Durability window.** A record call in group mode returns once its event is checked
and part of the open group, *before* it is durable: a ``kill -9`` or power loss can lose
the writes of the last ``window_s`` seconds; ``flush()`` returns only when everything
appended before it is committed and fsynced. A failed group is rolled back and lost as a
whole, and the error is raised (``StoreError``) by the next write or ``flush()`` — never
swallowed. The full contract (what is checked in the caller, what can still fail at
commit time, visibility to other connections, locking): docs/opentelemetry.md, "Write
path under load and group commit".
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sqlite3
import threading
import time
import weakref
from typing import Callable, Iterator, Sequence, TypeVar

from ledger.errors import StoreError
from ledger.multirow import MultiRowInserter

log = logging.getLogger(__name__)

#: Default longest time (seconds) an appended event waits for its commit.
DEFAULT_WINDOW_S = 0.010
#: Default largest number of writes in one group (one transaction, one fsync).
DEFAULT_MAX_EVENTS = 1000
#: Buffered rows a writer inserts itself (into the open transaction) once it has them.
DRAIN_ROWS = 64

T = TypeVar("T")


class GroupCommitter:
    """Owns the shared write connection of a group-commit ``Ledger``.

    ``connect`` opens a configured SQLite connection (called once, here).
    ``window_s`` (seconds) and ``max_events`` bound the durability window.
    Buffered rows (see ``buffer``) are written with ``insert_sql(n)``: an
    ``INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING`` statement of ``n`` rows
    (one statement for many rows: SQLite inserts them in one step, without the GIL, so
    the other threads keep running). Each row is a tuple whose element 0 is its key (the
    event id) and element ``body_index`` its serialized body; ``lookup_sql`` (one ``?``,
    the key) selects the stored body of a key. ``seal(conn, rows)`` (optional) returns
    the rows as they are to be inserted and a mark (the ledger's hash chain fills in the
    links, ``ledger.chain``); ``sealed(conn, mark, rows, inserted)`` runs after the insert,
    in the same transaction.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        window_s: float = DEFAULT_WINDOW_S,
        max_events: int = DEFAULT_MAX_EVENTS,
        describe: str = "ledger",
        insert_sql: Callable[[int], str] | None = None,
        lookup_sql: str = "",
        body_index: int = -1,
        seal: Callable[[sqlite3.Connection, Sequence[tuple]], tuple[list[tuple], int]] | None = None,
        sealed: Callable[[sqlite3.Connection, int, Sequence[tuple], int], None] | None = None,
    ) -> None:
        if window_s <= 0:
            raise ValueError(f"group commit window must be > 0 seconds, not {window_s}")
        if max_events < 1:
            raise ValueError(f"group commit max_events must be >= 1, not {max_events}")
        self.window_s = window_s
        # A busy writer commits a little before the committer thread's deadline.
        self._writer_window_s = window_s - min(0.001, window_s * 0.2)
        self.max_events = max_events
        self.describe = describe
        self._seal = seal
        self._sealed = sealed
        self._conn = connect()
        self._inserter = MultiRowInserter(
            insert_sql, lookup_sql, body_index,
            self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)) if insert_sql is not None else None
        self._chunk = self._inserter.chunk if self._inserter is not None else 1
        self._drain_rows = min(DRAIN_ROWS, self._chunk)
        # The connection and the open transaction (re-entrant: nested savepoints).
        self._lock = threading.RLock()
        self._depth = 0  # savepoint nesting depth of the lock holder
        self._txn_opened_at: float | None = None  # monotonic time the transaction began
        self._txn_writes = 0  # writes in the open transaction
        self._txn_keys: list[str] = []  # keys written in the open transaction
        # The buffer of checked rows waiting for the next write of the group.
        self._buf_lock = threading.Lock()
        self._rows: list[tuple] = []
        self._buf_opened_at: float | None = None  # monotonic time the first row came
        self._uncommitted: dict[str, bytes] = {}  # key -> body: buffered or not yet committed
        self._failure: StoreError | None = None
        self._wake = threading.Condition(threading.Lock())
        self._closed = False
        #: Totals since open: committed groups and writes (for benchmarks and status).
        self.groups_committed = 0
        self.writes_committed = 0
        self._thread = threading.Thread(target=self._committer, name="ledger-group-commit", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)
        self._atexit = lambda: (lambda gc: gc and gc.close())(ref())
        atexit.register(self._atexit)

    @property
    def connection(self) -> sqlite3.Connection:
        """The shared write connection (use only inside ``transaction()``)."""
        return self._conn

    # ----------------------------------------------------------------- writes
    def buffer(
        self, key: str, body: bytes, row: tuple, lookup: Callable[[str], bytes | None]
    ) -> bytes | None:
        """Add a checked row to the open group unless ``key`` is already known.

        Returns None when the row was buffered; otherwise the body already stored
        under ``key`` (for the caller to compare with its own), found among the
        uncommitted writes of this ledger or by ``lookup(key)`` (the committed ledger;
        called with the buffer locked, so a group committing meanwhile is not missed).
        May commit the group when this row fills it. Raises ``StoreError`` if the
        ledger is closed or a group failed to commit (a previous one, or the one this
        row filled); ``lookup``'s errors pass through.
        """
        if self._failure is not None:
            self._raise_failure()
        wake = False
        with self._buf_lock:
            if self._closed:
                raise StoreError(f"{self.describe} is closed")
            existing = self._uncommitted.get(key)
            if existing is None:
                existing = lookup(key)
                if existing is None:
                    self._uncommitted[key] = body
                    self._rows.append(row)
                    size = len(self._rows)
                    if self._buf_opened_at is None:
                        self._buf_opened_at = time.monotonic()
                        # wake the committer only when a new group opens (it already
                        # sleeps until the deadline of an open one)
                        wake = self._txn_opened_at is None
        if existing is not None:
            return existing
        if wake:
            with self._wake:
                self._wake.notify()
        if size + self._txn_writes >= self.max_events:  # full: commit it now
            with self._lock:
                if self._depth == 0 and not self._closed and len(self._rows) + self._txn_writes >= self.max_events:
                    try:
                        self._commit()
                    except StoreError as exc:  # not started: the rows stay buffered
                        log.error("%s (retried by the next commit; flush() reports it)", exc)
                    self._raise_failure()
        elif (size >= self._drain_rows or self._due()) and self._lock.acquire(blocking=False):
            # A busy writer does the group's work itself, without a thread switch: it
            # inserts each statement's worth of rows into the open transaction, and
            # commits the group once it is window_s old. The committer thread commits
            # the groups nobody adds to. If the connection is busy (a commit under way),
            # the rows simply wait in the buffer.
            try:
                if self._depth == 0 and not self._closed:
                    try:
                        if self._due():
                            self._commit()
                        elif len(self._rows) >= self._drain_rows:
                            self._drain()
                    except StoreError as exc:  # not started: the rows stay buffered
                        log.error("%s (retried by the next commit; flush() reports it)", exc)
                    self._raise_failure()
            finally:
                self._lock.release()
        return None

    def _due(self) -> bool:
        """True when a writer should commit the open group: it is ``window_s`` old less
        1 ms (a little before the committer thread's deadline, so that a busy writer
        commits its groups itself and the committer only wakes for idle ones)."""
        opened = self._opened_at()
        return opened is not None and time.monotonic() - opened >= self._writer_window_s

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write inside the open group: a SAVEPOINT released on success, rolled back
        (alone) on error. Nested use by the same thread nests savepoints. Buffered rows
        are written first.

        Raises ``StoreError`` if the ledger is closed or a previous group failed.
        """
        with self._lock:
            conn = self._begin()
            self._depth += 1
            name = f"g{self._depth}"
            mark = len(self._txn_keys)
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield conn
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                self._depth -= 1
                self._rolled_back(mark)
                raise
            conn.execute(f"RELEASE {name}")
            self._depth -= 1
            if self._depth == 0:
                self._txn_writes += 1
                self._commit_if_due()

    def run(self, write: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``write(conn)`` in the open group without a savepoint; for writes of ONE
        statement (atomic by itself: on error SQLite undoes that statement alone).
        Returns what ``write`` returns; same errors as ``transaction()``."""
        with self._lock:
            conn = self._begin()
            self._depth += 1
            mark = len(self._txn_keys)
            try:
                result = write(conn)
            except BaseException:
                self._depth -= 1
                self._rolled_back(mark)
                raise
            self._depth -= 1
            if self._depth == 0:
                self._txn_writes += 1
                self._commit_if_due()
            return result

    def note(self, key: str, body: bytes) -> None:
        """Remember that ``key`` was written (with ``body``) by the current
        ``transaction()``/``run()`` write, so that ``buffer`` sees it before it commits.
        Forgotten again if that write rolls back."""
        with self._buf_lock:
            self._uncommitted[key] = body
        self._txn_keys.append(key)

    def flush(self) -> None:
        """Commit the open group now; returns when everything appended before the call
        is durable. Raises ``StoreError`` if this or an earlier group failed to commit
        (or the transaction could not be started: the writes then stay buffered)."""
        with self._lock:
            if self._closed:
                self._raise_failure()
                return  # close() committed everything
            if self._depth == 0:
                self._commit()
            self._raise_failure()

    def close(self) -> None:
        """Flush, stop the committer thread and close the connection (idempotent).
        A group that fails to commit here is logged (and its error raised if the
        transaction could not even be started)."""
        with self._lock:
            if self._closed:
                return
            with self._buf_lock:
                self._closed = True  # no more buffered rows after this point
            try:
                if self._depth == 0:
                    self._commit()
            finally:
                with self._wake:
                    self._wake.notify()
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
        with contextlib.suppress(Exception):
            atexit.unregister(self._atexit)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    # ----------------------------------------------------------------- internals
    def _opened_at(self) -> float | None:
        """When the open group began (its transaction or its first buffered row)."""
        txn, buf = self._txn_opened_at, self._buf_opened_at
        if txn is None:
            return buf
        return txn if buf is None or txn <= buf else buf

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            if failure is not None:
                raise failure

    def _fail(self, message: str, cause: BaseException | None) -> None:
        failure = StoreError(f"{self.describe}: {message}")
        failure.__cause__ = cause
        log.error("%s", failure)
        if self._failure is not None:
            failure = StoreError(f"{self._failure}; then {failure}")
            failure.__cause__ = cause
        self._failure = failure

    def _begin(self) -> sqlite3.Connection:
        """Before a transactional write (lock held): checks, buffered rows, BEGIN."""
        if self._closed:
            raise StoreError(f"{self.describe} is closed")
        self._raise_failure()
        conn = self._conn
        if self._depth == 0 and self._rows:
            self._drain()
            self._raise_failure()
        if not conn.in_transaction:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.describe}: cannot start a write: {exc}") from exc
            was_open = self._buf_opened_at is not None
            self._txn_opened_at = time.monotonic()
            if not was_open:  # a new group: the committer learns its deadline
                with self._wake:
                    self._wake.notify()
        return conn

    def _drain(self) -> None:
        """Write the buffered rows into the open transaction (multi-row INSERTs)
        (lock held, not inside a savepoint). Raises ``StoreError`` only if the
        transaction cannot be started (the rows then stay buffered)."""
        with self._buf_lock:
            rows = self._rows
            if not rows:
                return
            self._rows = []
            opened, self._buf_opened_at = self._buf_opened_at, None
        conn = self._conn
        if not conn.in_transaction:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                with self._buf_lock:  # not lost: keep them (first) for the next try
                    self._rows[:0] = rows
                    if self._buf_opened_at is None or (opened is not None and opened < self._buf_opened_at):
                        self._buf_opened_at = opened
                raise StoreError(
                    f"{self.describe}: cannot start a write ({len(rows)} event(s) wait in memory, "
                    f"not yet durable): {exc}"
                ) from exc
            self._txn_opened_at = opened
        elif opened is not None and (self._txn_opened_at is None or opened < self._txn_opened_at):
            self._txn_opened_at = opened
        self._txn_keys.extend([row[0] for row in rows])
        self._txn_writes += len(rows)
        try:
            mark = 0
            if self._seal is not None:  # the hash chain: links from the head, in this transaction
                rows, mark = self._seal(conn, rows)
            inserted = self._inserter.insert(conn, rows)
            if self._sealed is not None:
                self._sealed(conn, mark, rows, inserted)
            if inserted != len(rows):
                self._check_conflicts(conn, rows)
        except sqlite3.Error as exc:
            self._lose(exc)

    def _check_conflicts(self, conn: sqlite3.Connection, rows: Sequence[tuple]) -> None:
        """Some rows were not inserted: their id was stored meanwhile by another
        process. Same bytes is fine (idempotent); different bytes is reported."""
        refused = self._inserter.refused(conn, rows)
        if refused:
            shown = ", ".join(refused[:5]) + (f" and {len(refused) - 5} more" if len(refused) > 5 else "")
            self._fail(
                f"{len(refused)} event(s) were not recorded: another writer stored different "
                f"events with the same id(s) meanwhile ({shown}); event ids are idempotency "
                "keys: record them again with new ids",
                None,
            )

    def _rolled_back(self, mark: int) -> None:
        """After a failed transactional write (lock held): forget its keys; if SQLite
        rolled back the whole transaction, the group is lost."""
        forgotten = self._txn_keys[mark:]
        if forgotten:
            del self._txn_keys[mark:]
            with self._buf_lock:
                for key in forgotten:
                    self._uncommitted.pop(key, None)
        if self._depth == 0 and not self._conn.in_transaction and self._txn_writes:
            self._lose(None)

    def _lose(self, exc: BaseException | None) -> None:
        """The open transaction failed: roll it back, report the lost writes."""
        count = self._txn_writes
        with contextlib.suppress(sqlite3.Error):
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        self._fail(
            f"group commit of {count} write(s) failed and they were lost: "
            f"{exc if exc is not None else 'SQLite rolled the transaction back'} "
            "(free disk space, then record again)",
            exc,
        )
        self._end_transaction()

    def _end_transaction(self) -> None:
        keys, self._txn_keys = self._txn_keys, []
        if keys:
            with self._buf_lock:
                uncommitted = self._uncommitted
                for key in keys:
                    uncommitted.pop(key, None)
        self._txn_writes = 0
        self._txn_opened_at = None

    def _commit_if_due(self) -> None:
        """After a write (lock held, depth 0): commit if the group is full or old."""
        opened = self._opened_at()
        if (
            self._txn_writes + len(self._rows) >= self.max_events
            or (opened is not None and time.monotonic() - opened >= self.window_s)
        ):
            self._commit()
            self._raise_failure()

    def _commit(self) -> None:
        """Write the buffered rows and commit the open group (caller holds the lock
        and is not inside a savepoint). Failures are kept for ``_raise_failure``;
        raises ``StoreError`` only if no transaction could be started."""
        self._drain()
        conn = self._conn
        if not conn.in_transaction:
            self._end_transaction()
            return
        count = self._txn_writes
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._lose(exc)
            return
        self.groups_committed += 1
        self.writes_committed += count
        self._end_transaction()

    def _committer(self) -> None:
        """Background thread: commits a group once it is ``window_s`` old."""
        while True:
            with self._wake:
                if self._closed:
                    return
                opened = self._opened_at()
                if opened is None:
                    self._wake.wait(timeout=1.0)
                    continue
                delay = opened + self.window_s - time.monotonic()
                if delay > 0:
                    self._wake.wait(timeout=delay)
                    continue
            with self._lock:
                if self._closed:
                    return
                opened = self._opened_at()
                if self._depth == 0 and opened is not None and time.monotonic() - opened >= self.window_s:
                    try:
                        self._commit()
                    except StoreError as exc:  # nothing lost: retried on the next round
                        log.error("%s", exc)
